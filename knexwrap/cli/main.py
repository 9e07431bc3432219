"""The command line: thin click commands over knexwrap.commands and knexwrap.changes.

Errors are caught in one place, main(): one line on stderr, the documented exit code, and with
--json one error document on stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .. import errors
from ..state import plugin as commands
from . import completion, mark, output, progress, sqlview, version
from . import install as cli_install
from .options import F, change_options, confirm_or_cancel, options_from, target_from, target_options

if TYPE_CHECKING:
    from ..upgrade.changes import Plan


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=version.show,
    help="Show knexwrap's version, node's, and the current repository's knex version.",
)
def cli() -> None:
    """Safe Knex migration commands for Backstage plugin databases.

    PLUGIN is a plugin id (catalog), a package name (@backstage/plugin-catalog-backend)
    or a path to a migrations folder.
    """


@cli.command()
@click.argument("plugin", required=False, shell_complete=completion.plugins)
@target_options
@output.output_options
@click.option("--verbose", "-v", is_flag=True, help="Show each migration's batch and run time.")
@click.option("--check", is_flag=True, help="Exit non-zero unless every set is in sync (see README).")
def status(plugin: str | None, as_json: bool, fmt: str, verbose: bool, check: bool, **kw: Any) -> None:
    """Applied, pending and missing migrations of PLUGIN's database, or of every plugin database.

    Read-only: creates no database, table or lock row.
    """
    from ..upgrade import drift  # which recorded migrations' files are not the content that was applied

    if plugin is not None:
        result: Any = drift.annotate_status(commands.status(target_from(plugin, kw)))
        states = [result.primary.state, *(s.state for s in result.other_sets)]
    else:
        from ..state import whole as install

        if kw.pop("migrations_table_name"):
            raise errors.ConfigError("--migrations-table-name needs a PLUGIN")
        options, project_dir, timeout = options_from(kw), kw.pop("project_dir"), kw.pop("timeout")
        p = install.plan(options, project_dir)
        shown = progress.start(as_json)
        counter = shown.read if shown is not None else None
        result = drift.annotate_install(p.project, install.read(p, timeout, counter))
        progress.stop()
        states = [d.state for d in result.databases]
    output.emit(result, as_json=as_json, fmt=fmt, verbose=verbose)
    if check:
        click.get_current_context().exit(check_code(states))
    if states and all(s == "unreachable" for s in states):
        # Nothing could be read: never a green result over nothing, --check or not.
        click.get_current_context().exit(errors.Unreachable.exit_code)


def check_code(states: list[str]) -> int:
    """status --check: 0 in sync, else the code of the worst state found (README, exit codes)."""
    codes = {"unreachable": 5, "conflict": 8, "wrong_folder": 8, "ahead": 8, "locked": 9, "behind": 10, "absent": 10}
    from ..state.report import SEVERITY

    found = [codes[s] for s in SEVERITY if s in states and s in codes]
    return found[0] if found else 0


@cli.command()
@click.argument("plugin", shell_complete=completion.plugins)
@target_options
@output.output_options
def current(plugin: str, as_json: bool, fmt: str, **kw: Any) -> None:
    """The current migration version of PLUGIN (knex migrate:currentVersion)."""
    output.emit(commands.current(target_from(plugin, kw)), as_json=as_json, fmt=fmt)


def _change(
    plan_for: Callable[[commands.Target], Plan],
    plugin: str,
    kw: dict[str, Any],
    pick: Callable[[commands.Target], commands.Target] | None = None,
) -> None:
    from ..upgrade import changes, journal

    as_json, fmt, yes, dry = kw.pop("as_json"), kw.pop("fmt"), kw.pop("yes"), kw.pop("dry_run")
    sql = kw.pop("sql", None)
    limits = kw.pop("change_timeout"), kw.pop("lock_timeout")
    backs_up = not kw.pop("no_backup", True)  # only down and rollback have --no-backup: they revert
    explicit_table = kw.get("migrations_table_name")
    target = changes.with_limits(target_from(plugin, kw), *limits)
    if pick is not None and not explicit_table:
        target = pick(target)
    from ..upgrade import guards

    plan = guards.check(target, changes.with_warnings(target, plan_for(target)), force=kw.pop("force"), dry_run=dry)
    cli_install.refresh_archive(target.project)
    if sql is not None:
        sqlview.preview_change(target, plan, sql, as_json=as_json, fmt=fmt, dry=dry, yes=yes)
        if dry:
            return
    if dry:
        output.emit(changes.dry_run(target, plan), as_json=as_json, fmt=fmt)
        return
    say = lambda line: progress.said(f"knexwrap: {line}")  # noqa: E731
    if not plan.names:
        output.emit(changes.execute(target, plan, say), as_json=as_json, fmt=fmt)
        return
    output.show_plan(target.header(), plan)
    cli_install.before_revert(target.connection, target.project, backs_up)
    confirm_or_cancel(yes)
    with cli_install.journaled(target.project, plan) as entry:

        def backup() -> tuple[str, ...]:  # under knexwrap's lock, right before the run (changes.execute)
            taken = cli_install.take_backup(target.connection, target.project)
            entry.backups = list(taken)
            return taken

        live = progress.migrations(as_json)  # each migration as knex runs it, on a terminal
        seen: list[Any] = []  # every event, for the journal: which migration was running when it stopped

        def on_event(event: Any) -> None:
            seen.append(event)
            if live is not None:
                live(event)

        database = target.header()["database"]
        try:
            outcome = changes.execute(target, plan, say, on_event=on_event, backup=backup if backs_up else None)
        except errors.KnexwrapError as failure:
            # What the database shows was done before it stopped (the aftermath re-read it), each with its hash.
            done = failure.facts.get("applied" if plan.action == "apply" else "reverted")
            names = [str(n) for n in done] if isinstance(done, list | tuple) else []
            entry.ran = journal.of_run(database, target.migrations, plan.action, names, seen)
            raise
        progress.stop()
        entry.ran = journal.of_run(database, target.migrations, plan.action, outcome.done, seen)
    output.emit(outcome, as_json=as_json, fmt=fmt)


def change_command(help_text: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        func = output.output_options(change_options(target_options(func)))
        func = click.option(
            "--force",
            is_flag=True,
            help="Go on although a Backstage backend is connected (a revert is refused without it, an apply warns).",
        )(func)
        return cli.command(func.__name__, help=help_text)(func)  # type: ignore[return-value]

    return decorate


@change_command("Apply every pending migration of PLUGIN (knex migrate:latest).")
@sqlview.sql_option
@click.argument("plugin", shell_complete=completion.plugins)
def latest(plugin: str, **kw: Any) -> None:
    from ..upgrade import changes

    _change(changes.plan_latest, plugin, kw)


def _to_option(help_text: str) -> Callable[[F], F]:
    return click.option("--to", "to", metavar="NAME", shell_complete=completion.migrations, help=help_text)


def _one_name(name: str | None, to: str | None) -> str | None:
    if name is not None and to is not None:
        raise click.UsageError("give NAME or --to NAME, not both")
    return name if to is None else to


@change_command(
    "Apply NAME, or the next pending migration of PLUGIN (knex migrate:up); with --to NAME every pending one up to "
    "and including NAME, in one batch."
)
@sqlview.sql_option
@click.argument("plugin", shell_complete=completion.plugins)
@click.argument("name", required=False, shell_complete=completion.migrations)
@_to_option("Apply the pending migrations up to and including NAME, in knex's order (one knex run, one batch).")
def up(plugin: str, name: str | None, to: str | None, **kw: Any) -> None:
    from ..upgrade import changes, names

    one = _one_name(name, to)
    plan = (lambda t: changes.plan_up_to(t, to)) if to is not None else (lambda t: changes.plan_up(t, name))
    _change(plan, plugin, kw, pick=lambda t: names.set_for_name(t, one))


@change_command(
    "Revert NAME, or the last applied migration of PLUGIN (knex migrate:down); with --to NAME every applied one "
    "after NAME, last first. After a backup."
)
@sqlview.sql_option
@click.argument("plugin", shell_complete=completion.plugins)
@click.argument("name", required=False, shell_complete=completion.migrations)
@_to_option("Revert the applied migrations after NAME in knex's order, last first; NAME stays applied.")
@cli_install.NO_BACKUP
def down(plugin: str, name: str | None, to: str | None, **kw: Any) -> None:
    from ..upgrade import changes, names

    one = _one_name(name, to)
    plan = (lambda t: changes.plan_down_to(t, to)) if to is not None else (lambda t: changes.plan_down(t, name))
    _change(plan, plugin, kw, pick=lambda t: names.set_for_name(t, one))


@change_command("Revert the last batch of PLUGIN, or every batch with --all (knex migrate:rollback), after a backup.")
@sqlview.sql_option
@click.argument("plugin", shell_complete=completion.plugins)
@click.option("--all", "everything", is_flag=True, help="Revert every applied migration.")
@cli_install.NO_BACKUP
def rollback(plugin: str, everything: bool, **kw: Any) -> None:
    from ..upgrade import changes

    _change(lambda t: changes.plan_rollback(t, everything), plugin, kw)


@change_command("Release the held migration lock of PLUGIN's database, whichever set holds it (migrate:unlock).")
@click.argument("plugin", shell_complete=completion.plugins)
@click.option("--all", "everything", is_flag=True, help="Release every held lock of the plugin's database.")
def unlock(plugin: str, everything: bool, **kw: Any) -> None:
    from ..upgrade import changes, locks

    if not everything:
        _change(changes.plan_unlock, plugin, kw, pick=locks.the_held_one)
        return
    as_json, fmt, yes, dry = kw.pop("as_json"), kw.pop("fmt"), kw.pop("yes"), kw.pop("dry_run")
    base = target_from(plugin, kw)
    targets = locks.held(base)
    plan = locks.plan_all(targets)
    if not targets or dry:
        output.emit(changes.dry_run(targets[0] if targets else base, plan), as_json=as_json, fmt=fmt)
        return
    output.show_plan(targets[0].header(), plan)
    if not yes and not click.confirm("Go ahead?", default=False, err=True):
        raise errors.Cancelled("cancelled: nothing was changed")
    output.emit(locks.execute_all(targets, plan), as_json=as_json, fmt=fmt)


for _command in (*cli_install.COMMANDS, mark.mark_command, completion.completion_command):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        args = ["--help"]  # bare knexwrap: the help, and success
    as_json = "--json" in args
    # The group takes no option with a value: its first word that is no option names the command.
    command = next((a for a in args if not a.startswith("-")), None)
    output.begin(command if command in cli.commands else None)
    try:
        code = cli.main(args=args, prog_name="knexwrap", standalone_mode=False)
    except errors.KnexwrapError as failure:
        shown = failure.output if isinstance(failure, errors.KnexFailed) else ""
        output.error(
            failure.code, failure.message, failure.exit_code, as_json=as_json, output=shown, facts=failure.facts
        )
        return failure.exit_code
    except click.exceptions.Abort:  # Ctrl-C or end of input at a question
        progress.fresh_line()
        output.error("cancelled", "cancelled: nothing was changed", 14, as_json=as_json)
        return errors.Cancelled.exit_code
    except click.ClickException as usage:
        output.error("usage", usage.format_message(), usage.exit_code, as_json=as_json)
        return usage.exit_code
    except KeyboardInterrupt:
        progress.fresh_line()
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
