"""Every result leaves knexwrap through here: a table for people, or one JSON document for tools."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..upgrade.changes import Plan

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


# Result type -> the "command" of its JSON document. By name, so that output imports none of the
# modules behind the results: start-up time counts, and each command imports only what it uses.
_COMMANDS = {
    "Status": "status",
    "InstallReport": "status",
    "Current": "current",
    "ConfigReport": "config",
    "SetsReport": "plugins",
    "ArchiveResult": "archive",
    "SnapshotWritten": "snapshot",
    "DoctorReport": "doctor",
    "DowngradePlan": "plan",
    "DowngradeResult": "downgrade",
}


def to_json(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = _paths_to_text(dataclasses.asdict(result))
    target = data.pop("target", {})
    kind = type(result).__name__
    if kind == "Status":
        primary = data.pop("primary")
        return {"command": "status", **target, **primary, "other_sets": data["other_sets"]}
    if kind == "InstallReport":
        return {"command": "status", "summary": result.summary, **data}
    return {"command": _COMMANDS.get(kind, data.get("command")), **target, **data}


def emit(result: Any, *, as_json: bool, fmt: str, verbose: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(to_json(result), indent=2))
        return
    from . import text

    click.echo(text.render(result, fmt, verbose))


def show_plan(target: dict[str, Any], plan: Plan) -> None:
    """The change about to happen, on stderr so that --json stdout stays one document."""
    from . import text

    future, _ = text.VERBS[plan.action]
    what = "the migration lock" if plan.action == "unlock" else text.count(len(plan.names))
    if plan.creates is not None:
        click.echo(f"About to {plan.creates}, then:", err=True)
    click.echo(f"About to {future} {what} of {text.where(target)}:", err=True)
    for name in plan.names:
        click.echo(f"  {name}", err=True)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)


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


def _paths_to_text(value: Any) -> Any:
    """JSON has no paths: Path values become their text."""
    from pathlib import PurePath

    if isinstance(value, dict):
        return {k: _paths_to_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_paths_to_text(v) for v in value]
    return str(value) if isinstance(value, PurePath) else value
