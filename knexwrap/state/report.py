"""What each migration set of a plugin database looks like: typed results, built from read state."""

from __future__ import annotations

from dataclasses import dataclass

from ..install.sets import MigrationSet
from . import read as st

# Worst first: the state of a database is the worst state of its sets.
SEVERITY = ("unreachable", "ahead", "locked", "behind", "absent", "in_sync", "orphan")


@dataclass(frozen=True)
class MigrationRow:
    name: str
    state: str  # "applied", "pending" or "missing" (recorded in the database, file absent)
    batch: int | None = None
    migration_time: str | None = None


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

    def names(self, wanted: str) -> tuple[str, ...]:
        return tuple(m.name for m in self.migrations if m.state == wanted)


def set_state(read: st.SetState) -> str:
    if read.locked:
        return "locked"
    if read.missing:
        return "ahead"
    return "behind" if read.pending else "in_sync"


def set_report(migrations: MigrationSet, read: st.SetState) -> SetReport:
    present = set(read.files)
    rows = [
        MigrationRow(a.name, "applied" if a.name in present else "missing", a.batch, a.migration_time)
        for a in read.applied
    ]
    rows += [MigrationRow(name, "pending") for name in read.pending]
    last = read.last_batch
    times = [a.migration_time for a in read.applied if a.batch == last and a.migration_time]
    return SetReport(
        package=migrations.package,
        version=migrations.version,
        migrations_table=migrations.table,
        migrations_directory=migrations.directory,
        state=set_state(read),
        table_exists=read.table_exists,
        current_version=st.current_version(read.applied_names),
        locked=read.locked,
        last_batch=last,
        last_run=max(times, default=None),
        counts={s: sum(1 for r in rows if r.state == s) for s in ("applied", "pending", "missing")},
        migrations=tuple(rows),
    )


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


@dataclass(frozen=True)
class InstallReport:
    databases: tuple[DatabaseReport, ...]
    notes: tuple[str, ...] = ()

    def count(self, wanted: str) -> int:
        return sum(1 for d in self.databases if d.state == wanted)

    @property
    def summary(self) -> dict[str, int]:
        return {s: self.count(s) for s in reversed(SEVERITY)}
