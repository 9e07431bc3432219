"""Carry a downgrade plan out: checks, backups, then `knex migrate:down NAME`, one file at a time.

Newest first, set by set, stopping at the first failure; the result says exactly what was
reverted, what failed and what was not run, and where the backups are.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import errors
from ..config import connection as conn
from ..install import sets
from ..knex import events, parse
from ..knex.node import Node
from ..state import whole as install
from ..state.plugin import Target, read_state, reader_entry
from . import archive, backup, interrupt, journal, lock, runfolder, stored
from .plan import DowngradePlan, SetPlan
from .target import Destination


@dataclass(frozen=True)
class Step:
    database: str
    table: str
    name: str
    status: str  # "reverted", "failed", "stopped" (interrupted) or "not_run"
    message: str | None = None


@dataclass(frozen=True)
class Verified:
    """What knex migrate:list shows for one changed set after the downgrade, with the target's folder.
    applied and pending are None when it could not be checked (a snapshot archive lacks the target's files)."""

    database: str
    table: str
    applied: tuple[str, ...] | None
    pending: tuple[str, ...] | None


@dataclass(frozen=True)
class DowngradeResult:
    to: Destination
    backups: tuple[str, ...]
    steps: tuple[Step, ...]
    verified: tuple[Verified, ...]  # sets the real knex now lists cleanly with the target's files
    failure: dict[str, Any] | None = None  # {"code", "message", "exit_code"} of the step that failed


def _refuse_locked(plan: DowngradePlan) -> None:
    locked = [s for s in plan.changes if s.locked]
    if locked:
        where = ", ".join(f"{s.database} ({s.table})" for s in locked)
        unlock = " / ".join(dict.fromkeys(f"knexwrap unlock {s.plugin}" for s in locked))
        raise errors.Locked(
            f"the migration lock is held in {where}: a migration is running, or one crashed; "
            f"nothing was changed (if nothing is running, release it with {unlock})"
        )


def _refuse_running_backends(node: Node, connections: dict[str, conn.Connection], timeout: float) -> None:
    targets = [
        {**reader_entry(c, [], timeout, plugin), "sessions": True}
        for plugin, c in connections.items()
        if c.client == "pg"
    ]
    for result in node.read(targets) if targets else []:
        sessions = result.get("sessions") or []
        if sessions:
            first = sessions[0]
            raise errors.BackendRunning(
                f"{first['application_name']} from {first['client']} (since {first['since']}) is connected to "
                f"{connections[result['id']].target()}: stop the Backstage backend first, it re-applies migrations "
                "when it starts unless backend.database.skipMigrations is set; nothing was changed (--force to go on)"
            )


def preflight(plan: DowngradePlan, p: install.Plan, *, take_backups: bool) -> None:
    """What can be refused before the question is asked: a held lock, a backup that cannot be taken."""
    _refuse_locked(plan)
    _refuse_changed_archive(plan, p)
    if take_backups:
        for connection in _connections(p, plan).values():
            backup.check_possible(connection)


def _refuse_changed_archive(plan: DowngradePlan, p: install.Plan) -> None:
    """Every archived file the run will use hashes to what it is stored under: checked before the question."""
    root = archive.default_root(p.project)
    for one in (one for one in plan.changes if one.files_from != "install"):
        prefer = journal.applied_hashes(p.project, one.table, one.recorded)
        names = [n for n in one.recorded if n not in {f.name for f in one.stored_sources}]
        key = (one.table, str(one.package))
        choice = runfolder.archived_choice(root, key, names, prefer, stored=bool(one.stored_sources))
        for name, sha in (choice.files if choice else {}).items():
            runfolder.checked(root, name, sha)


def _connections(p: install.Plan, plan: DowngradePlan) -> dict[str, conn.Connection]:
    return {s.plugin: p.databases[s.plugin] for s in plan.changes}


def set_target(p: install.Plan, one: SetPlan, node: Node) -> Target:
    """The Target knex reverts ONE with: the installed folder, or one built from the archive and Backstage's
    stored sources, each read and verified again now, right before knex runs (--sql uses it too)."""
    directory = one.directory
    if one.files_from != "install":
        # The code was swapped back already: knex gets a folder built from the archive, inside the
        # project so that the archived files' require() calls still find node_modules.
        key = (one.table, str(one.package))
        prefer = journal.applied_hashes(p.project, one.table, one.recorded)  # run what was applied
        texts = stored.for_run(p, one.plugin, one.table, one.stored_sources, node.timeout) if one.stored_sources else {}
        built = runfolder.materialize(
            archive.default_root(p.project), key, one.recorded, runfolder.run_folder(p.project, key), prefer, texts
        )
        directory = str(built)
    migrations = sets.MigrationSet(one.plugin, one.package, one.version_now, directory, one.table)
    return Target(p.project, migrations, p.databases[one.plugin], node)


def _revert_set(
    one: SetPlan,
    target: Target,
    node: Node,
    say: Callable[[str], None],
    on_event: Callable[[events.MigrationEvent], None] | None = None,
) -> list[Step]:
    """`knex migrate:down NAME` per file, under knexwrap's lock of the set, each held to the rows it expects.

    SIGINT/SIGTERM are handled as in every change (upgrade/interrupt.py): the step running is cancelled or
    let finish, no further step starts, and the report comes from re-reading the database.
    """
    steps: list[Step] = []
    try:
        with lock.hold(target) as holder:
            watch = interrupt.Watch(target.connection.client, say, holder, listener=on_event)
            with interrupt.watching(watch):
                for name in one.revert:
                    steps.append(_step(one, target, node, name, watch, {s.name for s in steps}))
    except _Stopped as stopped:
        raise _Stopped(steps + stopped.steps, stopped.failure) from stopped
    except errors.Locked as locked:  # another change took the set between the plan and this step
        raise _Stopped(steps, locked) from locked
    return steps


def _step(one: SetPlan, target: Target, node: Node, name: str, watch: interrupt.Watch, gone: set[str]) -> Step:
    if watch.signals:
        raise _Stopped([], errors.Interrupted("interrupted before " + name, exit_code=watch.exit_code))
    held = {
        "table": one.table,
        "direction": "down",
        "names": [name],
        "applied": [[n, None] for n in one.recorded if n not in gone],
    }
    run = node.change(["migrate:down", name], target.knex_config(), held, watch.saw, watch.started, lock.app_name())
    failure = run.failure()
    if watch.signals:
        failure = errors.Interrupted(
            f"interrupted by {signal.Signals(watch.signals[0]).name} during {name}", exit_code=watch.exit_code
        )
    elif failure is None and events.finished(run.events) != (name,):
        failure = errors.StateChanged(f"{one.table} changed since the plan was shown: {name} was not run")
    if failure is not None:
        raise _Stopped([_after_failure(one, target, name, failure)], failure)
    parse.parse_change(run.run.stdout, (node.password,))
    return Step(one.database, one.table, name, "reverted")


def _after_failure(one: SetPlan, target: Target, name: str, failure: errors.KnexwrapError) -> Step:
    """The failed step as the database shows it afterwards: a step that did revert says so; a held lock is named."""
    try:
        after = read_state(target)
    except errors.KnexwrapError as unread:
        failure.message += f"; knexwrap could not read the database afterwards ({unread.message})"
        return Step(one.database, one.table, name, "failed", failure.message)
    if after.locked:
        failure.message += f"; the migration lock of {one.table} is still held (knexwrap unlock {one.plugin})"
    stopped = "stopped" if isinstance(failure, errors.Interrupted) else "failed"
    status = stopped if name in after.applied_names else "reverted"
    return Step(one.database, one.table, name, status, failure.message)


class _Stopped(Exception):
    def __init__(self, steps: list[Step], failure: errors.KnexwrapError) -> None:
        super().__init__(failure.message)
        self.steps, self.failure = steps, failure


def _verify(p: install.Plan, plan: DowngradePlan, node: Node) -> tuple[Verified, ...]:
    """The real knex lists each changed set with the target's own folder: no "corrupt" error."""
    verified = []
    for one in plan.changes:
        directory = one.target_directory or _snapshot_folder(p, one)
        if directory is None:
            verified.append(Verified(one.database, one.table, None, None))
            continue
        migrations = sets.MigrationSet(one.plugin, one.package, one.version_target, directory, one.table)
        target = Target(p.project, migrations, p.databases[one.plugin], node)
        listing = parse.parse_list(node.knex(["migrate:list"], target.knex_config()).stdout, (node.password,))
        verified.append(Verified(one.database, one.table, listing.completed, listing.pending))
    return tuple(verified)


def _snapshot_folder(p: install.Plan, one: SetPlan) -> str | None:
    """The target's own files of a set, when the target is a snapshot: rebuilt from the archive."""
    key = (one.table, str(one.package))
    dest = runfolder.run_folder(p.project, (one.table, f"{one.package}@{one.version_target}"))
    try:
        root = archive.default_root(p.project)
        return str(runfolder.exact(root, key, one.version_target, one.target_files, dest))
    except errors.KnexwrapError:
        return None


def execute(
    plan: DowngradePlan,
    p: install.Plan,
    *,
    timeout: float,
    take_backups: bool = True,
    force: bool = False,
    change_timeout: float | None = None,
    lock_timeout: float | None = None,
    say: Callable[[str], None] = lambda _: None,
    on_event: Callable[[events.MigrationEvent], None] | None = None,
) -> DowngradeResult:
    """Revert the plan's files, newest first, set by set, after a backup of each changed database.

    Stops at the first failure or interrupt: the result says what was reverted, stopped and not run, with the
    failure as {"code", "message", "exit_code"}. `say` gets lines to read at once (an interrupt), `on_event`
    each migration's events as knex reverts it (knex/events.py), e.g. for live progress.
    """
    result = DowngradeResult(plan.to, (), (), ())
    if not plan.changes:
        return result
    password = next((c.password for c in p.databases.values() if c.password), None)
    node = Node(p.project, timeout, password, change_timeout, lock_timeout)
    connections = _connections(p, plan)
    _refuse_locked(plan)
    if not force:
        _refuse_running_backends(node, connections, timeout)
    # Every folder knex will need is ready before the first backup or change: no half-done runs.
    targets = {(one.database, one.table): set_target(p, one, node) for one in plan.changes}
    backups = tuple(str(backup.backup(c, p.project)) for c in connections.values()) if take_backups else ()
    result = replace(result, backups=backups)
    steps: list[Step] = []
    try:
        for one in plan.changes:
            steps += _revert_set(one, targets[(one.database, one.table)], node, say, on_event)
    except _Stopped as stopped:
        steps += stopped.steps
        done = {(s.database, s.table, s.name) for s in steps}
        rest = [
            Step(o.database, o.table, n, "not_run")
            for o in plan.changes
            for n in o.revert
            if (o.database, o.table, n) not in done
        ]
        failure = stopped.failure
        info = {"code": failure.code, "message": failure.message, "exit_code": failure.exit_code}
        return replace(result, steps=tuple(steps + rest), failure=info)
    return replace(result, steps=tuple(steps), verified=_verify(p, plan, node))


def journal_ran(plan: DowngradePlan, result: DowngradeResult, project: Path) -> list[journal.Ran]:
    """Each step of RESULT for the journal, with the sha256 of the file knex ran (installed or archived)."""
    folders = {
        (one.database, one.table): one.directory
        if one.files_from == "install"
        else str(runfolder.run_folder(project, (one.table, str(one.package))))
        for one in plan.changes
    }
    return [
        journal.Ran(s.database, s.table, s.name, s.status, journal.file_sha(folders[(s.database, s.table)], s.name))
        for s in result.steps
    ]
