"""Carry a downgrade plan out: checks, backups, then `knex migrate:down NAME`, one file at a time.

Newest first, set by set, stopping at the first failure; the result says exactly what was
reverted, what failed and what was not run, and where the backups are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .. import errors
from ..config import connection as conn
from ..install import sets
from ..knex import parse
from ..knex.node import Node
from ..state import whole as install
from ..state.plugin import Target, reader_entry
from . import archive, backup
from .plan import DowngradePlan, SetPlan
from .target import Destination


@dataclass(frozen=True)
class Step:
    database: str
    table: str
    name: str
    status: str  # "reverted", "failed" or "not_run"
    message: str | None = None


@dataclass(frozen=True)
class Verified:
    """What knex migrate:list shows for one changed set after the downgrade, with the target's folder."""

    database: str
    table: str
    applied: tuple[str, ...]
    pending: tuple[str, ...]


@dataclass(frozen=True)
class DowngradeResult:
    to: Destination
    backups: tuple[str, ...]
    steps: tuple[Step, ...]
    verified: tuple[Verified, ...]  # sets the real knex now lists cleanly with the target's files
    failure: dict[str, Any] | None = None  # {"code", "message", "exit_code"} of the step that failed


def _refuse_locked(plan: DowngradePlan) -> None:
    locked = [f"{s.database} ({s.table})" for s in plan.changes if s.locked]
    if locked:
        raise errors.Locked(
            f"the migration lock is held in {', '.join(locked)}: a migration is running, or one crashed; "
            "nothing was changed (if nothing is running, release it with knexwrap unlock)"
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
    if take_backups:
        for connection in _connections(p, plan).values():
            backup.check_possible(connection)


def _connections(p: install.Plan, plan: DowngradePlan) -> dict[str, conn.Connection]:
    return {s.plugin: p.databases[s.plugin] for s in plan.changes}


def set_target(p: install.Plan, one: SetPlan, node: Node) -> Target:
    """The Target knex reverts ONE with: the installed folder, or one built from the archive (--sql uses it too)."""
    directory = one.directory
    if one.files_from != "install":
        # The code was swapped back already: knex gets a folder built from the archive, inside the
        # project so that the archived files' require() calls still find node_modules.
        key = (one.table, str(one.package))
        built = archive.materialize(
            archive.default_root(p.project), key, one.recorded, archive.run_folder(p.project, key)
        )
        directory = str(built)
    migrations = sets.MigrationSet(one.plugin, one.package, one.version_now, directory, one.table)
    return Target(p.project, migrations, p.databases[one.plugin], node)


def _revert_set(one: SetPlan, target: Target, node: Node) -> list[Step]:
    steps: list[Step] = []
    for name in one.revert:
        try:
            run = node.knex(["migrate:down", name], target.knex_config())
            parse.parse_change(run.stdout)
            steps.append(Step(one.database, one.table, name, "reverted"))
        except errors.KnexwrapError as failure:
            steps.append(Step(one.database, one.table, name, "failed", failure.message))
            raise _Stopped(steps, failure) from failure
    return steps


class _Stopped(Exception):
    def __init__(self, steps: list[Step], failure: errors.KnexwrapError) -> None:
        super().__init__(failure.message)
        self.steps, self.failure = steps, failure


def _verify(p: install.Plan, plan: DowngradePlan, node: Node) -> tuple[Verified, ...]:
    """The real knex lists each changed set with the target's own folder: no "corrupt" error."""
    verified = []
    for one in plan.changes:
        if one.target_directory is None:
            continue
        migrations = sets.MigrationSet(one.plugin, one.package, one.version_target, one.target_directory, one.table)
        target = Target(p.project, migrations, p.databases[one.plugin], node)
        listing = parse.parse_list(node.knex(["migrate:list"], target.knex_config()).stdout)
        verified.append(Verified(one.database, one.table, listing.completed, listing.pending))
    return tuple(verified)


def execute(
    plan: DowngradePlan,
    p: install.Plan,
    *,
    timeout: float,
    take_backups: bool = True,
    force: bool = False,
) -> DowngradeResult:
    result = DowngradeResult(plan.to, (), (), ())
    if not plan.changes:
        return result
    password = next((c.password for c in p.databases.values() if c.password), None)
    node = Node(p.project, timeout, password)
    connections = _connections(p, plan)
    _refuse_locked(plan)
    if not force:
        _refuse_running_backends(node, connections, timeout)
    # Every folder knex will need is ready before the first backup or change: no half-done runs.
    targets = {(one.database, one.table): set_target(p, one, node) for one in plan.changes}
    backups = tuple(str(backup.backup(c, p.project, timeout)) for c in connections.values()) if take_backups else ()
    result = replace(result, backups=backups)
    steps: list[Step] = []
    try:
        for one in plan.changes:
            steps += _revert_set(one, targets[(one.database, one.table)], node)
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
