"""The command line: thin click commands over knexwrap.commands and knexwrap.changes.

Errors are caught in one place, main(): one line on stderr, the documented exit code, and with
--json one error document on stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import commands, errors, output
from .connection import DEFAULT_PREFIX, Options

if TYPE_CHECKING:
    from .changes import Plan

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


def _options(kw: dict[str, Any]) -> Options:
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


def _target(plugin: str, kw: dict[str, Any]) -> commands.Target:
    options = _options(kw)
    return commands.open_target(
        plugin,
        options,
        project_dir=kw.pop("project_dir"),
        table=kw.pop("migrations_table_name"),
        timeout=kw.pop("timeout"),
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="knexwrap")
def cli() -> None:
    """Safe Knex migration commands for Backstage plugin databases.

    PLUGIN is a plugin id (catalog), a package name (@backstage/plugin-catalog-backend)
    or a path to a migrations folder.
    """


@cli.command()
@click.argument("plugin", required=False)
@target_options
@output.output_options
@click.option("--verbose", "-v", is_flag=True, help="Show each migration's batch and run time.")
@click.option("--check", is_flag=True, help="Exit non-zero unless every set is in sync (see README).")
def status(plugin: str | None, as_json: bool, fmt: str, verbose: bool, check: bool, **kw: Any) -> None:
    """Applied, pending and missing migrations of PLUGIN's database, or of every plugin database.

    Read-only: creates no database, table or lock row.
    """
    if plugin is not None:
        result: Any = commands.status(_target(plugin, kw))
        states = [result.primary.state, *(s.state for s in result.other_sets)]
    else:
        from . import install

        if kw.pop("migrations_table_name"):
            raise errors.ConfigError("--migrations-table-name needs a PLUGIN")
        options, project_dir, timeout = _options(kw), kw.pop("project_dir"), kw.pop("timeout")
        progress = _progress() if not as_json and sys.stderr.isatty() else None
        result = install.install_status(options, project_dir=project_dir, timeout=timeout, progress=progress)
        states = [d.state for d in result.databases]
    output.emit(result, as_json=as_json, fmt=fmt, verbose=verbose)
    if check:
        click.get_current_context().exit(check_code(states))


@cli.command("config")
@click.argument("plugin", required=False)
@target_options
@output.output_options
def config_command(plugin: str | None, as_json: bool, fmt: str, **kw: Any) -> None:
    """Where each plugin's database connection comes from and where it points (password masked)."""
    from . import install

    options, project_dir = _options(kw), kw.pop("project_dir")
    result = install.describe(options, project_dir=project_dir, plugin=plugin)
    output.emit(result, as_json=as_json, fmt=fmt)


@cli.command("plugins")
@target_options
@output.output_options
def plugins_command(as_json: bool, fmt: str, **kw: Any) -> None:
    """Every installed migration set: plugin id, package, version, folder, table and database."""
    from . import install

    options, project_dir = _options(kw), kw.pop("project_dir")
    output.emit(install.list_sets(options, project_dir=project_dir), as_json=as_json, fmt=fmt)


@cli.command("plan")
@click.option("--to", "to", required=True, metavar="TARGET", help="Older install (folder) or snapshot file.")
@target_options
@output.output_options
def plan_command(to: str, as_json: bool, fmt: str, **kw: Any) -> None:
    """What going back to TARGET reverts, per database and migration set, newest first (read-only)."""
    from . import downgrade

    options, project_dir, timeout = _options(kw), kw.pop("project_dir"), kw.pop("timeout")
    result = downgrade.plan(options, project_dir=project_dir, to=to, timeout=timeout)
    output.emit(result, as_json=as_json, fmt=fmt)


@cli.command("downgrade")
@click.option("--to", "to", required=True, metavar="TARGET", help="Older install (folder) or snapshot file.")
@click.option("--no-backup", is_flag=True, help="Skip the backup of each affected database.")
@click.option("--force", is_flag=True, help="Go on although a Backstage backend is connected.")
@target_options
@output.output_options
@change_options
def downgrade_command(to: str, no_backup: bool, force: bool, **kw: Any) -> None:
    """Revert what TARGET does not have, with backups, one migration at a time, newest first."""
    from . import downgrade, downgrade_run, text

    as_json, fmt, yes, dry = kw.pop("as_json"), kw.pop("fmt"), kw.pop("yes"), kw.pop("dry_run")
    options, project_dir, timeout = _options(kw), kw.pop("project_dir"), kw.pop("timeout")
    plan = downgrade.plan(options, project_dir=project_dir, to=to, timeout=timeout)
    if dry or not plan.changes:
        output.emit(plan, as_json=as_json, fmt=fmt)
        return
    downgrade_run.preflight(plan, options, project_dir=project_dir, take_backups=not no_backup)
    click.echo(text.downgrade_plan(plan, fmt), err=True)
    if not yes and not click.confirm("Go ahead?", default=False, err=True):
        raise errors.Cancelled("cancelled: nothing was changed")
    result = downgrade_run.execute(
        plan, options, project_dir=project_dir, timeout=timeout, take_backups=not no_backup, force=force
    )
    output.emit(result, as_json=as_json, fmt=fmt)
    if result.failure is not None:
        output.error(result.failure["code"], result.failure["message"], result.failure["exit_code"], as_json=False)
        click.get_current_context().exit(result.failure["exit_code"])


@cli.command("doctor")
@target_options
@output.output_options
def doctor_command(as_json: bool, fmt: str, **kw: Any) -> None:
    """Diagnose every plugin database: missing files, held locks, wrong folders; and how to fix each."""
    from . import doctor, install

    options, project_dir, timeout = _options(kw), kw.pop("project_dir"), kw.pop("timeout")
    _refresh_archive(install.plan(options, project_dir).project)
    result = doctor.diagnose(options, project_dir=project_dir, timeout=timeout)
    output.emit(result, as_json=as_json, fmt=fmt)
    if result.findings:
        click.get_current_context().exit(errors.DoctorFound.exit_code)


@cli.command("archive")
@click.option("--project-dir", metavar="DIR", help="Backstage project holding node_modules/.bin/knex.")
@output.output_options
def archive_command(project_dir: str | None, as_json: bool, fmt: str) -> None:
    """Copy every installed migration file into .knexwrap/archive/ (run after every install or upgrade)."""
    from . import archive, plugins

    project = plugins.find_project(Path.cwd(), project_dir)
    output.emit(archive.archive(project), as_json=as_json, fmt=fmt)


@cli.command("snapshot")
@click.option("--out", "out", metavar="FILE", help="Where to write it [.knexwrap/snapshots/snapshot-<time>.json].")
@target_options
@output.output_options
def snapshot_command(out: str | None, as_json: bool, fmt: str, **kw: Any) -> None:
    """Record every database x set's applied migrations and the installed versions; archive the files."""
    from . import install, sets, snapshot

    options, project_dir, timeout = _options(kw), kw.pop("project_dir"), kw.pop("timeout")
    p = install.plan(options, project_dir)
    report_now = install.install_status(options, project_dir=project_dir, timeout=timeout)
    taken = snapshot.take(report_now, list(sets.discover_all(p.project)), p.project)
    path = snapshot.write(taken, Path(out) if out else snapshot.default_path(p.project, taken))
    output.emit(
        SnapshotWritten(str(path), taken.taken_at, len(taken.sets), len(taken.databases)), as_json=as_json, fmt=fmt
    )


@dataclass(frozen=True)
class SnapshotWritten:
    path: str
    taken_at: str
    sets: int
    databases: int


def _refresh_archive(project: Path) -> None:
    """Any command that finds sets not archived yet archives them: later they may be gone."""
    from . import archive

    try:
        done = archive.refresh(project)
    except errors.KnexwrapError as failure:
        click.echo(f"knexwrap: warning: {failure.message}", err=True)
        return
    # Said on a terminal only: scripts read --json, and the archive is not part of the answer.
    if done is not None and (done.new_files or done.new_indexes) and sys.stderr.isatty():
        click.echo(f"knexwrap: archived the migration files of {len(done.new_indexes)} sets in {done.root}", err=True)


def check_code(states: list[str]) -> int:
    """status --check: 0 in sync, else the code of the worst state found (README, exit codes)."""
    codes = {"unreachable": 5, "ahead": 8, "locked": 9, "behind": 10, "absent": 10}
    from .report import SEVERITY

    found = [codes[s] for s in SEVERITY if s in states and s in codes]
    return found[0] if found else 0


def _progress() -> Callable[[str], None]:
    def show(ident: str) -> None:
        if not ident.startswith("#"):
            click.echo(f"knexwrap: read {ident}", err=True)

    return show


@cli.command()
@click.argument("plugin")
@target_options
@output.output_options
def current(plugin: str, as_json: bool, fmt: str, **kw: Any) -> None:
    """The current migration version of PLUGIN (knex migrate:currentVersion)."""
    output.emit(commands.current(_target(plugin, kw)), as_json=as_json, fmt=fmt)


def _change(plan_for: Callable[[commands.Target], Plan], plugin: str, kw: dict[str, Any]) -> None:
    from . import changes

    as_json, fmt, yes, dry = kw.pop("as_json"), kw.pop("fmt"), kw.pop("yes"), kw.pop("dry_run")
    target = _target(plugin, kw)
    plan = plan_for(target)
    _refresh_archive(target.project)
    if dry:
        output.emit(changes.dry_run(target, plan), as_json=as_json, fmt=fmt)
        return
    if plan.names:
        output.show_plan(target.header(), plan)
        if not yes and not click.confirm("Go ahead?", default=False, err=True):
            raise errors.Cancelled("cancelled: nothing was changed")
    output.emit(changes.execute(target, plan), as_json=as_json, fmt=fmt)


def change_command(help_text: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        func = output.output_options(change_options(target_options(func)))
        return cli.command(func.__name__, help=help_text)(func)  # type: ignore[return-value]

    return decorate


@change_command("Apply every pending migration of PLUGIN (knex migrate:latest).")
@click.argument("plugin")
def latest(plugin: str, **kw: Any) -> None:
    from . import changes

    _change(changes.plan_latest, plugin, kw)


@change_command("Apply NAME, or the next pending migration of PLUGIN (knex migrate:up).")
@click.argument("plugin")
@click.argument("name", required=False)
def up(plugin: str, name: str | None, **kw: Any) -> None:
    from . import changes

    _change(lambda t: changes.plan_up(t, name), plugin, kw)


@change_command("Revert NAME, or the last applied migration of PLUGIN (knex migrate:down).")
@click.argument("plugin")
@click.argument("name", required=False)
def down(plugin: str, name: str | None, **kw: Any) -> None:
    from . import changes

    _change(lambda t: changes.plan_down(t, name), plugin, kw)


@change_command("Revert the last batch of PLUGIN, or every batch with --all (knex migrate:rollback).")
@click.argument("plugin")
@click.option("--all", "everything", is_flag=True, help="Revert every applied migration.")
def rollback(plugin: str, everything: bool, **kw: Any) -> None:
    from . import changes

    _change(lambda t: changes.plan_rollback(t, everything), plugin, kw)


@change_command("Release a held migration lock of PLUGIN (knex migrate:unlock).")
@click.argument("plugin")
def unlock(plugin: str, **kw: Any) -> None:
    from . import changes

    _change(changes.plan_unlock, plugin, kw)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    try:
        code = cli.main(args=args, prog_name="knexwrap", standalone_mode=False)
    except errors.KnexwrapError as failure:
        shown = failure.output if isinstance(failure, errors.KnexFailed) else ""
        output.error(failure.code, failure.message, failure.exit_code, as_json=as_json, output=shown)
        return failure.exit_code
    except click.exceptions.Abort:
        output.error("cancelled", "cancelled: nothing was changed", 14, as_json=as_json)
        return errors.Cancelled.exit_code
    except click.ClickException as usage:
        output.error("usage", usage.format_message(), usage.exit_code, as_json=as_json)
        return usage.exit_code
    except KeyboardInterrupt:
        output.error("interrupted", "interrupted", 130, as_json=as_json)
        return 130
    except Exception as bug:  # a bug in knexwrap: one line, the traceback only on request
        if os.environ.get("KNEXWRAP_DEBUG"):
            raise
        output.error(
            "internal",
            f"internal error ({type(bug).__name__}: {bug}); rerun with KNEXWRAP_DEBUG=1 for details",
            1,
            as_json=as_json,
        )
        return 1
    return code if isinstance(code, int) else 0
