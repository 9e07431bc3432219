"""Locks on every set of a plugin's database: `unlock PLUGIN` releases whichever one is held.

knex keeps one lock per migrations table (`<table>_lock`, one row, no owner). A plugin database holds
several sets (its own, the scheduler's, the plugin keys', modules', tables no package claims), so
"not held" for the plugin's own table says nothing about the scheduler's lock that blocks the backend.
"""

from __future__ import annotations

from dataclasses import replace

from .. import errors
from ..install.sets import MigrationSet
from ..state.plugin import Target, status
from .changes import Outcome, Plan, execute


def held(target: Target) -> list[Target]:
    """One Target per set of the plugin's database whose lock is held, the plugin's own set first."""
    found = status(target)
    targets = []
    for one in (found.primary, *found.other_sets):
        if one.locked:
            # A table no package claims has no folder: knex's unlock reads none, the plugin's folder stands in.
            directory = one.migrations_directory or target.migrations.directory
            migrations = MigrationSet(
                target.migrations.plugin_id, one.package, one.version, directory, one.migrations_table
            )
            targets.append(replace(target, migrations=migrations))
    return targets


def the_held_one(target: Target) -> Target:
    """The set whose lock is held; the plugin's own when none is. Several held: nothing changes, they are
    named (errors.Locked), and --all releases them all."""
    found = held(target)
    if len(found) > 1:
        tables = ", ".join(t.migrations.table for t in found)
        raise errors.Locked(
            f"{len(found)} migration locks are held in {target.connection.target()}: {tables}; nothing was "
            "changed: name one with --migrations-table-name, or release every one with --all"
        )
    return found[0] if found else target


def plan_all(targets: list[Target]) -> Plan:
    """Releasing every held lock: the lock tables, in the order they are released."""
    return Plan("unlock", "unlock", tuple(f"{t.migrations.table}_lock" for t in targets), ("migrate:unlock",))


def execute_all(targets: list[Target], plan: Plan) -> Outcome:
    """One knex unlock per held lock; the outcome names every lock released."""
    done: list[str] = []
    for target in targets:
        one = replace(plan, names=(f"{target.migrations.table}_lock",))
        done += execute(target, one).done
    first = targets[0].header() if targets else {}
    return Outcome(first, plan.command, plan.action, plan.names, tuple(done), False)
