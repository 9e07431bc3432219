"""`knexwrap --version`: knexwrap's version, node's, and the knex of the current repository."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import errors


def show(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """The --version callback: three lines on stdout, then exit 0 (a missing node or knex is said, not fatal)."""
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version  # only on --version: start-up time counts

    click.echo(f"knexwrap {version('knexwrap')}")
    click.echo(f"node {_node()}")
    click.echo(f"knex {_knex()}")
    ctx.exit(0)


def _node() -> str:
    from ..knex.process import find, run

    try:
        node = find("node", "knexwrap runs the project's knex with it")
        answer = run(node, ["--version"], cwd=Path.cwd(), env={}, timeout=10)
    except errors.KnexwrapError as missing:
        return f"not found ({missing.message})"
    return f"{answer.stdout.strip().lstrip('v')} ({node})"


def _knex() -> str:
    """The version of the knex the repository's node_modules/.bin/knex runs (its package.json)."""
    from ..install.plugins import find_project

    try:
        project = find_project(Path.cwd(), None)
    except errors.KnexwrapError:
        return "not found (no Backstage repository with node_modules/.bin/knex here or above)"
    package = project / "node_modules" / "knex" / "package.json"
    try:
        found = json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return f"unknown ({package} is missing or unreadable)"
    return f"{found} ({project})"
