"""Guards every change verb shares, checked before the question: a running backend, what cannot be checked.

A Backstage backend names its PostgreSQL sessions `backstage_plugin_<id>` (pg_stat_activity) unless the
operator set another application_name. Reverting under it is refused unless --force: the backend
re-applies what was reverted when it restarts, and its code may need what is dropped. Applying beside it
only warns: with backend.database.skipMigrations that is the normal way to migrate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import errors
from ..state.plugin import Target, reader_entry
from .changes import Plan

_MYSQL = ("mysql", "mysql2")


def backend_sessions(target: Target) -> list[dict[str, Any]]:
    """Sessions named backstage_plugin_* in the target's database (PostgreSQL only): application_name, client, since."""
    entry = {**reader_entry(target.connection, [], target.node.timeout), "sessions": True}
    [result] = target.node.read([entry])
    if "error" in result:
        from ..state.read import reader_error

        raise reader_error(result)
    sessions: list[dict[str, Any]] = result.get("sessions") or []
    return sessions


def check(target: Target, plan: Plan, *, force: bool, dry_run: bool = False) -> Plan:
    """The plan with the guards' warnings; raises BackendRunning (16) for a revert beside a running backend,
    except in a DRY_RUN, whose plan is shown with the refusal the real run would meet as a warning."""
    if not plan.names or plan.action == "unlock":
        return plan
    notes: list[str] = []
    client = target.connection.client
    # A database (or schema) the plan creates first has never been used: no backend can be migrating it.
    if client == "pg" and plan.creates is None:
        notes += _backend(target, plan, force, dry_run)
    elif plan.action == "revert":  # an apply beside a backend is normal: only a revert needs it stopped
        kind = "MySQL/MariaDB" if client in _MYSQL else "SQLite"
        notes.append(f"knexwrap cannot see whether a Backstage backend uses this {kind} database: stop it first")
    if client in _MYSQL:
        notes.append(
            "MySQL/MariaDB commits each DDL statement on its own: a migration that fails part way leaves what "
            "it created or dropped behind, whatever its transaction"
        )
    return replace(plan, warnings=plan.warnings + tuple(notes))


def _backend(target: Target, plan: Plan, force: bool, dry_run: bool) -> list[str]:
    sessions = backend_sessions(target)
    if not sessions:
        return []
    first = sessions[0]
    who = f"{first['application_name']} from {first['client']} (since {first['since']})"
    where = target.connection.target()
    if plan.action == "revert" and not force and dry_run:
        return [
            f"{who} is connected to {where}: the run itself would be refused (exit 16) until the backend is "
            "stopped, or --force"
        ]
    if plan.action == "revert" and not force:
        raise errors.BackendRunning(
            f"{who} is connected to {where}: stop the Backstage backend before reverting, it re-applies "
            "migrations when it starts unless backend.database.skipMigrations is set; nothing was changed "
            "(--force to go on)"
        )
    return [f"{who} is connected to {where}: a Backstage backend is running beside this change"]
