"""Plan a downgrade: for every plugin database x migration set, what must be reverted, newest first.

The target is an older install (its project folder or node_modules) or a snapshot file. A set the
target does not have at all is left alone: the older backend never touches it, and reverting it
would drop the plugin's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import errors
from ..install import sets
from ..state import read as st
from ..state import report
from ..state import whole as install
from . import archive, snapshot
from .target import Destination, Key, TargetInstall, folder_target


@dataclass(frozen=True)
class SetPlan:
    plugin: str
    database: str
    table: str
    package: str | None
    version_now: str | None
    version_target: str | None
    revert: tuple[str, ...]  # newest first: the order they must be reverted in
    applies_on_start: tuple[str, ...]  # what the target applies when it starts
    without_transaction: tuple[str, ...]  # files to revert that opt out of a transaction
    files_from: str  # "install" (the installed folder has them) or "archive"
    recorded: tuple[str, ...]  # every migration the database records for the set, in id order
    locked: bool
    directory: str  # the installed folder of the set
    target_directory: str | None  # the target's folder of the set, when the target is an install


@dataclass(frozen=True)
class DowngradePlan:
    to: Destination
    sets: tuple[SetPlan, ...]
    notes: tuple[str, ...] = ()

    @property
    def changes(self) -> tuple[SetPlan, ...]:
        return tuple(s for s in self.sets if s.revert)


def target_install(spec: str) -> TargetInstall:
    """The install to go back to, from --to: a snapshot file, or an older install's folder (or its node_modules).

    Raises ConfigError when SPEC is neither; a damaged snapshot raises as snapshot.read does."""
    path = Path(spec).expanduser().resolve()
    if path.is_file():
        return snapshot.target(path)
    return folder_target(spec, path)


def _set_key(plugin: str, found: report.SetReport, shared: set[str]) -> Key:
    return ("*" if found.migrations_table in shared else plugin, found.migrations_table)


def _set_plan(db: report.DatabaseReport, found: report.SetReport, target: TargetInstall, key: Key) -> SetPlan | None:
    wanted = target.files.get(key)
    if wanted is None:
        return None
    keep = set(wanted)
    applied = [m.name for m in found.migrations if m.state != "pending"]
    revert = tuple(reversed([n for n in applied if n not in keep]))
    installed = set(st.list_files(found.migrations_directory))
    return SetPlan(
        plugin=str(db.plugin),
        database=db.database,
        table=found.migrations_table,
        package=found.package,
        version_now=found.version,
        version_target=target.versions.get(key),
        revert=revert,
        applies_on_start=tuple(n for n in wanted if n not in set(applied)),
        without_transaction=st.without_transaction(found.migrations_directory, revert),
        files_from="install" if set(applied) <= installed else "archive",
        recorded=tuple(applied),
        locked=found.locked,
        directory=found.migrations_directory,
        target_directory=target.directories.get(key),
    )


def _keep_installed_files(project: Path) -> list[str]:
    """Planning archives the sets not archived yet, like every command that changes or diagnoses: once the
    code is swapped back, the archive is the only place the newer files are. A failure is a note, not a stop."""
    try:
        archive.refresh(project)
    except errors.KnexwrapError as failure:
        return [f"could not archive the installed migration files: {failure.message}"]
    return []


def plan(p: install.Plan, *, to: str, timeout: float) -> DowngradePlan:
    target = target_install(to)
    project = p.project
    now = install.read(p, timeout)
    shared = {s.table for s in sets.shared_sets(sets.discover_all(project))}
    planned, notes = [], []
    for db in now.databases:
        if db.state == "unreachable":
            raise errors.Unreachable(f"{db.database}: {db.error}")
        for found in db.sets:
            key = _set_key(str(db.plugin), found, shared)
            one = _set_plan(db, found, target, key)
            if one is None:
                notes.append(f"{db.database} {found.migrations_table}: not in {target.to}, left alone")
            else:
                planned.append(one)
    notes += _keep_installed_files(project)  # after a successful plan, like the commands that change
    return DowngradePlan(target.to, tuple(planned), tuple(notes))
