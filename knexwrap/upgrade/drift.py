"""Drift: is the installed file of a recorded migration the content that was applied? (`changed`)

knex records only names: a file changed between two package versions, or patched in place, goes
unnoticed, and a downgrade would run a down() that does not match the up() that ran. The content that
was applied is known, most direct first (state/report.APPLIED_FROM), from:

- journal: knexwrap applied it, and its journal records the sha256 of the file knex ran; used when the
  newest journal record of that migration (same database and table) is an apply that is not older than
  the row's migration_time (a later revert, or a row written after the record, means the backend ran it);
- backstage_migration_sources: Backstage's own stored source of the migration (state/read.py), when its
  checksum is the sha256 of its stored text;
- archive: the content the archive (archive.py) had first seen, for the set's package, most recently at or
  before the row's migration_time: the version installed then, as far as the archive knows;
- else unknown: no Drift, no flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors
from ..state import report
from ..state.plugin import Status, Target, read_state
from ..state.read import SetState
from . import statedir

if TYPE_CHECKING:  # status imports the archive and the journal only when the state folder holds them
    from datetime import datetime

    from .archive import SetIndex

# The database's clock and this machine's may differ a little: a journal record this much older than the
# row it describes still describes it (a backend re-run comes minutes later, at least).
_SKEW_SECONDS = 60
Facts = dict[tuple[str, str, str], tuple[str, str, Any]]  # (database, table, name) -> (time, status, sha256)


def _when(text: Any) -> datetime | None:
    """An ISO 8601 time with its offset; None for anything else (a time without one compares with none)."""
    from datetime import datetime

    try:
        found = datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None
    return found if found is not None and found.tzinfo is not None else None


def journal_facts(records: Iterable[dict[str, Any]]) -> Facts:
    """The newest apply or revert the journal records of each (database, table, migration)."""
    facts: Facts = {}
    for record in records:
        for ran in record.get("ran") or []:
            if isinstance(ran, dict) and ran.get("status") in ("applied", "reverted"):
                key = (str(ran.get("database")), str(ran.get("table")), str(ran.get("name")))
                facts[key] = (str(record.get("time")), str(ran["status"]), ran.get("sha256"))
    return facts


def _from_journal(fact: tuple[str, str, Any] | None, row: report.MigrationRow) -> str | None:
    if fact is None or fact[1] != "applied" or not isinstance(fact[2], str):
        return None
    recorded, ran = _when(fact[0]), _when(row.migration_time)
    if recorded is not None and ran is not None and (ran - recorded).total_seconds() > _SKEW_SECONDS:
        return None  # the row was written after knexwrap's apply: someone else ran it since
    return fact[2]


def _from_archive(indexes: Sequence[SetIndex], row: report.MigrationRow) -> str | None:
    ran = _when(row.migration_time)
    if ran is None:
        return None
    seen = [
        (when, sha)
        for index in indexes
        for name, sha, first in index.first_seen()
        if name == row.name and (when := _when(first)) is not None and when <= ran
    ]
    return max(seen)[1] if seen else None


def _row(
    row: report.MigrationRow, found: report.SetReport, where: str, facts: Facts, indexes: Sequence[SetIndex]
) -> report.MigrationRow:
    if row.state == "pending":
        return row
    fact = _from_journal(facts.get((where, found.migrations_table, row.name)), row)
    if fact is None and row.drift is not None:
        return row  # Backstage's stored source, read with the rows
    source, sha = ("journal", fact) if fact else ("archive", _from_archive(indexes, row))
    if sha is None:
        return row
    installed = report.file_sha(found.migrations_directory, row.name) if row.state == "applied" else None
    return replace(row, drift=report.Drift(sha, source, installed))


def _archived(project: Path, found: report.SetReport) -> list[SetIndex]:
    root = statedir.where(project) / "archive"
    if found.package is None or not root.is_dir():
        return []  # never created here: status creates nothing
    from . import archive

    try:
        every = archive.indexes(root, found.migrations_table, found.package)
    except errors.KnexwrapError:
        return []  # a damaged index of the package: the archive says nothing, `archive` reports it
    return [i for i in every if i.package == found.package]


def annotate_set(project: Path, where: str, found: report.SetReport, facts: Facts) -> report.SetReport:
    """FOUND (a set of the database WHERE, as connection.target() names it) with each recorded row's Drift."""
    if not any(m.state != "pending" for m in found.migrations):
        return found
    indexes = _archived(project, found)
    return replace(found, migrations=tuple(_row(m, found, where, facts, indexes) for m in found.migrations))


def _facts(project: Path, databases: Sequence[str]) -> Facts:
    from . import journal

    if not (statedir.where(project) / journal.FILE).is_file():
        return {}  # never created here: status creates nothing
    try:
        return journal_facts(journal.read(project, containing=databases))
    except errors.KnexwrapError:
        return {}  # an unreadable journal (or a state folder others can write): nothing known from it


def revert_warnings(target: Target, names: Sequence[str], state: SetState | None = None) -> tuple[str, ...]:
    """One warning per file of NAMES (a revert of TARGET's set) whose installed content is not the one that was
    applied: the down() that runs is not the one of that up(). STATE: the set as the plan read it (else read)."""
    found = report.set_report(target.migrations, state if state is not None else read_state(target))
    where = str(target.header()["database"])
    marked = annotate_set(Path(target.project), where, found, _facts(Path(target.project), [where]))
    return tuple(
        f"{m.name} changed since it was applied (sha256 {m.drift.applied_sha256[:12]} from "
        f"{report.APPLIED_FROM_SAID.get(m.drift.applied_sha256_from, m.drift.applied_sha256_from)}, installed "
        f"{str(m.drift.file_sha256)[:12]}): reverting it runs the installed down(), which may not undo what the "
        "applied up() did"
        for m in marked.migrations
        if m.name in names and m.drift is not None and m.drift.changed
    )


def annotate_status(status: Status) -> Status:
    """`status PLUGIN`'s result with the Drift of every recorded migration of every set."""
    project, where = Path(status.target["root"]), str(status.target["database"])
    facts = _facts(project, [where])
    return replace(
        status,
        primary=annotate_set(project, where, status.primary, facts),
        other_sets=tuple(annotate_set(project, where, s, facts) for s in status.other_sets),
    )


def annotate_install(project: Path, found: report.InstallReport) -> report.InstallReport:
    """The whole-install status with the Drift of every recorded migration of every set."""
    facts = _facts(project, [db.database for db in found.databases])
    databases = tuple(
        replace(db, sets=tuple(annotate_set(project, db.database, s, facts) for s in db.sets)) for db in found.databases
    )
    return replace(found, databases=databases)
