"""Every result leaves knexwrap through here: a table for people, or one JSON document for tools."""

from __future__ import annotations

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
    func = click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_wide,
        help="Show every value in full; tables are otherwise shortened to the terminal's width.",
    )(func)
    return click.option(
        "--fmt",
        default="simple",
        show_default=True,
        metavar="FORMAT",
        callback=_known_format,
        help="Table format: any of tabulate's (simple, github, grid, plain, ...).",
    )(func)


def _wide(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    _Seen.wide = value


def _known_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value == "simple":
        return value
    from tabulate import tabulate_formats  # only when a format is asked for: start-up time counts

    if value not in tabulate_formats:
        raise click.BadParameter(f"{value!r} is not a table format; one of: {', '.join(tabulate_formats)}")
    return value


class _Seen:
    """What the running command has established so far (command, plugin, database), for its error document."""

    command: str | None = None
    wide = False
    where: dict[str, Any] = {}  # noqa: RUF012 (one run per process: reset by begin())


def begin(command: str | None) -> None:
    _Seen.command, _Seen.where, _Seen.wide = command, {}, False


def note_target(header: dict[str, Any]) -> None:
    """Remember where the command works (Target.header()): an error after this names it."""
    _Seen.where = dict(header)


def to_json(result: Any) -> dict[str, Any]:
    from .documents import document

    return document(result, _Seen.command)


def emit(result: Any, *, as_json: bool, fmt: str, verbose: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(to_json(result), indent=2))
        return
    click.echo(as_text(result, fmt, verbose))


def as_text(result: Any, fmt: str, verbose: bool = False) -> str:
    """RESULT for people, its tables fitted to the terminal's width unless --wide."""
    from . import text
    from .fit import terminal_width

    return text.render(result, fmt, verbose, None if _Seen.wide else terminal_width())


def show_plan(target: dict[str, Any], plan: Plan) -> None:
    """The change about to happen, on stderr so that --json stdout stays one document."""
    from . import tables

    future, _ = tables.VERBS[plan.action]
    what = "the migration lock" if plan.action == "unlock" else tables.count(len(plan.names))
    if plan.creates is not None:
        click.echo(f"About to {plan.creates}, then:", err=True)
    click.echo(f"About to {future} {what} of {tables.where(target)}:", err=True)
    for name in plan.names:
        click.echo(f"  {name}", err=True)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)


def error(
    code: str,
    message: str,
    exit_code: int,
    *,
    as_json: bool,
    output: str = "",
    facts: dict[str, Any] | None = None,
) -> None:
    """One line on stderr; with --json also the error document on stdout (schemas/error.json)."""
    from . import progress
    from .documents import error_document

    progress.stop()
    click.echo(f"knexwrap: error: {message}", err=True)
    if output and not as_json:
        # Output knexwrap did not recognise is shown as knex printed it, never dropped.
        click.echo(output, err=True)
    if as_json:
        extra = {**(facts or {}), **({"knex_output": output} if output else {})}
        where = {k: v for k, v in _Seen.where.items() if k in _WHERE}
        document = error_document(_Seen.command, where, code, message, exit_code, extra)
        click.echo(json.dumps(document, indent=2))


# The keys of a target header an error document repeats.
_WHERE = ("plugin", "package", "client", "database", "migrations_table", "migrations_directory")
