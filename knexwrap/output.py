"""Every result leaves knexwrap through here: a table for people, or one JSON document for tools."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .changes import Outcome, Plan
from .commands import Current, Status

F = TypeVar("F", bound=Callable[..., Any])


def output_options(func: F) -> F:
    """--json and --fmt, shared by every command (sqlite-utils style)."""
    func = click.option("--json", "as_json", is_flag=True, help="Print one JSON document (errors too).")(func)
    return click.option(
        "--fmt",
        default="simple",
        show_default=True,
        metavar="FORMAT",
        help="Table format (any tabulate format).",
    )(func)


def to_json(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = dataclasses.asdict(result)
    target = data.pop("target", {})
    if isinstance(result, Status):
        data["counts"] = {s: result.count(s) for s in ("applied", "pending", "missing")}
    command = {Status: "status", Current: "current"}.get(type(result), data.get("command"))
    return {"command": command, **target, **data}


def emit(result: Any, *, as_json: bool, fmt: str) -> None:
    if as_json:
        click.echo(json.dumps(to_json(result), indent=2))
        return
    renderers: dict[type, Callable[[Any, str], str]] = {
        Status: _status_text,
        Current: _current_text,
        Outcome: _outcome_text,
    }
    click.echo(renderers[type(result)](result, fmt))


def _where(target: dict[str, Any]) -> str:
    plugin = target["plugin"] or "(no plugin)"
    package = f" ({target['package']})" if target["package"] else ""
    return f"{plugin}{package} in {target['database']}, table {target['migrations_table']}"


def _table(rows: list[list[Any]], headers: list[str], fmt: str) -> str:
    from tabulate import tabulate  # deferred: --json output never needs it

    return tabulate(rows, headers=headers, tablefmt=fmt)


def _status_text(result: Status, fmt: str) -> str:
    lines = [_where(result.target), ""]
    rows = [[m.name, m.state] for m in result.migrations]
    lines.append(_table(rows, ["migration", "state"], fmt) if rows else "(no migrations in the folder or the database)")
    lines.append("")
    lines.append(
        f"{result.count('applied')} applied, {result.count('pending')} pending, "
        f"{result.count('missing')} missing; current version {result.current_version or 'none'}"
    )
    if result.count("missing"):
        lines.append(
            "missing: recorded in the database but absent from the folder (the database is ahead of this code)"
        )
    lines.extend(f"knex: {note}" for note in result.notes)
    return "\n".join(lines)


def _current_text(result: Current, fmt: str) -> str:
    return f"{_where(result.target)}\ncurrent version: {result.current_version or 'none'}"


_VERBS = {"apply": ("apply", "applied"), "revert": ("revert", "reverted"), "unlock": ("release", "released")}


def _outcome_text(result: Outcome, fmt: str) -> str:
    future, past = _VERBS[result.action]
    if result.action == "unlock":
        state = (
            "the lock is not held: nothing to release"
            if not result.planned
            else (
                "would release the migration lock (dry run: nothing was changed)"
                if result.dry_run
                else f"released the migration lock ({result.planned[0]})"
            )
        )
        return f"{_where(result.target)}\n{state}"
    if not result.planned:
        return f"{_where(result.target)}\nnothing to {future}"
    names = result.planned if result.dry_run else result.done
    verb = f"would {future}" if result.dry_run else past
    rows = [[i, n] for i, n in enumerate(names, 1)]
    lines = [_where(result.target), f"{verb} {_count(len(names))}:", _table(rows, ["#", "name"], fmt)]
    if result.dry_run:
        lines.append("dry run: nothing was changed")
    lines.extend(f"knex: {note}" for note in result.notes)
    return "\n".join(lines)


def show_plan(target: dict[str, Any], plan: Plan) -> None:
    """The change about to happen, on stderr so that --json stdout stays one document."""
    future, _ = _VERBS[plan.action]
    what = "the migration lock" if plan.action == "unlock" else _count(len(plan.names))
    click.echo(f"About to {future} {what} of {_where(target)}:", err=True)
    for name in plan.names:
        click.echo(f"  {name}", err=True)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)


def _count(n: int) -> str:
    return f"{n} migration" if n == 1 else f"{n} migrations"


def error(code: str, message: str, exit_code: int, *, as_json: bool, output: str = "") -> None:
    click.echo(f"knexwrap: error: {message}", err=True)
    if output and not as_json:
        # Output knexwrap did not recognise is shown as knex printed it, never dropped.
        click.echo(output, err=True)
    if as_json:
        document: dict[str, Any] = {"error": {"code": code, "message": message, "exit_code": exit_code}}
        if output:
            document["error"]["knex_output"] = output
        click.echo(json.dumps(document, indent=2))
