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
        ("--backend-cwd",),
        {
            "metavar": "DIR",
            "help": "Folder the backend runs in, for a relative SQLite connection.directory "
            "[where the plugin's file is].",
        },
    ),
    (
        ("--migrations-table-name",),
        {"metavar": "TABLE", "help": "Migrations table (default knex_migrations)."},
    ),
    (
        ("--state-dir",),
        {
            "metavar": "DIR",
            "envvar": "KNEXWRAP_STATE_DIR",
            "help": "knexwrap's private folder: archive, snapshots, backups, journal [PROJECT/.knexwrap].",
        },
    ),
    (
        ("--timeout",),
        {
            "type": float,
            "default": 30.0,
            "show_default": True,
            "help": "Seconds to connect and read; a running migration is never stopped (see --change-timeout).",
        },
    ),
)


def target_options(func: F) -> F:
    for names, settings in reversed(_TARGET_OPTIONS):
        func = click.option(*names, **settings)(func)
    return func


def change_options(func: F) -> F:
    func = click.option(
        "--change-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Stop knex after this long, even in the middle of a migration [no limit: --timeout bounds "
        "connecting and reading only].",
    )(func)
    func = click.option(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="PostgreSQL lock_timeout of the migration's session: a statement waiting this long for a busy "
        "table fails instead of stalling the queries queued behind it.",
    )(func)
    func = click.option("--yes", "-y", is_flag=True, help="Do not ask before changing the database.")(func)
    return click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")(func)


def options_from(kw: dict[str, Any]) -> Options:
    from ..upgrade import statedir

    statedir.use(kw.pop("state_dir", None))
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
        backend_cwd=kw.pop("backend_cwd"),
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


def confirm_or_cancel(yes: bool) -> None:
    """Ask "Go ahead?" unless --yes; raises Cancelled (14) on "no", on Ctrl-C, and when nobody can answer.

    With stdin closed or empty (a pipeline, CI) there is no one to ask: the message says to pass --yes,
    instead of a "cancelled" nobody chose.
    """
    import sys

    if yes:
        return
    try:
        if click.confirm("Go ahead?", default=False, err=True):
            return
    except click.exceptions.Abort:  # click's answer to both Ctrl-C and end of input
        click.echo(err=True)  # the question's line was left open
        if not sys.stdin.isatty():
            raise errors.Cancelled(
                "there is no terminal to ask on (stdin is not a terminal and gave no answer): nothing was changed; "
                "pass --yes to go ahead without asking"
            ) from None
        raise errors.Cancelled("cancelled at the question (Ctrl-C): nothing was changed") from None
    raise errors.Cancelled("cancelled: nothing was changed")
