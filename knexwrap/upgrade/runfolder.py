"""Folders knex can run from, built from the archive (archive.py), each file checked against its hash.

What knex (3.3.0, tested on the real packages) needs to revert from a folder:
- every migration the table records must be a file name in that folder, or it refuses the whole
  folder as "corrupt" before doing anything; it compares names only and loads just what it reverts;
- a loaded file's require()s resolve from the folder's real path upwards, so the folder must lie
  inside the project for `<project>/node_modules` to be found (catalog <= 3.5.x requires 'uuid');
- `.js` files are ES modules when the nearest package.json says "type": "module" (the project's own
  would apply in `.knexwrap/run/`), so the folder pins the package's own type.
So `materialize` builds the newest archived version's complete folder, plus names only older
versions (or, for a shared set, other packages) had, in `<project>/.knexwrap/run/<table>/<package>/`.

Which content of a name: the one the journal records as applied (PREFER), else the one installed last
of the newest version. Every file is checked against the sha256 its archived copy is named by before it
is written, so a changed copy is refused, named, whatever an index says. The folder's marker is written
first: a build cut short is recognised as knexwrap's own and rebuilt. A recorded name the archive lacks may
come from Backstage's stored sources instead (upgrade/stored.py, verified there): CommonJS, as Backstage runs them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import errors
from ..install.sets import EVERY_PLUGIN
from ..state import read as st
from . import archive, statedir
from .archive import SetIndex, SetKey

_PARTIAL = ".partial"


@dataclass(frozen=True)
class Choice:
    newest: SetIndex  # the package's newest archived version: its module type is the folder's
    files: dict[str, str]  # name -> sha256 of the content the folder gets
    notes: tuple[str, ...]  # for each name with more than one content, which one and why


def run_folder(project: Path, key: SetKey) -> Path:
    """Where `materialize` builds a set's folder: inside the project whatever the state folder, for require()."""
    return project / ".knexwrap" / "run" / archive.safe_name(key[0]) / archive.safe_name(key[1])


def _homes(root: Path, key: SetKey) -> list[SetIndex]:
    table, package = key
    every = archive.indexes(root, table, package)
    # A shared set moves between packages (backend-tasks, backend-defaults): other homes fill gaps.
    found = [i for i in every if i.package == package] + [i for i in every if i.plugin_id == EVERY_PLUGIN]
    if not found or found[0].package != package:
        raise errors.ConfigError(f"nothing of {package} (table {table}) is archived in {root}")
    return found


def missing(root: Path, key: SetKey, names: Iterable[str]) -> tuple[str, ...]:
    """NAMES the archive has no copy of for KEY's set (all of them when nothing of it is archived)."""
    wanted = list(names)
    try:
        known = {name for index in _homes(root, key) for name, _ in index.contents()}
    except errors.ConfigError:
        return tuple(wanted)
    return tuple(n for n in wanted if n not in known)


def choose(root: Path, key: SetKey, names: Iterable[str], prefer: Mapping[str, str] | None = None) -> Choice:
    """Each name once, every archived name of the set included (knex refuses a folder missing a recorded one).

    Raises ConfigError naming the NAMES the archive lacks, or a damaged index of the package itself."""
    found = _homes(root, key)
    every: dict[str, list[str]] = {}  # name -> its contents: newest version first, installed last first
    twins: set[str] = set()  # names with two contents at one version
    for index in found:
        for name, sha in (*index.files, *reversed(index.contents())):
            shas = every.setdefault(name, [])
            if sha not in shas:
                shas.append(sha)
        names_seen = [n for n, _ in index.contents()]
        twins |= {n for n in names_seen if names_seen.count(n) > 1}
    absent = [n for n in names if n not in every]
    if absent:
        raise errors.ConfigError(f"the archive {root} has no copy of {', '.join(absent)} ({key[1]}, table {key[0]})")
    chosen, notes = {}, []
    for name, shas in every.items():
        applied = (prefer or {}).get(name)
        chosen[name] = applied if applied in shas else shas[0]
        if name in twins:
            why = "the journal records it as applied" if applied in shas else "the one installed last"
            notes.append(f"{name}: {len(shas)} archived contents, running sha256 {chosen[name][:12]} ({why})")
    return Choice(found[0], chosen, tuple(notes))


def _ours(dest: Path, entries: list[Path]) -> bool:
    """Made by materialize (its marker, or a build cut short before it), with nothing but migration files
    beside it: never a project's folder."""
    try:
        marker = json.loads((dest / "package.json").read_text(encoding="utf-8"))["knexwrap"]["materialized"]
    except FileNotFoundError:
        marker = "run" in dest.parts and ".knexwrap" in dest.parts  # no package.json at all: a cut-short build
    except (OSError, ValueError, TypeError, KeyError):
        return False
    allowed = (*st.MIGRATION_EXTENSIONS, _PARTIAL)
    files = all(e.is_file() and e.name.endswith(allowed) for e in entries if e.name != "package.json")
    return bool(marker) and files


def _prepare(dest: Path) -> None:
    if not any((p / "node_modules").is_dir() for p in dest.resolve().parents):
        raise errors.ConfigError(f"{dest} is outside any project with node_modules: require() would fail there")
    entries = list(dest.iterdir()) if dest.is_dir() else []
    if entries and not _ours(dest, entries):
        raise errors.ConfigError(f"{dest} holds files knexwrap did not put there: refusing to replace them")
    shutil.rmtree(dest, ignore_errors=True)
    statedir.mkdirs(dest)


def checked(root: Path, name: str, sha: str) -> bytes:
    """The archived content of NAME stored under SHA, refused (ConfigError naming it) unless it hashes to SHA."""
    blob = archive.blob(root, name, sha)
    data = blob.read_bytes() if blob.is_file() else b""
    if hashlib.sha256(data).hexdigest() != sha:
        raise errors.ConfigError(
            f"the archived copy of {name} ({blob}) is missing or changed: its content does not hash to the "
            "sha256 it is stored under; refusing to run it"
        )
    return data


def _fill(
    root: Path, chosen: Mapping[str, str], dest: Path, marker: dict[str, Any], stored: Mapping[str, bytes]
) -> None:
    # The marker first: an interrupted build is still recognisably knexwrap's, and rebuilt next time.
    statedir.write_private(dest / "package.json", (json.dumps(marker, indent=2) + "\n").encode())
    for name, sha in sorted(chosen.items()):
        if name not in stored:
            statedir.write_private(dest / name, checked(root, name, sha))
    for name, data in sorted(stored.items()):
        statedir.write_private(dest / name, data)


def build(
    root: Path,
    key: SetKey,
    chosen: Mapping[str, str],
    module_type: str,
    dest: Path,
    stored: Mapping[str, bytes] | None = None,
) -> Path:
    """DEST filled with CHOSEN (name -> sha256), each checked against its hash, and STORED (name -> content
    of Backstage's stored sources, checked by upgrade/stored.py); ConfigError naming a bad one."""
    marker = {"private": True, "type": module_type, "knexwrap": {"materialized": list(key)}}
    try:
        _prepare(dest)
        _fill(root, chosen, dest, marker, stored or {})
    except OSError as exc:
        raise errors.ConfigError(f"cannot build the migrations folder {dest}: {exc}") from exc
    return dest


def archived_choice(
    root: Path, key: SetKey, names: Iterable[str], prefer: Mapping[str, str] | None = None, *, stored: bool = False
) -> Choice | None:
    """`choose`, or None when nothing of the set can be read from the archive, no NAMES are wanted from it and
    STORED (every recorded file comes from Backstage's stored sources). Raises as `choose` otherwise."""
    wanted = list(names)
    try:
        return choose(root, key, wanted, prefer)
    except errors.ConfigError:
        if wanted or not stored:
            raise
        return None  # nothing of the set archived (or a damaged index): the folder is the stored sources alone


def materialize(
    root: Path,
    key: SetKey,
    names: Iterable[str],
    dest: Path,
    prefer: Mapping[str, str] | None = None,
    stored: Mapping[str, bytes] | None = None,
) -> Path:
    """A folder knex can revert from: every archived file of the set, checked against `names`
    (the migrations the database records: knex refuses a folder missing any of them), with STORED (name ->
    Backstage's stored CommonJS source) for the names the archive lacks: the folder is then CommonJS."""
    stored = stored or {}
    choice = archived_choice(root, key, [n for n in names if n not in stored], prefer, stored=bool(stored))
    module_type = choice.newest.module_type if choice else "commonjs"
    if stored and module_type == "module":
        raise errors.ConfigError(
            f"{key[1]} is an ES module package: Backstage's stored sources ({', '.join(sorted(stored))}) are "
            "CommonJS and cannot run in its folder"
        )
    return build(root, key, choice.files if choice else {}, module_type, dest, stored)


def exact(root: Path, key: SetKey, version: str | None, names: Iterable[str], dest: Path) -> Path:
    """A folder of exactly NAMES as KEY's package shipped them at VERSION (a snapshot's set, to verify with)."""
    wanted = list(names)
    index = next((i for i in _homes(root, key) if i.package == key[1] and i.version == version), None)
    if index is None:
        raise errors.ConfigError(f"{key[1]} {version} (table {key[0]}) is not archived in {root}")
    files = dict(index.files)
    absent = [n for n in wanted if n not in files]
    if absent:
        raise errors.ConfigError(f"the archive has no copy of {', '.join(absent)} ({key[1]} {version})")
    return build(root, key, {n: files[n] for n in wanted}, index.module_type, dest)
