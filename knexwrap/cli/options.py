"""The options every command shares, and turning them into Options and a Target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .. import errors
from ..config.connection import DEFAULT_PREFIX, Options
from ..state import plugin as commands

# Modules a command needs are imported inside it: every start pays only for what it runs.
F = TypeVar("F", bound=Callable[..., Any])

_TARGET_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--project-dir",), {"metavar": "DIR", "help": "Backstage project holding node_modules/.bin/knex."}),
    (
        ("--client",),
        {"envvar": "KNEXWRAP_CLIENT", "help": "pg, better-sqlite3, sqlite3 or mysql2 [app-config's, else pg]."},
    ),
    (
        ("--config", "config_files"),
        {
            "multiple": True,
            "metavar": "FILE",
            "help": "Backstage app-config file, repeatable, later wins [app-config.yaml, app-config.local.yaml].",
        },
    ),
    (("--host",), {"help": "Database host [POSTGRES_HOST]."}),
    (("--port",), {"help": "Database port [POSTGRES_PORT, else 5432]."}),
    (("--user",), {"help": "Database user [POSTGRES_USER]."}),
    (
        ("--ask-password",),
        {
            "is_flag": True,
            "help": "Prompt for the password instead of POSTGRES_PASSWORD (never pass it in argv).",
        },
    ),
    (("--database",), {"help": "Database name outright (default: PREFIX + plugin id)."}),
    (("--prefix",), {"help": f"Plugin database prefix [app-config's, else {DEFAULT_PREFIX}]."}),
    (
        ("--sqlite-dir",),
        {
            "metavar": "DIR",
            "envvar": "KNEXWRAP_SQLITE_DIR",
            "help": "better-sqlite3: folder of <pluginId>.sqlite files.",
        },
    ),
    (("--env-file",), {"metavar": "PATH", "help": "Read variables from this file instead of PROJECT/.env."}),
    (
        ("--migrations-table-name",),
        {"metavar": "TABLE", "help": "Migrations table (default knex_migrations)."},
    ),
    (
        ("--timeout",),
        {"type": float, "default": 30.0, "show_default": True, "help": "Seconds before knexwrap stops knex."},
    ),
)


def target_options(func: F) -> F:
    for names, settings in reversed(_TARGET_OPTIONS):
        func = click.option(*names, **settings)(func)
    return func


def change_options(func: F) -> F:
    func = click.option("--yes", "-y", is_flag=True, help="Do not ask before changing the database.")(func)
    return click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")(func)


def options_from(kw: dict[str, Any]) -> Options:
    password = None
    if kw.pop("ask_password"):
        password = click.prompt("Database password", hide_input=True, err=True)
    if kw["timeout"] <= 0:
        raise errors.ConfigError("--timeout must be a positive number of seconds")
    return Options(
        client=kw.pop("client"),
        host=kw.pop("host"),
        port=kw.pop("port"),
        user=kw.pop("user"),
        password=password,
        database=kw.pop("database"),
        prefix=kw.pop("prefix"),
        sqlite_dir=kw.pop("sqlite_dir"),
        env_file=kw.pop("env_file"),
        config_files=tuple(kw.pop("config_files")),
    )


def target_from(plugin: str, kw: dict[str, Any]) -> commands.Target:
    from . import output

    options = options_from(kw)
    output.note_target({"plugin": plugin})
    target = commands.open_target(
        plugin,
        options,
        project_dir=kw.pop("project_dir"),
        table=kw.pop("migrations_table_name"),
        timeout=kw.pop("timeout"),
    )
    output.note_target(target.header())
    return target
