"""--sql on the change verbs and plan: the preview's option, its text and its JSON document."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import errors

if TYPE_CHECKING:
    from ..state import whole as install
    from ..state.plugin import Target
    from ..upgrade.changes import Plan
    from ..upgrade.plan import DowngradePlan
    from ..upgrade.preview import Preview

F = TypeVar("F", bound=Callable[..., Any])


# How a preview was obtained (preview.Preview.method), said in its heading.
_METHOD = {
    "schema-only copy": "from a schema-only copy",
    "copy of the file": "from a copy of the file",
    "live, rolled back": "run live inside a transaction, rolled back",
}


def sql_option(func: F) -> F:
    """--sql (a scratch copy) or --sql=live (PostgreSQL, rolled back)."""
    return click.option(
        "--sql",
        "sql",
        is_flag=False,
        flag_value="copy",
        default=None,
        type=click.Choice(["copy", "live"]),
        help="Show the SQL each migration sends, from a scratch copy (or =live: rolled back, PostgreSQL).",
    )(func)


def preview_change(target: Target, plan: Plan, mode: str, *, as_json: bool, fmt: str, dry: bool, yes: bool) -> None:
    """Show the plan's SQL: on stdout for --dry-run (the document), else on stderr before the usual question.

    A migration that fails in the preview stops here: exit 12 and nothing is changed.
    """
    from ..upgrade import preview

    if plan.action == "unlock":
        raise errors.ConfigError("--sql: unlock runs no migration")
    if mode == "live":
        preview.check_live(target, plan.names)
        _agree_to_locks(yes)
    result = preview.preview(target, plan.command, plan.action, plan.names, live=mode == "live")
    if dry:
        emit([result], as_json=as_json)
    else:
        click.echo(render(result), err=True)
    _stop_if_failed([result])


def preview_downgrade(
    plan: DowngradePlan, p: install.Plan, mode: str, *, timeout: float, as_json: bool, fmt: str, out: bool, yes: bool
) -> None:
    """plan --sql and downgrade --sql: the plan, then the SQL of its reverts; on stdout when OUT, else stderr."""
    from ..upgrade import preview
    from . import output, upgrade_text

    if mode == "live":
        _agree_to_locks(yes)
    previews = preview.preview_downgrade(plan, p, timeout=timeout, live=mode == "live")
    if as_json and out:
        click.echo(json.dumps({**output.to_json(plan), "sql": document(previews)["sql"]}, indent=2))
    else:
        # Without OUT the downgrade shows its plan itself, next to its question.
        plans = [upgrade_text.downgrade_plan(plan, fmt)] if out else []
        shown = "\n\n".join([*plans, *(render(r) for r in previews)])
        click.echo(shown, err=not out)
    _stop_if_failed(previews)


def _stop_if_failed(previews: Sequence[Preview]) -> None:
    failed = next((r.failed for r in previews if r.failed is not None), None)
    if failed is not None:
        raise errors.MigrationFailed(
            f"{failed.name} failed in the preview ({failed.error}): the change would fail the same way; "
            "nothing was changed"
        )


def _agree_to_locks(yes: bool) -> None:
    from ..upgrade.preview import LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS

    click.echo(
        "--sql=live runs the plan on the live database inside a transaction that is always rolled back; "
        f"meanwhile its DDL holds locks on the tables it touches (waits at most {LOCK_TIMEOUT_MS / 1000:g} s "
        f"for a lock, each statement at most {STATEMENT_TIMEOUT_MS / 1000:g} s).",
        err=True,
    )
    if not yes and not click.confirm("Take these brief locks?", default=False, err=True):
        raise errors.Cancelled("cancelled: nothing was run")


def emit(previews: Sequence[Preview], *, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """The previews on stdout: one JSON document (see document()), or their texts."""
    if as_json:
        click.echo(json.dumps(document(previews, extra), indent=2))
    else:
        click.echo("\n\n".join(render(p) for p in previews) if previews else "nothing to preview")


def document(previews: Sequence[Preview], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document: the command, then one entry per database and set, its migrations in plan order."""
    from .documents import SCHEMA_VERSION, located

    entries = []
    for p in previews:
        data = dataclasses.asdict(p)
        entries.append({**located(data.pop("target")), **data})  # a drop's "table" is a data table: as it is
    command = previews[0].command if previews else "plan"
    return {"schema_version": SCHEMA_VERSION, "command": command, "sql": entries, **(extra or {})}


def render(p: Preview) -> str:
    """The text of one preview: per migration its source, its statements without knex's bookkeeping
    (numbered, bindings beside), what it drops with the live row counts, its notes and failure."""
    from .tables import VERBS, count, where

    verb = VERBS[p.action][0]
    lines = [f"SQL to {verb} {count(len(p.migrations))} of {where(p.target)} ({_METHOD.get(p.method, p.method)}):"]
    for m in p.migrations:
        lines += ["", f"{m.name} ({m.direction})"]
        lines += ["  source:", *(f"    {line}" for line in (m.source or "(unreadable)").splitlines())]
        own = [s for s in m.statements if s.kind != "bookkeeping"]
        lines.append("  statements:" if own else "  statements: none")
        for i, s in enumerate(own, 1):
            bound = f"  -- bindings: {json.dumps(list(s.bindings))}" if s.bindings else ""
            lines.append(f"    {i}. {s.sql}{bound}")
        for d in m.drops:
            lines.append(f"  drops {_drop(d)}")
        lines += [f"  note: {n}" for n in m.notes]
        if m.error:
            lines.append(f"  FAILS: {m.error}")
    lines += [f"note: {n}" for n in p.notes]
    return "\n".join(lines)


def _drop(d: Any) -> str:
    what = f"column {d.table}.{d.column}" if d.column else f"table {d.table}"
    if d.live_rows is None:
        return f"{what}: not in the live database"
    held = f"{d.live_rows} rows, {d.live_values} of them with a value" if d.column else f"{d.live_rows} rows"
    return f"{what}: the live table has {held}"
