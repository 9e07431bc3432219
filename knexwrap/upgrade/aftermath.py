"""What a change that did not run exactly its plan did: always from re-reading the database.

knex's output says what knex meant to do; after a failure, a changed database or an interrupt, only
the table itself says what happened. The events of knexwrap's knexfile say which of those rows this
run wrote, and which migration was running when it stopped.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from .. import errors
from ..knex import events
from ..state import read as st
from ..state.plugin import Target, read_state, reader_entry
from .interrupt import Watch


@dataclass(frozen=True)
class Planned:
    """The plan as shown: action "apply"/"revert", names in run order, the rows (name, batch) it was made from."""

    action: str
    names: tuple[str, ...]
    applied: tuple[tuple[str, int], ...]
    tables: tuple[str, ...] | None = None  # MySQL/MariaDB: every table before the run, to name what DDL left


def all_tables(target: Target) -> tuple[str, ...] | None:
    """Every table of a MySQL/MariaDB database (None elsewhere: there a failed migration's DDL rolls back)."""
    if target.connection.client not in ("mysql", "mysql2"):
        return None
    entry = {**reader_entry(target.connection, [], target.node.timeout), "listTables": True}
    [result] = target.node.read([entry])
    return tuple(result.get("allTables", ())) if "error" not in result else None


def _done(planned: Planned, after: st.SetState, seen: tuple[events.MigrationEvent, ...]) -> list[str]:
    """Files whose up/down returned in this run (its events) that the database now shows as done."""
    now = set(after.applied_names)
    finished = events.finished(seen)
    return [n for n in finished if (n in now) == (planned.action == "apply")]


def _verb(planned: Planned) -> str:
    return "applied" if planned.action == "apply" else "reverted"


def after_failure(
    target: Target, planned: Planned, failure: errors.KnexwrapError | None, seen: tuple[events.MigrationEvent, ...]
) -> errors.KnexwrapError:
    """The error after a run that failed or did not follow the plan (StateChanged when the table moved)."""
    try:
        after = read_state(target)
    except errors.KnexwrapError:
        unread = failure or errors.StateChanged("the run did not follow the plan")
        unread.message += "; knexwrap could not read the database afterwards: check knexwrap status"
        return unread
    done = _done(planned, after, seen)
    said = f"{_verb(planned)} before it stopped: {', '.join(done) or 'none'}"
    moved_under_us = not done and tuple((a.name, a.batch) for a in after.applied) != planned.applied
    if failure is None or events.stale(seen, failure.output) or moved_under_us:
        error: errors.KnexwrapError = errors.StateChanged(
            f"the migrations table {target.migrations.table} changed since the plan was shown "
            f"({_difference(planned.applied, after)}); knexwrap ran nothing it had not shown: {said}; "
            "look again (knexwrap status) and run the command again"
        )
    else:
        error = failure
        error.message += f"; {said}" + _left_behind(target, planned)
    # The same facts as the message, for the JSON error document.
    error.facts.update({_verb(planned): done, "lock_held": after.locked})
    if after.locked:
        error.message += "; the migration lock is still held"
    return error


def _left_behind(target: Target, planned: Planned) -> str:
    if planned.tables is None:
        return ""
    now = all_tables(target)
    if now is None:
        return ""
    own = {target.migrations.table, f"{target.migrations.table}_lock"}  # knex creates these on a first run
    created = [t for t in now if t not in planned.tables and t not in own]
    dropped = [t for t in planned.tables if t not in now and t not in own]
    if not created and not dropped:
        return ""
    what = [
        f"table {', '.join(created)} created" if created else "",
        f"{', '.join(dropped)} dropped" if dropped else "",
    ]
    return (
        f"; left behind by the failed migration: {' and '.join(w for w in what if w)} (MySQL/MariaDB commits each "
        "DDL statement on its own): undo it by hand before running again"
    )


def _difference(before: tuple[tuple[str, int], ...], after: st.SetState) -> str:
    """What another run changed: names applied or reverted since the plan was read."""
    was, now = [n for n, _ in before], list(after.applied_names)
    gained = [n for n in now if n not in was]
    lost = [n for n in was if n not in now]
    parts = ([f"applied since: {', '.join(gained)}"] if gained else []) + (
        [f"reverted since: {', '.join(lost)}"] if lost else []
    )
    return "; ".join(parts) or "the batches differ"


def after_interrupt(target: Target, planned: Planned, watch: Watch, unlock_hint: str) -> errors.Interrupted:
    """The report after SIGINT/SIGTERM: done, stopped, not run, and the lock, from re-reading the database.

    A knex lock left held is released when this run's knex is known to have taken it (its "checked" event);
    any other is reported with the command that releases it (`unlock_hint`).
    """
    name = signal.Signals(watch.signals[0]).name
    try:
        after = read_state(target)
    except errors.KnexwrapError as unread:
        return errors.Interrupted(
            f"interrupted by {name}; knexwrap could not read the database afterwards ({unread.message}): "
            "check knexwrap status",
            exit_code=watch.exit_code,
        )
    seen = tuple(watch.seen)
    done = _done(planned, after, seen)
    parts = [f"interrupted by {name}: {_verb(planned)}: {', '.join(done) or 'none'}"]
    stopped = watch.stopped
    if stopped is not None and stopped.name not in done:
        how = "cancelled on the server and rolled back" if watch.cancelled else "stopped"
        if not stopped.transaction:
            how += " (it ran without a transaction: it may be half done)"
        parts.append(f"{stopped.name} {how}")
    elif stopped is not None:
        parts.append(f"{stopped.name} was let finish")
    undone = [n for n in events.finished(seen) if n not in done and (stopped is None or n != stopped.name)]
    if undone:  # they ran in the same transaction as the stopped one
        parts.append(f"rolled back with it: {', '.join(undone)}")
    ran = {*done, *undone, *([stopped.name] if stopped else [])}
    parts.append(f"not run: {', '.join(n for n in planned.names if n not in ran) or 'none'}")
    lock_text, lock_held = _lock_state(target, after, seen, unlock_hint)
    parts.append(lock_text)
    interrupted = errors.Interrupted("; ".join(parts), exit_code=watch.exit_code)
    interrupted.facts.update({_verb(planned): done, "lock_held": lock_held})
    return interrupted


def _lock_state(
    target: Target, after: st.SetState, seen: tuple[events.MigrationEvent, ...], hint: str
) -> tuple[str, bool]:
    """The lock after an interrupt in words, and whether it is still held."""
    if not after.locked:
        return "the migration lock is free", False
    if any(e.kind == "checked" for e in seen):  # this run's knex held it: knexwrap may give it back
        try:
            target.node.knex(["migrate:unlock"], target.knex_config())
        except errors.KnexwrapError as failed:
            return f"the migration lock is still held ({failed.message}): release it with {hint}", True
        return "the migration lock this run had taken was released", False
    return f"the migration lock is held, not by this run: if nothing else is running, release it with {hint}", True
