"""Copies of every installed migration file, kept so a downgrade can still revert newer migrations.

Once the code is back at an older Backstage, the database records migrations the older packages no
longer ship; reverting them needs the newer files, archived in the state folder's `archive/`:

    files/<sha256><ext>                          each distinct content once, named by its hash
    sets/<table>/<package>@<version>.json        one index per package version and migrations table

An index is {"format": 1, "table", "package", "version", "plugin_id", "folder" (relative to the
project), "module_type", "files": {name: sha256}, "seen": [[name, sha256], ...], "seen_at": [time, ...]}
("seen_at", ignored by older readers: when each "seen" pair was first archived, null if unknown). Scoped names keep
their "@" and "/" becomes "+". The archive only adds: "seen" keeps every content ever archived for the
package version (a workspace plugin at 0.1.0 whose files change or go), in the order first seen, and
"files" maps each name to its content installed last. Two versions of one file name (catalog 1.24.0
and 4.0.5 share 7 names, different contents) are two hashes, so both survive. Writes are atomic
renames of 0600 files: archiving twice, or from two processes, is safe. Building a folder knex can
run from the archive is runfolder.py's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import errors
from ..install.sets import EVERY_PLUGIN, MigrationSet, discover_all
from ..state import read as st
from . import statedir

FORMAT = 1
SetKey = tuple[str, str]  # (migrations table, package)
_SAFE = re.compile(r"(?!\.+$)[A-Za-z0-9@._~+-]+")  # a file name, never "." or ".."
_SHA = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"(?!\.+$)[^/\\\0]+")  # a plain file name: never a path, "." or ".."
_INDEX_FIELDS = ("table", "package", "version", "plugin_id", "folder", "module_type")


@dataclass(frozen=True)
class SetIndex:
    table: str
    package: str
    version: str
    plugin_id: str
    folder: str  # relative to the project it was archived from
    module_type: str  # "commonjs" or "module": how Node loads the package's .js files
    files: tuple[tuple[str, str], ...]  # (name, sha256), sorted by name: each name's content installed last
    # Every (name, sha256) ever archived for this package version, in the order first seen: the archive only adds.
    seen: tuple[tuple[str, str], ...] = ()
    # When each `seen` pair was first archived (ISO 8601, UTC), None when unknown (an index written before).
    seen_at: tuple[str | None, ...] = ()

    def first_seen(self) -> tuple[tuple[str, str, str | None], ...]:
        """(name, sha256, first archived or None) of every content of `contents()`."""
        times = self.seen_at if len(self.seen_at) == len(self.seen) else ()
        return tuple((n, h, times[i] if times else None) for i, (n, h) in enumerate(self.contents()))

    def contents(self) -> tuple[tuple[str, str], ...]:
        """Every (name, sha256) this version is known to have had; `files` for an index without history."""
        return self.seen or self.files


@dataclass(frozen=True)
class ArchivedFile:
    name: str
    sha256: str
    path: Path  # the archived copy
    index: SetIndex  # the package version and set it came from


@dataclass(frozen=True)
class ArchiveResult:
    root: Path
    indexes: tuple[SetIndex, ...]  # every set archived now, new or not
    new_files: tuple[str, ...]  # "package@version name": contents stored for the first time
    new_indexes: tuple[str, ...]  # "package@version table": indexes written or changed
    skipped: tuple[str, ...]  # sets that cannot be keyed (no package version), with why
    # "package@version name": content changed at the same package version (patch-package); both are kept.
    changed_in_place: tuple[str, ...] = ()


def default_root(project: Path) -> Path:
    """The archive in the state folder (statedir.py): `<project>/.knexwrap/archive` unless moved."""
    return statedir.sub(project, "archive")


def safe_name(part: str) -> str:
    if not _SAFE.fullmatch(cleaned := part.replace("/", "+")):
        raise errors.ConfigError(f"cannot archive under the name {part!r}: unexpected characters")
    return cleaned


def _skip_reason(one: MigrationSet) -> str | None:
    parts = (one.table, one.package or "", one.version or "")
    bad = [p for p in parts if not _SAFE.fullmatch(p.replace("/", "+"))]
    return f"{one.directory}: no usable package, version and table to archive it under ({bad[0]!r})" if bad else None


def _index_path(root: Path, index: SetIndex) -> Path:
    return root / "sets" / safe_name(index.table) / f"{safe_name(index.package)}@{safe_name(index.version)}.json"


def blob(root: Path, name: str, sha: str) -> Path:
    return root / "files" / f"{sha}{Path(name).suffix}"


def _write_atomic(path: Path, data: bytes) -> None:
    statedir.mkdirs(path.parent)
    statedir.write_private(path, data)  # a temporary file, then a rename: readers never see half a file


def _module_type(directory: Path) -> str:
    """The "type" of the nearest package.json, not past node_modules: how Node loads a .js file."""
    for folder in (directory, *directory.parents):
        manifest = folder / "package.json"
        if folder.name == "node_modules" or manifest.is_file():
            try:
                kind = json.loads(manifest.read_text(encoding="utf-8")).get("type")
            except (OSError, ValueError, AttributeError):
                kind = None
            return "module" if kind == "module" else "commonjs"
    return "commonjs"


def _current(project: Path, one: MigrationSet) -> tuple[SetIndex, dict[str, bytes]]:
    """The set as installed now, with the contents of its files."""
    try:
        contents = {name: (Path(one.directory) / name).read_bytes() for name in st.list_files(one.directory)}
    except OSError as exc:
        raise errors.ConfigError(f"cannot read the migration files of {one.directory}: {exc}") from exc
    index = SetIndex(
        table=one.table,
        package=str(one.package),
        version=str(one.version),
        plugin_id=str(one.plugin_id or EVERY_PLUGIN),
        folder=Path(os.path.relpath(one.directory, project.resolve())).as_posix(),
        module_type=_module_type(Path(one.directory)),
        files=tuple((name, hashlib.sha256(data).hexdigest()) for name, data in sorted(contents.items())),
    )
    return index, contents


def _to_json(index: SetIndex) -> bytes:
    seen, seen_at = [list(pair) for pair in index.seen], list(index.seen_at)
    doc = {"format": FORMAT, **vars(index), "files": dict(index.files), "seen": seen, "seen_at": seen_at}
    return (json.dumps(doc, indent=2) + "\n").encode()


def _plain(pairs: Any) -> bool:
    return all(isinstance(n, str) and _NAME.fullmatch(n) and _SHA.fullmatch(str(h)) for n, h in pairs)


def _read_index(path: Path) -> SetIndex:
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a format {FORMAT} knexwrap archive index")
        files: Any = doc.get("files")
        # Names and hashes become paths when materialized: plain file names and hex digests only.
        if not isinstance(files, dict) or not _plain(files.items()):
            raise ValueError('"files" must map file names to sha256 hashes')
        seen: Any = doc.get("seen", [])
        if not isinstance(seen, list) or not all(isinstance(p, list) and len(p) == 2 for p in seen) or not _plain(seen):
            raise ValueError('"seen" must list [file name, sha256] pairs')
        fields: dict[str, Any] = {k: doc.get(k) for k in _INDEX_FIELDS}
        if not all(isinstance(v, str) for v in fields.values()):
            raise ValueError(f"{', '.join(_INDEX_FIELDS)} must be strings")
        times: Any = doc.get("seen_at", [])
        if not isinstance(times, list) or not all(t is None or isinstance(t, str) for t in times):
            raise ValueError('"seen_at" must list times or nulls')
        pairs = tuple((n, h) for n, h in seen)
        return SetIndex(**fields, files=tuple(sorted(files.items())), seen=pairs, seen_at=tuple(times))
    except (OSError, ValueError) as exc:
        raise errors.ConfigError(f"archive index {path}: {exc}") from exc


def _stored_index(root: Path, index: SetIndex) -> SetIndex | None:
    """The archived index of the same package version; a damaged one counts as absent, to be rewritten."""
    path = _index_path(root, index)
    try:
        return _read_index(path) if path.is_file() else None
    except errors.ConfigError:
        return None


def _merged(stored: SetIndex | None, current: SetIndex, now: str | None = None) -> SetIndex:
    """CURRENT added to what was archived for the same package version: a file seen once stays (a workspace
    plugin at 0.1.0 that lost or changed a file); each name's `files` entry is its content installed last.
    NOW (ISO 8601) is when the new pairs are first seen; None compares what would change, times aside."""
    before = stored.first_seen() if stored else ()
    known = {(n, h) for n, h, _ in before}
    added = tuple((n, h, now) for n, h in current.files if (n, h) not in known)
    files = {**dict(stored.files if stored else ()), **dict(current.files)}
    seen = (*before, *added)
    pairs, times = tuple((n, h) for n, h, _ in seen), tuple(t for _, _, t in seen)
    return replace(current, files=tuple(sorted(files.items())), seen=pairs, seen_at=times)


def _same(stored: SetIndex | None, merged: SetIndex) -> bool:
    """Nothing to write: the index holds every pair already (times are not compared)."""
    return stored is not None and replace(stored, seen_at=()) == replace(merged, seen_at=())


def _in_place(stored: SetIndex | None, current: SetIndex) -> list[str]:
    """Names whose installed content is new to a package version that had another content for them."""
    before = stored.contents() if stored else ()
    return [n for n, h in current.files if n in {m for m, _ in before} and (n, h) not in before]


def _complete(root: Path, index: SetIndex) -> bool:
    stored = _stored_index(root, index)
    return _same(stored, _merged(stored, index)) and all(blob(root, n, h).is_file() for n, h in index.files)


def _store(root: Path, index: SetIndex, contents: dict[str, bytes]) -> tuple[list[str], list[str], list[str]]:
    """Write what the archive lacks of one set: the labels of the new files, of the new index, and of the
    files whose content changed in place at this package version."""
    label = f"{index.package}@{index.version}"
    new_files = []
    for name, sha in index.files:
        if not blob(root, name, sha).is_file():
            _write_atomic(blob(root, name, sha), contents[name])
            new_files.append(f"{label} {name}")
    stored = _stored_index(root, index)
    merged = _merged(stored, index, datetime.now(timezone.utc).isoformat())
    if _same(stored, merged):
        return new_files, [], []
    _write_atomic(_index_path(root, index), _to_json(merged))
    return new_files, [f"{label} {index.table}"], [f"{label} {name}" for name in _in_place(stored, index)]


def archive(project: Path, sets: Sequence[MigrationSet] | None = None, root: Path | None = None) -> ArchiveResult:
    """Copy every installed set's migration files into the archive; says what was new."""
    root = root or default_root(project)
    found = discover_all(project) if sets is None else sets
    skipped = [reason for reason in map(_skip_reason, found) if reason]
    kept, new_files, new_indexes, changed = [], [], [], []
    try:
        for one in (one for one in found if not _skip_reason(one)):
            index, contents = _current(project, one)
            files, index_label, patched = _store(root, index, contents)
            kept.append(index)
            new_files += files
            new_indexes += index_label
            changed += patched
    except OSError as exc:
        raise errors.ConfigError(f"cannot archive migration files into {root}: {exc}") from exc
    return ArchiveResult(root, tuple(kept), tuple(new_files), tuple(new_indexes), tuple(skipped), tuple(changed))


def unarchived(project: Path, sets: Sequence[MigrationSet], root: Path | None = None) -> list[MigrationSet]:
    """Sets whose current files are not all in the archive yet (unkeyable sets never are)."""
    root = root or default_root(project)
    return [one for one in sets if not _skip_reason(one) and not _complete(root, _current(project, one)[0])]


def version_key(version: str) -> tuple[Any, ...]:
    """Semantic-version order: 1.10.0 > 1.9.0, and 1.0.0 > 1.0.0-next.1."""
    main, _, pre = version.split("+", 1)[0].partition("-")
    numbers = tuple(int(p) if p.isdigit() else 0 for p in main.split("."))
    tags = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return (numbers, not pre, tags)


def indexes(root: Path, table: str, package: str | None = None) -> list[SetIndex]:
    """Every archived version of every package keeping a set in `table`, newest version first.

    With PACKAGE, a damaged index blocks only when it is that package's (its file name says so): a damaged
    entry of another package is skipped. Without, any damaged index raises ConfigError naming it."""
    folder = root / "sets" / safe_name(table)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(_read_index(path))
        except errors.ConfigError:
            if package is None or path.name.startswith(f"{safe_name(package)}@"):
                raise
    return sorted(found, key=lambda i: (version_key(i.version), i.package), reverse=True)


def lookup(root: Path, table: str, name: str) -> list[ArchivedFile]:
    """Every archived version of one migration file (NAME with or without its extension)."""
    return [
        ArchivedFile(file, sha, blob(root, file, sha), i)
        for i in indexes(root, table)
        for file, sha in i.contents()
        if name in (file, Path(file).stem)
    ]


def refresh(project: Path) -> ArchiveResult | None:
    """Archive the sets not archived yet, while their files are still installed; None when all are."""
    pending = unarchived(project, discover_all(project))
    return archive(project, pending) if pending else None
