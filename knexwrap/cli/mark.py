"""`knexwrap mark PLUGIN NAME --applied | --reverted`: record or remove one migration's row without running it.

The flow of every change (main._change): the plan read-only, shown (text on stderr, or the --dry-run
document), confirmed, journaled, then carried out under knexwrap's lock after a backup (upgrade/mark.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from . import completion, output, progress
from .install import journaled
from .options import confirm_or_cancel, target_from, target_options

if TYPE_CHECKING:
    from ..upgrade.mark import MarkOutcome, MarkPlan


@click.command("mark")
@click.argument("plugin", shell_complete=completion.plugins)
@click.argument("name", shell_complete=completion.migrations)
@click.option("--applied", is_flag=True, help="Record NAME as applied (it was finished by hand).")
@click.option("--reverted", is_flag=True, help="Remove NAME's row (it was undone by hand, or its file is gone).")
@click.option("--no-backup", is_flag=True, help="Skip the backup of the migrations table (SQLite: of the file).")
@target_options
@output.output_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask before changing the database.")
@click.option("--dry-run", is_flag=True, help="Show the row that would be written or removed; change nothing.")
def mark_command(plugin: str, name: str, applied: bool, reverted: bool, no_backup: bool, **kw: Any) -> None:
    """Record NAME as applied, or remove its row, in PLUGIN's migrations table without running it.

    For a migration finished or undone by hand (e.g. one without a transaction that failed half way):
    knexwrap writes the row knex would have written (the next batch, the time now) or removes it, after a
    backup of the migrations table.
    """
    from ..upgrade import journal, names
    from ..upgrade import mark as marking

    if applied == reverted:
        raise click.UsageError("give exactly one of --applied and --reverted")
    action = "applied" if applied else "reverted"
    as_json, fmt, yes, dry = kw.pop("as_json"), kw.pop("fmt"), kw.pop("yes"), kw.pop("dry_run")
    explicit_table = kw.get("migrations_table_name")
    target = target_from(plugin, kw)
    if not explicit_table:
        target = names.set_for_name(target, name)
        output.note_target(target.header())
    planned = marking.plan(target, name, action)
    backup_to = None if no_backup else _backup_folder(target)
    if dry:
        _emit(marking.dry_run(target, planned, backup_to), as_json, fmt)
        return
    _show(target.header(), planned, backup_to)
    confirm_or_cancel(yes)
    with journaled(target.project, planned) as entry:

        def taken(path: str) -> None:
            entry.backups.append(path)
            progress.said(f"knexwrap: backup of {target.migrations.table} in {target.connection.target()}: {path}")

        outcome = marking.execute(target, planned, backup_to, taken)
        database = target.header()["database"]
        entry.ran = [journal.Ran(database, target.migrations.table, planned.name, action, planned.sha256)]
    _emit(outcome, as_json, fmt)


def _backup_folder(target: Any) -> str:
    """Refuse before the question when no backup can be taken; else the folder it goes to."""
    from ..upgrade import backup

    backup.check_possible(target.connection)
    return str(backup.folder(target.project))


def _show(target: dict[str, Any], planned: MarkPlan, backup_to: str | None) -> None:
    """The row about to be written or removed, on stderr (stdout stays one --json document)."""
    from .tables import where

    click.echo(f"About to {_verb(planned.action)}, in {where(target)}:", err=True)
    click.echo(f"  {planned.name}  batch {planned.batch}", err=True)
    for line in _details(planned.notes, planned.warnings, backup_to, target):
        click.echo(line, err=True)


def _verb(action: str) -> str:
    return "record as applied (without running it)" if action == "applied" else "remove the row (without reverting)"


def _details(notes: tuple[str, ...], warnings: tuple[str, ...], backup_to: str | None, target: Any) -> list[str]:
    lines = [f"note: {note}" for note in notes] + [f"warning: {warning}" for warning in warnings]
    if backup_to is None:
        return [*lines, "backup: none (--no-backup)"]
    what = "the whole file" if target["client"] in ("better-sqlite3", "sqlite3") else "the migrations table"
    return [*lines, f"backup: {what} to {backup_to}"]


def _emit(result: MarkOutcome, as_json: bool, fmt: str) -> None:
    if as_json:
        output.emit(result, as_json=True, fmt=fmt)
        return
    click.echo(render(result))


def render(result: MarkOutcome) -> str:
    """The outcome for people: where, the row, the backup, and whether anything changed."""
    from .tables import where

    row = f"{result.name} (batch {result.batch}{f', {result.migration_time}' if result.migration_time else ''})"
    if result.dry_run:
        head = f"would {_verb(result.action)}: {row}"
    elif result.action == "applied":
        head = f"recorded as applied (not run): {row}"
    else:
        head = f"removed the row (not reverted): {row}"
    lines = [where(result.target), head]
    lines += [f"backup: {path}" for path in result.backups]
    lines += _details(result.notes, result.warnings, result.backup_to, result.target) if result.dry_run else []
    if result.dry_run:
        lines.append("dry run: nothing was changed")
    return "\n".join(lines)
