"""`knexwrap mark PLUGIN NAME --applied | --reverted`: repair history by hand, without running the migration.

Flyway's `repair`, Prisma's `resolve`, Alembic's `stamp`: after a migration that ran without a transaction
failed half way and was finished (or undone) by hand, its row in knex's migrations table is written or
removed to say so. The row is the one knex's Migrator writes (knex/js/mark.js): the batch knex would have
given it (the last batch + 1, 1 on an empty table) and migration_time now. Planned read-only, shown, then
carried out under knexwrap's lock, after a backup of the migrations table, in one transaction that re-reads
the table and writes nothing unless it is exactly what the plan was made from (StateChanged, exit 19).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .. import errors
from ..knex.mask import mask
from ..state import read as st
from ..state.plugin import Target, connection_config, read_state
from . import backup, changes, journal, lock, names, pause

ACTIONS = ("applied", "reverted")


@dataclass(frozen=True)
class MarkPlan:
    """One row to write (action "applied") or remove ("reverted") in the target's migrations table.

    batch: the row's batch (applied: the last batch + 1, 1 on an empty table; reverted: the row's own).
    applied: the table's rows (name, batch) in id order when the plan was read: the run writes nothing unless
    the table is exactly this. schema: PostgreSQL's current schema, where the table is (for the backup).
    """

    command: str
    action: str
    name: str
    batch: int
    migration_time: str | None  # reverted: the row's time (UTC ISO 8601); applied: None until written
    sha256: str | None  # of the file in the folder; None when it is not there (a row whose file is gone)
    applied: tuple[tuple[str, int], ...]
    schema: str | None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MarkOutcome:
    """What `mark` did (or, dry_run, would do); the document schemas/mark.json describes."""

    target: dict[str, Any]
    command: str
    action: str
    name: str
    batch: int
    migration_time: str | None  # the row written or removed (UTC); None for a row not written yet
    sha256: str | None
    dry_run: bool
    done: bool
    backup_to: str | None  # the folder the backup goes to; None with --no-backup
    backups: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def plan(target: Target, name: str, action: str) -> MarkPlan:
    """The row `mark` would write or remove, read without changing anything.

    Raises MigrationNotFound (applied: NAME is applied already, or no file of the folder), MigrationNotRun
    (reverted: no row), Locked (knex's lock is held), WrongFolder, CorruptDirectory (applied, files missing),
    ConfigError (the migrations table does not exist: knex never ran here)."""
    state = read_state(target)
    changes.refuse_if_wrong_folder(state, target)
    changes.refuse_if_locked(state, target)
    if action == "applied":
        return _plan_applied(target, state, name)
    wanted = names.require(target, state, name)
    if wanted not in state.applied_names:
        raise errors.MigrationNotRun(f'migration "{wanted}" has not been run: no row to remove')
    rows = [a for a in state.applied if a.name == wanted]
    row = rows[-1]
    sha = journal.file_sha(target.migrations.directory, wanted) if wanted in state.files else None
    notes: tuple[str, ...] = (
        () if sha else (f"{wanted} is not in {target.migrations.directory}: only its row is removed",)
    )
    if len(rows) > 1:  # knex's own delete is by name: it removes every one of them, and so does mark
        notes += (f"{len(rows)} rows carry the name {wanted}: every one of them is removed, as knex's down would",)
    return MarkPlan("mark", action, wanted, row.batch, row.migration_time, sha, _rows(state), _schema(target), notes)


def _plan_applied(target: Target, state: st.SetState, name: str) -> MarkPlan:
    wanted = names.require(target, state, name)
    if wanted in state.applied_names:
        raise errors.AlreadyApplied(f'migration "{wanted}" is already applied: nothing to record')
    if wanted not in state.pending:
        raise errors.MigrationNotFound(f'migration "{wanted}" is not in {target.migrations.directory}')
    if not target.knex_config()["migrations"].get("disableMigrationsListValidation"):
        changes.refuse_if_ahead(state)
    if not state.table_exists:
        raise errors.ConfigError(
            f"{target.migrations.table} does not exist in {target.connection.target()}: knex has never run here, "
            "so no migration can have been finished by hand; nothing was changed"
        )
    batch, said = _batch(target, state, wanted)
    notes = (f"{wanted} is recorded as applied without running it, in {said}",)
    warnings: tuple[str, ...] = ()
    if target.connection.client in ("mysql", "mysql2"):
        warnings = (
            f"MySQL/MariaDB commits each DDL statement on its own: a failed run of {wanted} may have left tables "
            "behind, whatever its transaction; record it only if all that it does was done by hand",
        )
    elif not st.without_transaction(target.migrations.directory, (wanted,)):
        warnings = (
            f"{wanted} runs in a transaction: a failed run of it left nothing behind; record it only if what it "
            "does was done by hand",
        )
    sha = journal.file_sha(target.migrations.directory, wanted)
    return MarkPlan("mark", "applied", wanted, batch, None, sha, _rows(state), _schema(target), notes, warnings)


def _batch(target: Target, state: st.SetState, wanted: str) -> tuple[int, str]:
    """The batch WANTED would have had, and why: that of the migrations the run that stopped at WANTED applied
    before it (the journal's record of that run, where they are still one batch), else the last batch + 1."""
    mates = _run_mates(target, wanted)
    batches = {a.batch for a in state.applied if a.name in mates}
    if len(batches) == 1:
        found = batches.pop()
        return found, f"batch {found}: that of {', '.join(sorted(mates))}, applied by the run that stopped at it"
    last = state.last_batch
    if not last:
        return 1, "batch 1: the table has no rows yet (as knex would)"
    return last + 1, f"batch {last + 1}: the last batch is {last} (as knex would)"


def _run_mates(target: Target, wanted: str) -> set[str]:
    """What the newest journaled run of WANTED applied before it, if that run stopped at WANTED (status failed)."""
    database, table = str(target.header()["database"]), target.migrations.table
    for record in reversed(journal.read(target.project, containing=[database])):
        ran = [
            r
            for r in record.get("ran") or ()
            if isinstance(r, dict) and (r.get("database"), r.get("table")) == (database, table)
        ]
        if any(r.get("name") == wanted for r in ran):
            failed = any(r.get("name") == wanted and r.get("status") == "failed" for r in ran)
            return {str(r.get("name")) for r in ran if r.get("status") == "applied"} if failed else set()
    return set()


def _rows(state: st.SetState) -> tuple[tuple[str, int], ...]:
    return tuple((a.name, a.batch) for a in state.applied)


def _script(target: Target, request: dict[str, Any]) -> dict[str, Any]:
    """One run of js/mark.js; its answer, or the typed error of a database failure (message masked)."""
    full = {**request, "config": connection_config(target.connection, target.node.timeout)}
    run = target.node.script("mark.js", {"KNEXWRAP_MARK": json.dumps({**full, "table": target.migrations.table})})
    try:
        answer: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise errors.KnexFailed(f"knexwrap's mark.js failed: {run.stderr.strip()[:500]}", output=run.stderr) from None
    if "error" in answer:
        from ..state.read import reader_error

        answer["error"]["message"] = mask(str(answer["error"]["message"]), (target.node.password,))
        raise reader_error(answer)
    return answer


def _schema(target: Target) -> str | None:
    """PostgreSQL's current_schema() under the target's settings (searchPath, role): where the table is."""
    if target.connection.client != "pg":
        return None
    schema = _script(target, {"mode": "look"})["schema"]
    return str(schema) if schema is not None else None


def dry_run(target: Target, planned: MarkPlan, backup_to: str | None) -> MarkOutcome:
    return _outcome(target, planned, backup_to, dry_run=True)


def _outcome(target: Target, planned: MarkPlan, backup_to: str | None, *, dry_run: bool) -> MarkOutcome:
    p = planned
    return MarkOutcome(
        target.header(), "mark", p.action, p.name, p.batch, p.migration_time, p.sha256, dry_run, False, backup_to,
        notes=p.notes, warnings=p.warnings,
    )  # fmt: skip


def execute(
    target: Target, planned: MarkPlan, backup_to: str | None, on_backup: Callable[[str], None] = lambda _: None
) -> MarkOutcome:
    """Carry PLANNED out under knexwrap's lock: back the migrations table up (unless backup_to is None), then
    write or remove the row in one transaction that first checks knex's lock and the table's rows.
    on_backup gets the verified backup's path as soon as it exists (to be said and journaled even on failure).

    Raises Locked (knexwrap's or knex's lock held), BackupFailed (nothing written), StateChanged (the table is
    not what the plan was made from: nothing written)."""
    outcome = _outcome(target, planned, backup_to, dry_run=False)
    pause.point("confirmed")
    with lock.hold(target):
        pause.point("locked")
        if backup_to is not None:
            taken = backup.backup(
                target.connection, target.project, backup.Table(target.migrations.table, planned.schema)
            )
            on_backup(str(taken))
            outcome = replace(outcome, backups=(str(taken),))
        request = {"mode": "write", "action": planned.action, "name": planned.name, "batch": planned.batch}
        answer = _script(target, {**request, "applied": [list(r) for r in planned.applied]})
    if "locked" in answer:
        where = f"{target.migrations.table} in {target.connection.target()}"
        held = {"busy": answer["locked"] == "busy", "locked": True, "rows": 1, "free": 0}
        lock.refuse_knex_lock(where, held, lock.unlock_command(target))
    if "stale" in answer:
        raise errors.StateChanged(
            f"the migrations table {target.migrations.table} changed since the plan was shown "
            f"({_difference(planned.applied, answer['stale'])}): no row was written or removed; look again "
            "(knexwrap status) and run the command again"
        )
    row = answer["row"]
    return replace(outcome, done=True, batch=int(row["batch"]), migration_time=row["migration_time"])


def _difference(before: tuple[tuple[str, int], ...], now: list[list[Any]]) -> str:
    was, found = [n for n, _ in before], [str(r[0]) for r in now]
    gained = [n for n in found if n not in was]
    lost = [n for n in was if n not in found]
    parts = ([f"applied since: {', '.join(gained)}"] if gained else []) + (
        [f"reverted since: {', '.join(lost)}"] if lost else []
    )
    return "; ".join(parts) or "the batches differ"
