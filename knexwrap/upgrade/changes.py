"""The verbs that change a database: each is planned first (read-only), then carried out by knex.

The plan names exactly the files knex will apply or revert, so the user sees the change before
it happens; after a failure the database is read again so the report says what really changed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .. import errors
from ..knex import parse
from ..state import read as st
from ..state.plugin import Target, neighbours, read_state


@dataclass(frozen=True)
class Plan:
    command: str
    action: str  # "apply", "revert" or "unlock"
    names: tuple[str, ...]
    knex_args: tuple[str, ...]
    warnings: tuple[str, ...] = ()


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


def set_for_name(target: Target, name: str | None) -> Target:
    """The set of the plugin's database whose folder holds NAME: `down catalog <a scheduler file>`
    means the scheduler's set in the catalog database. The plugin's own set when NAME is its own or
    in no folder."""
    if name is None:
        return target
    own = st.list_files(target.migrations.directory)
    if _file_name(name, own) in own:
        return target
    for other in neighbours(target):
        files = st.list_files(other.directory)
        if _file_name(name, files) in files:
            return replace(target, migrations=other)
    return target


def _file_name(name: str, candidates: tuple[str, ...]) -> str:
    """NAME as typed, with or without its extension, matched against the names knex knows."""
    if name in candidates:
        return name
    for candidate in candidates:
        if candidate.rsplit(".", 1)[0] == name:
            return candidate
    return name


def _refuse_if_ahead(state: st.SetState) -> None:
    if state.missing:
        raise errors.CorruptDirectory(
            f"the database is ahead of its migration files: {', '.join(state.missing)} "
            "recorded but missing from the folder; knex refuses to run until they are back "
            "(run this from the newer install, whose folder still has them)",
            missing=state.missing,
        )


def _refuse_if_locked(state: st.SetState, target: Target) -> None:
    if state.locked:
        raise errors.Locked(
            f"the migration lock of {target.migrations.table} is held: another migration is running, or "
            "one crashed while holding it; if neither backend nor knex is running, release it with "
            "knexwrap unlock"
        )


def plan_latest(target: Target) -> Plan:
    state = _checked(target)
    return Plan("latest", "apply", state.pending, ("migrate:latest", "--verbose"))


def plan_up(target: Target, name: str | None) -> Plan:
    state = _checked(target)
    if name is None:
        return Plan("up", "apply", state.pending[:1], ("migrate:up",))
    wanted = _file_name(name, state.files)
    if wanted in state.applied_names:
        raise errors.MigrationNotFound(f'migration "{wanted}" is already applied: nothing to run')
    if wanted not in state.pending:
        raise errors.MigrationNotFound(f'migration "{wanted}" is not in {target.migrations.directory}')
    return Plan("up", "apply", (wanted,), ("migrate:up", wanted))


def plan_down(target: Target, name: str | None) -> Plan:
    state = _checked(target)
    if name is None:
        return Plan("down", "revert", state.applied_names[-1:], ("migrate:down",))
    wanted = _file_name(name, state.applied_names + state.files)
    if wanted not in state.applied_names:
        raise errors.MigrationNotRun(f'migration "{wanted}" has not been run: nothing to revert')
    return Plan("down", "revert", (wanted,), ("migrate:down", wanted))


def plan_rollback(target: Target, everything: bool) -> Plan:
    state = _checked(target)
    if everything:
        names = tuple(reversed(state.applied_names))
        return Plan("rollback", "revert", names, ("migrate:rollback", "--all", "--verbose"))
    batch = state.last_batch
    names = state.batch_files(batch) if batch is not None else ()
    return Plan("rollback", "revert", names, ("migrate:rollback", "--verbose"))


def plan_unlock(target: Target) -> Plan:
    state = read_state(target)
    names = (f"{target.migrations.table}_lock",) if state.locked else ()
    return Plan("unlock", "unlock", names, ("migrate:unlock",))


def _checked(target: Target) -> st.SetState:
    state = read_state(target)
    _refuse_if_ahead(state)
    _refuse_if_locked(state, target)
    return state


def with_warnings(target: Target, plan: Plan) -> Plan:
    """Name the files of the plan that run without a transaction before anyone says yes."""
    if plan.action == "unlock":
        return plan
    loose = st.without_transaction(target.migrations.directory, plan.names)
    notes = tuple(f"{name} runs without a transaction: a failure can leave it half done" for name in loose)
    return replace(plan, warnings=plan.warnings + notes)


def dry_run(target: Target, plan: Plan) -> Outcome:
    return Outcome(target.header(), plan.command, plan.action, plan.names, (), True, warnings=plan.warnings)


def execute(target: Target, plan: Plan) -> Outcome:
    """Carry the plan out with one knex run; nothing runs for an empty plan."""
    outcome = Outcome(target.header(), plan.command, plan.action, plan.names, (), False, warnings=plan.warnings)
    if not plan.names:
        return outcome
    try:
        run = target.node.knex(list(plan.knex_args), target.knex_config())
    except (errors.MigrationFailed, errors.Timeout) as failure:
        raise _with_aftermath(target, plan, failure) from failure
    if plan.action == "unlock":
        parse.parse_unlock(run.stdout)
        return replace(outcome, done=plan.names)
    change = parse.parse_change(run.stdout)
    # up/down print the name; latest/rollback print it with --verbose. Either way knex has the last word.
    return replace(outcome, done=change.names, batch=change.batch, notes=change.notes)


def _with_aftermath(target: Target, plan: Plan, failure: errors.KnexwrapError) -> errors.KnexwrapError:
    try:
        after = read_state(target)
    except errors.KnexwrapError:
        failure.message += "; knexwrap could not read the database afterwards: check knexwrap status"
        return failure
    applied = set(after.applied_names)
    if plan.action == "apply":
        done = [n for n in plan.names if n in applied]
        failure.message += f"; applied before it stopped: {', '.join(done) or 'none'}"
        failure.facts["applied"] = done
    else:
        done = [n for n in plan.names if n not in applied]
        failure.message += f"; reverted before it stopped: {', '.join(done) or 'none'}"
        failure.facts["reverted"] = done
    failure.facts["lock_held"] = after.locked
    if after.locked:
        failure.message += "; the migration lock is still held"
    return failure
