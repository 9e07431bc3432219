"""The verbs that change a database: each is planned first (read-only), then carried out by knex.

The plan names exactly the files knex will apply or revert, so the user sees the change before
it happens; after a failure the database is read again so the report says what really changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .. import errors
from ..install import sets
from ..knex import events, parse
from ..knex.node import ChangeRun
from ..state import read as st
from ..state import report
from ..state.plugin import Target, read_state
from . import aftermath, interrupt, lock, names, pause
from .ensure import Creation, create, creation_for


@dataclass(frozen=True)
class Plan:
    """What a change verb will do: `names` in the order knex runs them, from the state `applied`.

    applied: the table's rows (name, batch) in id order when the plan was read; the run refuses to
    start unless the table is exactly this under knex's lock (js/knexfile.js).
    """

    command: str
    action: str  # "apply", "revert" or "unlock"
    names: tuple[str, ...]
    knex_args: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    applied: tuple[tuple[str, int], ...] = ()
    creates: Creation | None = None  # the plugin's database or schema, created first (ensureExists)
    # up/down --to: the only files knex is shown (js/knexfile.js), so it runs exactly `names`; None: all.
    listed: tuple[str, ...] | None = None
    read: st.SetState | None = field(default=None, compare=False, metadata={"journal": False})  # for drift notes


@dataclass(frozen=True)
class Outcome:
    target: dict[str, Any]
    command: str
    action: str
    planned: tuple[str, ...]
    done: tuple[str, ...]
    dry_run: bool
    batch: int | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    creates: str | None = None  # what was (dry run: would be) created before the migrations ran
    backups: tuple[str, ...] = ()  # the verified backup taken before a revert


def refuse_if_wrong_folder(state: st.SetState, target: Target) -> None:
    """WrongFolder (8) when the table holds rows of another installed set: the folder is not this database's."""
    owners = report.claims(sets.discover_all(target.project))
    rows = report.set_report(target.migrations, state, owners).rows_of_other_sets
    if rows:
        theirs = sorted({f"{r.package} ({r.migrations_directory})" for r in rows})
        raise errors.WrongFolder(
            f"{target.connection.target()} table {target.migrations.table} holds {len(rows)} migrations of "
            f"{', '.join(theirs)}, not of {target.migrations.package or target.migrations.directory}: this folder "
            "and this database do not belong together (see knexwrap doctor); nothing was changed"
        )


def refuse_if_ahead(state: st.SetState) -> None:
    """CorruptDirectory (8) when the table records files the folder lacks, as knex itself refuses to run then."""
    if state.missing:
        raise errors.CorruptDirectory(
            f"the database is ahead of its migration files: {', '.join(state.missing)} "
            "recorded but missing from the folder; knex refuses to run until they are back "
            "(run this from the newer install, whose folder still has them)",
            missing=state.missing,
        )


def refuse_if_locked(state: st.SetState, target: Target) -> None:
    """Locked (9) when knex's migration lock of the set is held."""
    if state.locked:
        raise errors.Locked(
            f"the migration lock of {target.migrations.table} is held: another migration is running, or "
            "one crashed while holding it; if neither backend nor knex is running, release it with "
            f"{lock.unlock_command(target)}"
        )


def _rows(state: st.SetState) -> tuple[tuple[str, int], ...]:
    return tuple((a.name, a.batch) for a in state.applied)


def plan_latest(target: Target) -> Plan:
    state, creates = _checked_or_absent(target)
    return Plan(
        "latest", "apply", state.pending, ("migrate:latest", "--verbose"), applied=_rows(state), creates=creates
    )


def plan_up(target: Target, name: str | None) -> Plan:
    state, creates = _checked_or_absent(target)
    if name is None:
        # knex is given the shown name: "the next pending file" is decided once, here, not again at run time.
        first = state.pending[:1]
        return Plan("up", "apply", first, ("migrate:up", *first), applied=_rows(state), creates=creates)
    wanted = _not_applied(target, state, name)
    early = names.out_of_order(state, wanted)
    return Plan("up", "apply", (wanted,), ("migrate:up", wanted), early, applied=_rows(state), creates=creates)


def plan_up_to(target: Target, name: str) -> Plan:
    """up --to NAME: the pending files up to and including NAME in knex's order, in one knex run and one batch
    (migrate:latest shown only them, as `latest` gives every file it runs one batch)."""
    state, creates = _checked_or_absent(target)
    wanted = _not_applied(target, state, name)
    run = tuple(n for n in state.pending if n <= wanted)
    return Plan("up", "apply", run, ("migrate:latest", "--verbose"), applied=_rows(state), creates=creates, listed=run)


def _not_applied(target: Target, state: st.SetState, name: str) -> str:
    wanted = names.require(target, state, name)
    if wanted in state.applied_names:
        earlier = names.pending_before(state, wanted)
        also = f" (still pending before it: {', '.join(earlier)})" if earlier else ""
        raise errors.AlreadyApplied(f'migration "{wanted}" is already applied: nothing to run{also}')
    return wanted


def plan_down(target: Target, name: str | None) -> Plan:
    state = _checked(target)
    if name is None:
        last = state.applied_names[-1:]
        return Plan("down", "revert", last, ("migrate:down", *last), applied=_rows(state), read=state)
    wanted = _applied(target, state, name)
    return Plan("down", "revert", (wanted,), ("migrate:down", wanted), applied=_rows(state), read=state)


def plan_down_to(target: Target, name: str) -> Plan:
    """down --to NAME: the applied files after NAME in knex's order, last first, in one knex run (migrate:rollback
    --all shown only them); NAME itself stays applied."""
    state = _checked(target)
    wanted = _applied(target, state, name, to=True)
    run = tuple(reversed([n for n in state.files if n > wanted and n in state.applied_names]))
    args = ("migrate:rollback", "--all", "--verbose")
    return Plan("down", "revert", run, args, applied=_rows(state), listed=run, read=state)


def _applied(target: Target, state: st.SetState, name: str, to: bool = False) -> str:
    wanted = names.require(target, state, name)
    if wanted not in state.applied_names:
        after = [n for n in state.applied_names if n > wanted]
        if to and after:  # down --to stops at an applied migration: a pending one is no place to stop
            raise errors.MigrationNotRun(
                f'migration "{wanted}" is pending, not applied: down --to needs an applied migration to stop at '
                f"(applied after it: {', '.join(after)})"
            )
        raise errors.MigrationNotRun(f'migration "{wanted}" has not been run: nothing to revert')
    return wanted


def plan_rollback(target: Target, everything: bool) -> Plan:
    state = _checked(target)
    batch = state.last_batch
    last = state.batch_files(batch) if batch is not None else ()
    names = tuple(reversed(state.applied_names)) if everything else last
    args = ("migrate:rollback", "--all", "--verbose") if everything else ("migrate:rollback", "--verbose")
    return Plan("rollback", "revert", names, args, applied=_rows(state), read=state)


def plan_unlock(target: Target) -> Plan:
    state = read_state(target)
    names = (f"{target.migrations.table}_lock",) if state.locked else ()
    return Plan("unlock", "unlock", names, ("migrate:unlock",))


def _checked_or_absent(target: Target) -> tuple[st.SetState, Creation | None]:
    """The set's state; for a database or schema the backend would create (ensureExists), an empty one."""
    try:
        return _checked(target), None
    except errors.DatabaseMissing as missing:
        creates = creation_for(target, missing)
        return st.SetState(False, (), st.list_files(target.migrations.directory), False), creates


def _checked(target: Target) -> st.SetState:
    state = read_state(target)
    refuse_if_wrong_folder(state, target)
    # knexConfig.migrations.disableMigrationsListValidation: knex (and the backend) run despite missing files.
    if not target.knex_config()["migrations"].get("disableMigrationsListValidation"):
        refuse_if_ahead(state)
    refuse_if_locked(state, target)
    return state


def with_warnings(target: Target, plan: Plan) -> Plan:
    """Name the files of the plan that run without a transaction, and those of a revert changed since they ran
    (its down() may not undo what its up() did), before anyone says yes."""
    if plan.action == "unlock":
        return plan
    loose = st.without_transaction(target.migrations.directory, plan.names)
    notes = tuple(f"{name} runs without a transaction: a failure can leave it half done" for name in loose)
    if plan.action == "revert" and plan.names:
        from . import drift

        notes += drift.revert_warnings(target, plan.names, plan.read)
    return replace(plan, warnings=plan.warnings + notes)


def dry_run(target: Target, plan: Plan) -> Outcome:
    creates = str(plan.creates) if plan.creates else None
    return Outcome(
        target.header(), plan.command, plan.action, plan.names, (), True, warnings=plan.warnings, creates=creates
    )


def execute(
    target: Target,
    plan: Plan,
    say: Callable[[str], None] = lambda _: None,
    on_event: Callable[[events.MigrationEvent], None] | None = None,
    backup: Callable[[], tuple[str, ...]] | None = None,
) -> Outcome:
    """Carry the plan out with one knex run held to it (knex/js/knexfile.js); nothing runs for an empty plan.

    Under knexwrap's own lock of the set (upgrade/lock.py), `backup` first when given (it returns the verified
    backups' paths, in Outcome.backups): no other knexwrap change runs between the backup and the run.
    Raises StateChanged when the database is no longer what the plan was made from (nothing of the plan
    ran, or only the prefix named), Interrupted after SIGINT/SIGTERM, MigrationFailed/Timeout/... with what
    the database shows afterwards. `say` gets the lines an operator must read at once (what an interrupt
    does); `on_event` each migration's events as knex runs them (knex/events.py: checked, start, end, fail,
    ...), e.g. for a journal.
    """
    outcome = Outcome(target.header(), plan.command, plan.action, plan.names, (), False, warnings=plan.warnings)
    if not plan.names:
        return outcome
    if plan.creates is not None:  # before knexwrap's lock, which is held in the database being created
        create(target, plan.creates)
        outcome = replace(outcome, creates=str(plan.creates))
    pause.point("confirmed")
    with lock.hold(target, check_knex_lock=plan.action != "unlock") as holder:
        pause.point("locked")
        taken = backup() if backup is not None else ()
        if plan.action == "unlock":
            parse.parse_unlock(
                target.node.knex(list(plan.knex_args), target.knex_config()).stdout, (target.node.password,)
            )
            return replace(outcome, done=plan.names)
        planned = replace(_planned(plan), tables=aftermath.all_tables(target))
        watch = interrupt.Watch(target.connection.client, say, holder, listener=on_event)
        with interrupt.watching(watch):
            run = _run(target, plan, watch)
        if watch.signals:
            raise aftermath.after_interrupt(target, planned, watch, lock.unlock_command(target))
        failure = run.failure()
        ran = events.finished(run.events)
        if failure is not None or events.stale(run.events, run.run.stdout) or ran != plan.names:
            raise aftermath.after_failure(target, planned, failure, run.events)
    change = parse.parse_change(run.run.stdout, (target.node.password,))
    return replace(outcome, done=ran, batch=change.batch, notes=change.notes, backups=taken)


def _planned(plan: Plan) -> aftermath.Planned:
    return aftermath.Planned(plan.action, plan.names, plan.applied)


def _run(target: Target, plan: Plan, watch: interrupt.Watch) -> ChangeRun:
    held = {
        "table": target.migrations.table,
        "direction": "up" if plan.action == "apply" else "down",
        "names": list(plan.names),
        "applied": [list(row) for row in plan.applied],
        **({"listed": list(plan.listed)} if plan.listed is not None else {}),
    }
    try:
        return target.node.change(
            list(plan.knex_args),
            target.knex_config(),
            held,
            on_event=watch.saw,
            on_start=watch.started,
            app_name=lock.app_name(),
        )
    except errors.Timeout as expired:  # --change-timeout: the user asked for a clock on the change
        raise aftermath.after_failure(target, _planned(plan), expired, tuple(watch.seen)) from expired


def with_limits(target: Target, change_timeout: float | None, lock_timeout: float | None) -> Target:
    """The target whose change runs stop after `change_timeout` s (None: never by a clock) and whose PostgreSQL
    sessions give up waiting for a table lock after `lock_timeout` s (None: the server's setting)."""
    for name, seconds in (("--change-timeout", change_timeout), ("--lock-timeout", lock_timeout)):
        if seconds is not None and seconds <= 0:
            raise errors.ConfigError(f"{name} must be a positive number of seconds")
    if lock_timeout is not None and target.connection.client != "pg":
        raise errors.ConfigError("--lock-timeout sets PostgreSQL's lock_timeout: it has no meaning for this database")
    node = replace(target.node, change_timeout=change_timeout, lock_timeout=lock_timeout)
    return replace(target, node=node)
