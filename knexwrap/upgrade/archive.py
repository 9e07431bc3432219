"""Copies of every installed migration file, kept so a downgrade can still revert newer migrations.

Once the code is back at an older Backstage, the database records migrations the older packages no
longer ship; reverting them needs the newer files, archived in `<project>/.knexwrap/archive/`:

    files/<sha256><ext>                          each distinct content once, named by its hash
    sets/<table>/<package>@<version>.json        one index per package version and migrations table

An index is {"format": 1, "table", "package", "version", "plugin_id", "folder" (relative to the
project), "module_type", "files": {name: sha256}}. Scoped names keep their "@" and "/" becomes "+".
Two versions of one file name (catalog 1.24.0 and 4.0.5 share 7 names, different contents) are two
hashes, so both survive. Writes are atomic renames: archiving twice, or from two processes, is safe.

What knex (3.3.0, tested on the real packages) needs to revert from a folder:
- every migration the table records must be a file name in that folder, or it refuses the whole
  folder as "corrupt" before doing anything; it compares names only and loads just what it reverts;
- a loaded file's require()s resolve from the folder's real path upwards, so the folder must lie
  inside the project for `<project>/node_modules` to be found (catalog <= 3.5.x requires 'uuid');
- `.js` files are ES modules when the nearest package.json says "type": "module" (the project's own
  would apply in `.knexwrap/run/`), so the folder pins the package's own type.
So `materialize` builds the newest archived version's complete folder, plus names only older
versions (or, for a shared set, other packages) had, in `<project>/.knexwrap/run/<table>/<package>/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import errors
from ..install.sets import EVERY_PLUGIN, MigrationSet, discover_all
from ..state import read as st

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
    files: tuple[tuple[str, str], ...]  # (name, sha256), sorted by name


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


def default_root(project: Path) -> Path:
    return project / ".knexwrap" / "archive"


def run_folder(project: Path, key: SetKey) -> Path:
    """Where `materialize` should build a set's folder: inside the project, for require()."""
    return project / ".knexwrap" / "run" / _safe(key[0]) / _safe(key[1])


def _safe(part: str) -> str:
    if not _SAFE.fullmatch(cleaned := part.replace("/", "+")):
        raise errors.ConfigError(f"cannot archive under the name {part!r}: unexpected characters")
    return cleaned


def _skip_reason(one: MigrationSet) -> str | None:
    parts = (one.table, one.package or "", one.version or "")
    bad = [p for p in parts if not _SAFE.fullmatch(p.replace("/", "+"))]
    return f"{one.directory}: no usable package, version and table to archive it under ({bad[0]!r})" if bad else None


def _index_path(root: Path, index: SetIndex) -> Path:
    return root / "sets" / _safe(index.table) / f"{_safe(index.package)}@{_safe(index.version)}.json"


def _blob(root: Path, name: str, sha: str) -> Path:
    return root / "files" / f"{sha}{Path(name).suffix}"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file in the same folder, then a rename: readers never see half a file.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


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
    doc = {"format": FORMAT, **vars(index), "files": dict(index.files)}
    return (json.dumps(doc, indent=2) + "\n").encode()


def _read_index(path: Path) -> SetIndex:
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a format {FORMAT} knexwrap archive index")
        files: Any = doc.get("files")
        # Names and hashes become paths when materialized: plain file names and hex digests only.
        plain = isinstance(files, dict) and all(_NAME.fullmatch(k) and _SHA.fullmatch(str(h)) for k, h in files.items())
        if not plain:
            raise ValueError('"files" must map file names to sha256 hashes')
        fields: dict[str, Any] = {k: doc.get(k) for k in _INDEX_FIELDS}
        if not all(isinstance(v, str) for v in fields.values()):
            raise ValueError(f"{', '.join(_INDEX_FIELDS)} must be strings")
        return SetIndex(**fields, files=tuple(sorted(files.items())))
    except (OSError, ValueError) as exc:
        raise errors.ConfigError(f"archive index {path}: {exc}") from exc


def _stored_index(root: Path, index: SetIndex) -> SetIndex | None:
    """The archived index of the same package version; a damaged one counts as absent, to be rewritten."""
    path = _index_path(root, index)
    try:
        return _read_index(path) if path.is_file() else None
    except errors.ConfigError:
        return None


def _complete(root: Path, index: SetIndex) -> bool:
    return _stored_index(root, index) == index and all(_blob(root, n, h).is_file() for n, h in index.files)


def _store(root: Path, index: SetIndex, contents: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """Write what the archive lacks of one set: the labels of the new files and of the new index."""
    label = f"{index.package}@{index.version}"
    new_files = []
    for name, sha in index.files:
        if not _blob(root, name, sha).is_file():
            _write_atomic(_blob(root, name, sha), contents[name])
            new_files.append(f"{label} {name}")
    if _stored_index(root, index) == index:
        return new_files, []
    _write_atomic(_index_path(root, index), _to_json(index))
    return new_files, [f"{label} {index.table}"]


def archive(project: Path, sets: Sequence[MigrationSet] | None = None, root: Path | None = None) -> ArchiveResult:
    """Copy every installed set's migration files into the archive; says what was new."""
    root = root or default_root(project)
    found = discover_all(project) if sets is None else sets
    skipped = [reason for reason in map(_skip_reason, found) if reason]
    kept, new_files, new_indexes = [], [], []
    try:
        for one in (one for one in found if not _skip_reason(one)):
            index, contents = _current(project, one)
            files, index_label = _store(root, index, contents)
            kept.append(index)
            new_files += files
            new_indexes += index_label
    except OSError as exc:
        raise errors.ConfigError(f"cannot archive migration files into {root}: {exc}") from exc
    return ArchiveResult(root, tuple(kept), tuple(new_files), tuple(new_indexes), tuple(skipped))


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


def indexes(root: Path, table: str) -> list[SetIndex]:
    """Every archived version of every package keeping a set in `table`, newest version first."""
    folder = root / "sets" / _safe(table)
    found = [_read_index(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(found, key=lambda i: (version_key(i.version), i.package), reverse=True)


def lookup(root: Path, table: str, name: str) -> list[ArchivedFile]:
    """Every archived version of one migration file (NAME with or without its extension)."""
    return [
        ArchivedFile(file, sha, _blob(root, file, sha), i)
        for i in indexes(root, table)
        for file, sha in i.files
        if name in (file, Path(file).stem)
    ]


def _chosen(root: Path, key: SetKey, names: Iterable[str]) -> tuple[SetIndex, dict[str, str]]:
    """Each name once: the package's newest version's content first, then names only others had."""
    table, package = key
    every = indexes(root, table)
    # A shared set moves between packages (backend-tasks, backend-defaults): other homes fill gaps.
    found = [i for i in every if i.package == package] + [i for i in every if i.plugin_id == EVERY_PLUGIN]
    if not found or found[0].package != package:
        raise errors.ConfigError(f"nothing of {package} (table {table}) is archived in {root}")
    chosen: dict[str, str] = {}
    for name, sha in (file for index in found for file in index.files):
        chosen.setdefault(name, sha)
    absent = [n for n in names if n not in chosen]
    if absent:
        raise errors.ConfigError(f"the archive {root} has no copy of {', '.join(absent)} ({package}, table {table})")
    return found[0], chosen


def _ours(dest: Path, entries: list[Path]) -> bool:
    """Made by materialize: its marker, and nothing but migration files beside it (never a project)."""
    try:
        marker = json.loads((dest / "package.json").read_text(encoding="utf-8"))["knexwrap"]["materialized"]
    except (OSError, ValueError, TypeError, KeyError):
        return False
    files = all(e.is_file() and e.name.endswith(st.MIGRATION_EXTENSIONS) for e in entries if e.name != "package.json")
    return bool(marker) and files


def _prepare(dest: Path) -> None:
    if not any((p / "node_modules").is_dir() for p in dest.resolve().parents):
        raise errors.ConfigError(f"{dest} is outside any project with node_modules: require() would fail there")
    entries = list(dest.iterdir()) if dest.is_dir() else []
    if entries and not _ours(dest, entries):
        raise errors.ConfigError(f"{dest} holds files knexwrap did not put there: refusing to replace them")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)


def _fill(root: Path, chosen: dict[str, str], dest: Path, marker: dict[str, Any]) -> None:
    for name, sha in sorted(chosen.items()):
        blob = _blob(root, name, sha)
        data = blob.read_bytes() if blob.is_file() else b""
        if hashlib.sha256(data).hexdigest() != sha:
            raise errors.ConfigError(f"archived copy {blob} of {name} is missing or damaged (sha256 differs)")
        (dest / name).write_bytes(data)
    (dest / "package.json").write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def materialize(root: Path, key: SetKey, names: Iterable[str], dest: Path) -> Path:
    """A folder knex can revert from: every archived file of the set, checked against `names`
    (the migrations the database records: knex refuses a folder missing any of them)."""
    newest, chosen = _chosen(root, key, names)
    try:
        _prepare(dest)
        _fill(root, chosen, dest, {"private": True, "type": newest.module_type, "knexwrap": {"materialized": key}})
    except OSError as exc:
        raise errors.ConfigError(f"cannot build the migrations folder {dest}: {exc}") from exc
    return dest


def refresh(project: Path) -> ArchiveResult | None:
    """Archive the sets not archived yet, while their files are still installed; None when all are."""
    pending = unarchived(project, discover_all(project))
    return archive(project, pending) if pending else None
