"""The commands over the whole install: config, plugins, plan, downgrade, doctor, archive, snapshot.

Registered on the `knexwrap` group by cli.py; each imports what it runs inside its body.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from .. import errors
from . import output, progress, sqlview
from .options import change_options, confirm_or_cancel, options_from, target_options


@click.command("config")
@click.argument("plugin", required=False)
@target_options
@output.output_options
def config_command(plugin: str | None, as_json: bool, fmt: str, **kw: Any) -> None:
    """Where each plugin's database connection comes from and where it points (password masked)."""
    from ..state import listing

    options, project_dir = options_from(kw), kw.pop("project_dir")
    result = listing.describe(options, project_dir=project_dir, plugin=plugin)
    output.emit(result, as_json=as_json, fmt=fmt)


@click.command("plugins")
@target_options
@output.output_options
def plugins_command(as_json: bool, fmt: str, **kw: Any) -> None:
    """Every installed migration set: plugin id, package, version, folder, table and database."""
    from ..state import listing

    options, project_dir = options_from(kw), kw.pop("project_dir")
    output.emit(listing.list_sets(options, project_dir=project_dir), as_json=as_json, fmt=fmt)


@click.command("plan")
@click.option("--to", "to", required=True, metavar="TARGET", help="Older install (folder) or snapshot file.")
@sqlview.sql_option
@target_options
@output.output_options
def plan_command(to: str, as_json: bool, fmt: str, sql: str | None, **kw: Any) -> None:
    """What going back to TARGET reverts, per database and migration set, newest first (read-only)."""
    from ..state import whole as install
    from ..upgrade import plan as downgrade

    options, project_dir, timeout = options_from(kw), kw.pop("project_dir"), kw.pop("timeout")
    p = install.plan(options, project_dir)
    result = downgrade.plan(p, to=to, timeout=timeout)
    if sql is not None:
        sqlview.preview_downgrade(result, p, sql, timeout=timeout, as_json=as_json, fmt=fmt, out=True, yes=False)
        return
    output.emit(result, as_json=as_json, fmt=fmt)


NO_BACKUP = click.option("--no-backup", is_flag=True, help="Skip the backup of each affected database.")


def before_revert(connection: Any, project: Path, backs_up: bool) -> None:
    """Before the question: refuse a backup that cannot be taken, show the size and free space it needs."""
    from ..upgrade import backup
    from . import upgrade_text

    if backs_up:
        backup.check_possible(connection)
        click.echo(upgrade_text.space_line(backup.space(connection, project)), err=True)


def take_backup(connection: Any, project: Path) -> tuple[str, ...]:
    """A verified backup before a revert; its path is said at once, so it is known even if the revert fails."""
    from ..upgrade import backup

    path = backup.backup(connection, project)
    click.echo(f"knexwrap: backup of {connection.target()} written to {path}", err=True)
    return (str(path),)


def journaled(project: Path, plan: Any) -> AbstractContextManager[Any]:
    """The journal record of the change this command makes (upgrade/journal.py), with its parsed arguments."""
    from ..upgrade import journal

    context = click.get_current_context()
    return journal.change(project, str(context.info_name), dict(context.params), plan)


@click.command("downgrade")
@click.option("--to", "to", required=True, metavar="TARGET", help="Older install (folder) or snapshot file.")
@NO_BACKUP
@click.option("--force", is_flag=True, help="Go on although a Backstage backend is connected.")
@target_options
@output.output_options
@change_options
@sqlview.sql_option
def downgrade_command(to: str, no_backup: bool, force: bool, sql: str | None, **kw: Any) -> None:
    """Revert what TARGET does not have, with backups, one migration at a time, newest first."""
    from ..state import whole as install
    from ..upgrade import downgrade as downgrade_run
    from ..upgrade import plan as downgrade

    as_json, fmt, yes, dry = kw.pop("as_json"), kw.pop("fmt"), kw.pop("yes"), kw.pop("dry_run")
    options, project_dir, timeout = options_from(kw), kw.pop("project_dir"), kw.pop("timeout")
    p = install.plan(options, project_dir)
    plan = downgrade.plan(p, to=to, timeout=timeout)
    if sql is not None and plan.changes:
        sqlview.preview_downgrade(plan, p, sql, timeout=timeout, as_json=as_json, fmt=fmt, out=dry, yes=yes)
        if dry:
            return
    if dry or not plan.changes:
        output.emit(plan, as_json=as_json, fmt=fmt)
        return
    downgrade_run.preflight(plan, p, take_backups=not no_backup)
    click.echo(output.as_text(plan, fmt), err=True)
    confirm_or_cancel(yes)
    limits = {"change_timeout": kw.pop("change_timeout"), "lock_timeout": kw.pop("lock_timeout")}
    say = lambda line: progress.said(f"knexwrap: {line}")  # noqa: E731
    with journaled(p.project, plan) as entry:
        live = progress.migrations(as_json)  # each migration as knex reverts it, on a terminal
        result = downgrade_run.execute(
            plan, p, timeout=timeout, take_backups=not no_backup, force=force, say=say, on_event=live, **limits
        )
        progress.stop()
        entry.backups, entry.ran = list(result.backups), downgrade_run.journal_ran(plan, result, p.project)
        entry.outcome = result.failure or "done"
    output.emit(result, as_json=as_json, fmt=fmt)
    if result.failure is not None:
        output.error(result.failure["code"], result.failure["message"], result.failure["exit_code"], as_json=False)
        click.get_current_context().exit(result.failure["exit_code"])


@contextlib.contextmanager
def restore_locks(p: Any, connection: Any, *, timeout: float) -> Iterator[None]:
    """knexwrap's lock of every installed set of the database a restore replaces, held while it runs.

    A second knexwrap change of any of them fails at once (Locked, exit 9); knex's own lock is not checked:
    the restore puts the lock table back too. Raises Locked when another knexwrap change holds one."""
    from ..knex.node import Node
    from ..state.plugin import Target
    from ..upgrade import lock

    node = Node(p.project, timeout, connection.password)
    where = connection.target()
    found = {s.table: s for plugin, c in p.databases.items() if c.target() == where for s in p.sets_by_plugin[plugin]}
    with contextlib.ExitStack() as held:
        for table in sorted(found):
            held.enter_context(lock.hold(Target(p.project, found[table], connection, node), check_knex_lock=False))
        yield


@click.command("restore")
@click.argument("backup_file", metavar="BACKUP")
@NO_BACKUP
@target_options
@output.output_options
@change_options
def restore_command(backup_file: str, no_backup: bool, **kw: Any) -> None:
    """Put BACKUP (a file knexwrap's backups folder holds) back into the database it came from."""
    from ..state import whole as install
    from ..upgrade import restore

    as_json, fmt, yes, dry = kw.pop("as_json"), kw.pop("fmt"), kw.pop("yes"), kw.pop("dry_run")
    options, project_dir = options_from(kw), kw.pop("project_dir")
    timeout = kw.pop("timeout")  # bounds taking the locks only: a restore takes as long as the database needs
    p = install.plan(options, project_dir)
    path = Path(backup_file).expanduser().resolve()
    connection, notes = restore.connection_of(path, p.databases)
    planned = restore.plan(path, connection, notes)
    if dry:
        output.emit(planned, as_json=as_json, fmt=fmt)
        return
    before_revert(connection, p.project, not no_backup)
    click.echo(output.as_text(planned, fmt), err=True)
    if not yes and not click.confirm("Go ahead?", default=False, err=True):
        raise errors.Cancelled("cancelled: nothing was changed")
    with journaled(p.project, planned) as entry:
        hold = functools.partial(restore_locks, p, timeout=timeout)
        result = restore.execute(planned, connection, p.project, take_backup=not no_backup, hold=hold)
        entry.backups = [result.backup_before] if result.backup_before else []
    output.emit(result, as_json=as_json, fmt=fmt)


@click.command("doctor")
@target_options
@output.output_options
def doctor_command(as_json: bool, fmt: str, **kw: Any) -> None:
    """Diagnose every plugin database: missing files, held locks, wrong folders, migration files changed since
    they ran, migrations left half done; and how to fix each."""
    from ..state import whole as install
    from ..upgrade import doctor

    options, project_dir, timeout = options_from(kw), kw.pop("project_dir"), kw.pop("timeout")
    p = install.plan(options, project_dir)
    refresh_archive(p.project)
    result = doctor.diagnose(p, timeout=timeout)
    output.emit(result, as_json=as_json, fmt=fmt)
    if result.findings:
        click.get_current_context().exit(errors.DoctorFound.exit_code)


@click.command("archive")
@click.option("--project-dir", metavar="DIR", help="Backstage project holding node_modules/.bin/knex.")
@click.option("--state-dir", metavar="DIR", envvar="KNEXWRAP_STATE_DIR", help="knexwrap's private folder.")
@output.output_options
def archive_command(project_dir: str | None, state_dir: str | None, as_json: bool, fmt: str) -> None:
    """Copy every installed migration file into .knexwrap/archive/ (run after every install or upgrade)."""
    from ..install import plugins
    from ..upgrade import archive, statedir

    statedir.use(state_dir)
    project = plugins.find_project(Path.cwd(), project_dir)
    output.emit(archive.archive(project), as_json=as_json, fmt=fmt)


@click.command("snapshot")
@click.option("--out", "out", metavar="FILE", help="Where to write it [.knexwrap/snapshots/snapshot-<time>.json].")
@target_options
@output.output_options
def snapshot_command(out: str | None, as_json: bool, fmt: str, **kw: Any) -> None:
    """Record every database x set's applied migrations and the installed versions; archive the files."""
    from ..install import sets
    from ..state import whole as install
    from ..upgrade import snapshot

    options, project_dir, timeout = options_from(kw), kw.pop("project_dir"), kw.pop("timeout")
    p = install.plan(options, project_dir)
    report_now = install.read(p, timeout)
    taken = snapshot.take(report_now, list(sets.discover_all(p.project)), p.project)
    path = snapshot.write(taken, Path(out) if out else snapshot.default_path(p.project, taken))
    output.emit(
        SnapshotWritten(str(path), taken.taken_at, len(taken.sets), len(taken.databases)), as_json=as_json, fmt=fmt
    )


@dataclass(frozen=True)
class SnapshotWritten:
    path: str
    taken_at: str  # UTC, ISO 8601
    set_count: int
    database_count: int


def refresh_archive(project: Path) -> None:
    """Any command that finds sets not archived yet archives them: later they may be gone."""
    from ..upgrade import archive

    try:
        done = archive.refresh(project)
    except errors.KnexwrapError as failure:
        click.echo(f"knexwrap: warning: {failure.message}", err=True)
        return
    # Said on a terminal only: scripts read --json, and the archive is not part of the answer.
    if done is not None and (done.new_files or done.new_indexes) and sys.stderr.isatty():
        click.echo(f"knexwrap: archived the migration files of {len(done.new_indexes)} sets in {done.root}", err=True)
    for label in done.changed_in_place if done is not None else ():
        # Always said: a file patched in place means a later down() may not match the up() that ran.
        click.echo(f"knexwrap: warning: {label} changed in place (same package version): kept both contents", err=True)


COMMANDS = (
    config_command,
    plugins_command,
    plan_command,
    downgrade_command,
    doctor_command,
    archive_command,
    snapshot_command,
    restore_command,
)
