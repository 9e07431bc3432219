"""What each migration set of a plugin database looks like: typed results, built from read state."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..install.sets import MigrationSet
from . import read as st
from .repository import Repository

# Worst first: the state of a database is the worst state of its sets.
# "unused": a plugin with no set of its own whose database does not exist (it never needed one).
# "conflict": two installed sets keep their rows in one table of one database (knex would call either
# folder corrupt); "wrong_folder": the table holds rows of another plugin's set (a folder pointed at
# the wrong database, the mistake of Backstage's own rollback guide). States are identifiers (JSON contract).
SEVERITY = (
    "unreachable",
    "conflict",
    "wrong_folder",
    "ahead",
    "locked",
    "behind",
    "absent",
    "in_sync",
    "unused",
    "orphan",
)


# Where the hash of an applied migration's content comes from, most direct first (upgrade/drift.py).
APPLIED_FROM = ("journal", "backstage_migration_sources", "archive", "unknown")
# Each known source, said to people (status, plans, warnings).
APPLIED_FROM_SAID = {
    "journal": "knexwrap's journal",
    "backstage_migration_sources": "Backstage's stored migration sources",
    "archive": "the archive, the content installed then",
}


@dataclass(frozen=True)
class Drift:
    """The content a recorded migration was applied with, next to its installed file's."""

    applied_sha256: str
    applied_sha256_from: str  # one of APPLIED_FROM but "unknown": an unknown hash is no Drift at all
    file_sha256: str | None  # None: the file is not installed (a "missing" row)

    @property
    def changed(self) -> bool:
        """The installed file is not the one that was applied: its down() may not undo that up()."""
        return self.file_sha256 is not None and self.file_sha256 != self.applied_sha256


@dataclass(frozen=True)
class MigrationRow:
    name: str
    state: str  # "applied", "pending" or "missing" (recorded in the database, file absent)
    batch: int | None = None
    migration_time: str | None = None
    drift: Drift | None = None  # None: nothing says what content was applied


def file_sha(directory: str, name: str) -> str | None:
    """sha256 of an installed migration file; None when it cannot be read."""
    import hashlib  # deferred: loading OpenSSL costs ~3 ms on every start, and only drift hashes files

    try:
        with open(os.path.join(directory, name), "rb") as source:
            return hashlib.sha256(source.read()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class OtherRow:
    """A row of this set's table whose file belongs to another installed set: named with that set."""

    name: str
    batch: int
    package: str | None
    migrations_table: str  # the other set's own table
    migrations_directory: str


@dataclass(frozen=True)
class SetReport:
    package: str | None
    version: str | None
    migrations_table: str
    migrations_directory: str
    state: str  # "in_sync", "behind" (pending), "ahead" (missing files), "locked"; "absent" (no database yet)
    table_exists: bool
    current_version: str | None
    locked: bool
    last_batch: int | None
    last_run: str | None
    counts: dict[str, int]
    migrations: tuple[MigrationRow, ...]
    rows_of_other_sets: tuple[OtherRow, ...] = ()
    lock_rows: int = 1  # rows of <table>_lock; more than one: knex says "locked" until unlock clears them

    def names(self, wanted: str) -> tuple[str, ...]:
        return tuple(m.name for m in self.migrations if m.state == wanted)


def set_state(read: st.SetState) -> str:
    if read.locked:
        return "locked"
    if read.missing:
        return "ahead"
    return "behind" if read.pending else "in_sync"


Claims = Mapping[str, tuple[MigrationSet, ...]]  # file name -> the installed sets whose folder holds it


def claims(found: Iterable[MigrationSet]) -> dict[str, tuple[MigrationSet, ...]]:
    """Which installed sets ship each file name (read from their folders)."""
    owners: dict[str, list[MigrationSet]] = {}
    for one in found:
        for name in st.list_files(one.directory):
            owners.setdefault(name, []).append(one)
    return {name: tuple(sets) for name, sets in owners.items()}


def _others(migrations: MigrationSet, read: st.SetState, owners: Claims) -> tuple[OtherRow, ...]:
    present, rows = set(read.files), []
    for a in read.applied:
        theirs = [o for o in owners.get(a.name, ()) if o.directory != migrations.directory]
        if a.name not in present and theirs:
            o = theirs[0]
            rows.append(OtherRow(a.name, a.batch, o.package, o.table, o.directory))
    return tuple(rows)


def set_report(
    migrations: MigrationSet, read: st.SetState, owners: Claims | None = None, conflict: bool = False
) -> SetReport:
    """One set in one database. `owners` (claims()) names rows that belong to another installed set
    instead of calling them missing; `conflict`: another installed set keeps its rows in the same table."""
    others = _others(migrations, read, owners or {})
    if others:
        theirs = {o.name for o in others}
        read = replace(read, applied=tuple(a for a in read.applied if a.name not in theirs))
    present, stored = set(read.files), dict(read.stored)
    rows = [
        MigrationRow(a.name, "applied" if a.name in present else "missing", a.batch, a.migration_time)
        for a in read.applied
    ]
    rows = [_stored_drift(r, stored, migrations.directory) if r.name in stored else r for r in rows]
    rows += [MigrationRow(name, "pending") for name in read.pending]
    last = read.last_batch
    times = [a.migration_time for a in read.applied if a.batch == last and a.migration_time]
    return SetReport(
        package=migrations.package,
        version=migrations.version,
        migrations_table=migrations.table,
        migrations_directory=migrations.directory,
        state="conflict" if conflict else "wrong_folder" if others else set_state(read),
        table_exists=read.table_exists,
        current_version=st.current_version(read.applied_names),
        locked=read.locked,
        last_batch=last,
        last_run=max(times, default=None),
        counts={s: sum(1 for r in rows if r.state == s) for s in ("applied", "pending", "missing")},
        migrations=tuple(rows),
        rows_of_other_sets=others,
        lock_rows=read.lock_rows,
    )


def _stored_drift(row: MigrationRow, stored: Mapping[str, str], directory: str) -> MigrationRow:
    sha = file_sha(directory, row.name) if row.state == "applied" else None
    return replace(row, drift=Drift(stored[row.name], "backstage_migration_sources", sha))


def changed(found: SetReport) -> tuple[MigrationRow, ...]:
    """The recorded migrations whose installed file is not the content that was applied."""
    return tuple(m for m in found.migrations if m.drift is not None and m.drift.changed)


def worst(states: list[str]) -> str:
    return min(states, key=SEVERITY.index) if states else "in_sync"


@dataclass(frozen=True)
class DatabaseReport:
    plugin: str | None
    client: str
    database: str  # where it is, never with a password
    state: str  # worst of its sets, or "absent", "unreachable", "orphan"
    error: str | None
    sets: tuple[SetReport, ...]
    skip_migrations: bool = False  # app-config's skipMigrations: the backend applies none of these sets


@dataclass(frozen=True)
class InstallReport:
    databases: tuple[DatabaseReport, ...]
    notes: tuple[str, ...] = ()
    repository: Repository | None = None

    def count(self, wanted: str) -> int:
        return sum(1 for d in self.databases if d.state == wanted)

    @property
    def summary(self) -> dict[str, int]:
        return {s: self.count(s) for s in reversed(SEVERITY)}
