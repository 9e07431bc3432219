"""A snapshot of the whole install: which package versions ship which sets, and what each database applied.

Taken before an upgrade, it says what to go back to; taking one also archives every installed
migration file (archive.py), so the files to revert are at hand after the code is swapped back.

The file is one JSON object, format 1:

    {
      "kind": "knexwrap-snapshot",
      "format": 1,
      "taken_at": "2025-06-01T12:00:00+00:00",          # UTC, ISO 8601
      "archive": ".knexwrap/archive",                   # the archive root, relative to the project
      "sets": [                                         # every installed migration set
        {"plugin_id": "catalog",                        # or "*": a set living in every plugin database
         "package": "@backstage/plugin-catalog-backend", "version": "4.0.5",
         "table": "knex_migrations",
         "folder": "node_modules/@backstage/plugin-catalog-backend/migrations",  # relative to the project
         "files": ["20200511113813_init.js", ...]}     # the folder's migration files, sorted as knex sorts
      ],
      "databases": [                                    # every plugin database x set, as `knexwrap status` saw it
        {"plugin": "catalog",                           # null: a database no installed plugin claims
         "client": "pg", "database": "postgresql://postgres@127.0.0.1:5432/backstage_plugin_catalog",
         "state": "in_sync", "error": null,             # "absent", "unreachable", "orphan": no sets
         "sets": [{"table": "knex_migrations", "package": "...", "version": "4.0.5",
                   "applied": [{"name": "...", "batch": 1, "migration_time": "2025-...Z"}]}]}  # id order
      ]
    }

"applied" lists every row of the migrations table, including rows whose file was already missing.
A newer format number is refused rather than half-read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import errors
from ..install.sets import EVERY_PLUGIN, MigrationSet
from ..state import read as st
from ..state.report import DatabaseReport, InstallReport
from . import archive, statedir
from .archive import ArchiveResult
from .target import Destination, TargetInstall

KIND = "knexwrap-snapshot"
FORMAT = 1


@dataclass(frozen=True)
class InstalledSet:
    plugin_id: str  # or EVERY_PLUGIN
    package: str | None
    version: str | None
    table: str
    folder: str  # relative to the project
    files: tuple[str, ...]


@dataclass(frozen=True)
class DatabaseSet:
    table: str
    package: str | None
    version: str | None
    applied: tuple[st.Applied, ...]  # id order: the order knex ran them


@dataclass(frozen=True)
class DatabaseState:
    plugin: str | None
    client: str
    database: str
    state: str
    error: str | None
    sets: tuple[DatabaseSet, ...]


@dataclass(frozen=True)
class Snapshot:
    taken_at: str
    archive: str  # the archive root, relative to the project
    sets: tuple[InstalledSet, ...]
    databases: tuple[DatabaseState, ...]
    # What taking it added to the archive; not part of the file.
    archived: ArchiveResult | None = field(default=None, compare=False)

    def set_files(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """(plugin id or "*", table) -> the migration files that set had: what a downgrade goes back to."""
        return {(s.plugin_id, s.table): s.files for s in self.sets}

    def set_versions(self) -> dict[tuple[str, str], str | None]:
        """(plugin id or "*", table) -> the package version that shipped the set."""
        return {(s.plugin_id, s.table): s.version for s in self.sets}


def _relative(path: Path, project: Path) -> str:
    return Path(os.path.relpath(path.resolve(), project.resolve())).as_posix()


def _installed_set(one: MigrationSet, project: Path) -> InstalledSet:
    return InstalledSet(
        plugin_id=str(one.plugin_id or EVERY_PLUGIN),
        package=one.package,
        version=one.version,
        table=one.table,
        folder=_relative(Path(one.directory), project),
        files=st.list_files(one.directory),
    )


def _database_state(d: DatabaseReport) -> DatabaseState:
    # Rows whose file is missing are still rows of the table: the database's truth, kept.
    found = tuple(
        DatabaseSet(
            s.migrations_table,
            s.package,
            s.version,
            tuple(st.Applied(m.name, m.batch or 0, m.migration_time) for m in s.migrations if m.state != "pending"),
        )
        for s in d.sets
    )
    return DatabaseState(d.plugin, d.client, d.database, d.state, d.error, found)


def take(
    report: InstallReport,
    sets: Sequence[MigrationSet],
    project: Path,
    *,
    root: Path | None = None,
    now: datetime | None = None,
) -> Snapshot:
    """The install as `report` saw it; archives the sets' files first, so they are kept either way."""
    archived = archive.archive(project, sets, root)
    taken_at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    return Snapshot(
        taken_at=taken_at,
        archive=_relative(archived.root, project),
        sets=tuple(_installed_set(one, project) for one in sets),
        databases=tuple(_database_state(d) for d in report.databases),
        archived=archived,
    )


def default_path(project: Path, snapshot: Snapshot) -> Path:
    """`snapshots/snapshot-<time>.json` in the state folder (statedir.py)."""
    stamp = snapshot.taken_at.replace("-", "").replace(":", "").replace("+0000", "Z")
    return statedir.sub(project, "snapshots") / f"snapshot-{stamp}.json"


def to_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "kind": KIND,
        "format": FORMAT,
        "taken_at": snapshot.taken_at,
        "archive": snapshot.archive,
        "sets": [{**vars(s), "files": list(s.files)} for s in snapshot.sets],
        "databases": [
            {
                **{k: v for k, v in vars(d).items() if k != "sets"},
                "sets": [{**vars(s), "applied": [vars(a) for a in s.applied]} for s in d.sets],
            }
            for d in snapshot.databases
        ],
    }


def write(snapshot: Snapshot, path: Path) -> Path:
    text = json.dumps(to_json(snapshot), indent=2, ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: an interrupted write never leaves half a snapshot under the real name.
        statedir.write_private(path, text.encode())
    except OSError as exc:
        raise errors.ConfigError(f"cannot write the snapshot {path}: {exc}") from exc
    return path


class _Bad(ValueError):
    """What is wrong, and where in the document."""


_STR, _OPT, _INT, _LIST = (str,), (str, type(None)), (int,), (list,)
_NAMES = {str: "a string", type(None): "null", int: "a whole number", list: "a list"}


def _check(value: Any, kinds: tuple[type, ...], path: str) -> Any:
    # No field is a boolean, and Python would take true for the whole number 1.
    if isinstance(value, bool) or not isinstance(value, kinds):
        expected = " or ".join(_NAMES[k] for k in kinds)
        raise _Bad(f"{path}: expected {expected}, got {json.dumps(value)[:60]}")
    return value


def _get(obj: Any, key: str, kinds: tuple[type, ...], where: str) -> Any:
    path = f"{where}.{key}" if where else key
    if not isinstance(obj, dict):
        raise _Bad(f"{where}: expected an object, got {json.dumps(obj)[:60]}")
    if key not in obj:
        raise _Bad(f"{path}: missing")
    return _check(obj[key], kinds, path)


def _items(obj: Any, key: str, where: str) -> list[tuple[str, Any]]:
    path = f"{where}.{key}" if where else key
    return [(f"{path}[{i}]", item) for i, item in enumerate(_get(obj, key, _LIST, where))]


def _installed(where: str, s: Any) -> InstalledSet:
    files = tuple(_check(f, _STR, w) for w, f in _items(s, "files", where))
    return InstalledSet(
        plugin_id=_get(s, "plugin_id", _STR, where),
        package=_get(s, "package", _OPT, where),
        version=_get(s, "version", _OPT, where),
        table=_get(s, "table", _STR, where),
        folder=_get(s, "folder", _STR, where),
        files=files,
    )


def _database_set(where: str, s: Any) -> DatabaseSet:
    applied = tuple(
        st.Applied(_get(a, "name", _STR, w), _get(a, "batch", _INT, w), _get(a, "migration_time", _OPT, w))
        for w, a in _items(s, "applied", where)
    )
    return DatabaseSet(
        _get(s, "table", _STR, where), _get(s, "package", _OPT, where), _get(s, "version", _OPT, where), applied
    )


def _database(where: str, d: Any) -> DatabaseState:
    return DatabaseState(
        _get(d, "plugin", _OPT, where),
        _get(d, "client", _STR, where),
        _get(d, "database", _STR, where),
        _get(d, "state", _STR, where),
        _get(d, "error", _OPT, where),
        tuple(_database_set(w, s) for w, s in _items(d, "sets", where)),
    )


def _parse(doc: Any) -> Snapshot:
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise _Bad(f'no "kind": "{KIND}" at its top level')
    version = _get(doc, "format", _INT, "")
    if version != FORMAT:
        raise _Bad(f"format {version}, but this knexwrap reads format {FORMAT} (written by a newer knexwrap?)")
    return Snapshot(
        _get(doc, "taken_at", _STR, ""),
        _get(doc, "archive", _STR, ""),
        tuple(_installed(w, s) for w, s in _items(doc, "sets", "")),
        tuple(_database(w, d) for w, d in _items(doc, "databases", "")),
    )


def target(path: Path) -> TargetInstall:
    """A snapshot file as what `knexwrap downgrade --to FILE` goes back to: each set's files and version."""
    taken = read(path)
    to = Destination("snapshot", str(path), taken.taken_at)
    return TargetInstall(to, taken.set_files(), taken.set_versions(), {})


def read(path: Path) -> Snapshot:
    """A snapshot file; anything else, or a damaged one, is a ConfigError naming the file and the fault."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise errors.ConfigError(f"cannot read the snapshot {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise errors.ConfigError(f"{path} is not a knexwrap snapshot: not JSON ({exc})") from exc
    try:
        return _parse(doc)
    except _Bad as exc:
        raise errors.ConfigError(f"{path} is not a knexwrap snapshot: {exc}") from exc
