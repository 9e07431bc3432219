"""Plan a downgrade: for every plugin database x migration set, what must be reverted, newest first.

The target is an older install (its project folder or node_modules) or a snapshot file. A set the
target does not have at all is left alone: the older backend never touches it, and reverting it
would drop the plugin's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .. import errors
from ..install import sets
from ..state import read as st
from ..state import report
from ..state import whole as install
from . import archive, backup, journal, runfolder, snapshot, stored
from .target import Destination, Key, TargetInstall, folder_target


@dataclass(frozen=True)
class Changed:
    """A recorded migration whose installed file is not the content that was applied (upgrade/drift.py)."""

    name: str
    applied_sha256: str
    applied_sha256_from: str  # "journal", "backstage_migration_sources" or "archive"
    file_sha256: str


@dataclass(frozen=True)
class Differs:
    """A recorded migration the target keeps with other content than the installed file's."""

    name: str
    file_sha256: str  # the installed file's
    target_sha256: str  # the target version's (archive, or the target's folder)


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
    # "install" (the installed folder has them), "archive", "backstage_migration_sources" (the archive, and
    # Backstage's stored sources for stored_sources), or "none": some file no source has
    files_from: str
    recorded: tuple[str, ...]  # every migration the database records for the set, in id order
    locked: bool
    directory: str  # the installed folder of the set
    target_directory: str | None  # the target's folder of the set, when the target is an install
    missing_files: tuple[str, ...] = ()  # recorded migrations neither the install nor the archive has
    target_files: tuple[str, ...] = ()  # the target's files of the set, to verify against afterwards
    changed: tuple[Changed, ...] = ()  # recorded migrations whose file is not the content that was applied
    differs_in_target: tuple[Differs, ...] = ()  # recorded migrations the target keeps with other content
    stored_sources: tuple[stored.StoredFile, ...] = ()  # files the archive lacks, from Backstage's table


@dataclass(frozen=True)
class DowngradePlan:
    to: Destination
    sets: tuple[SetPlan, ...]
    notes: tuple[str, ...] = ()
    space: tuple[backup.Space, ...] = ()  # each changed database's size and the free space for its backup

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
        # skipMigrations: the backend applies nothing of this database when it starts.
        applies_on_start=() if db.skip_migrations else tuple(n for n in wanted if n not in set(applied)),
        without_transaction=st.without_transaction(found.migrations_directory, revert),
        files_from="install" if set(applied) <= installed else "archive",
        recorded=tuple(applied),
        locked=found.locked,
        directory=found.migrations_directory,
        target_directory=target.directories.get(key),
        target_files=tuple(wanted),
        changed=tuple(
            Changed(m.name, m.drift.applied_sha256, m.drift.applied_sha256_from, str(m.drift.file_sha256))
            for m in report.changed(found)
            if m.drift is not None
        ),
    )


def _target_shas(project: Path, one: SetPlan) -> dict[str, str]:
    """The target version's content of each file of the set: archived, else read from the target's folder."""
    shas: dict[str, str] = {}
    if one.target_directory:
        for name in one.target_files:
            sha = report.file_sha(one.target_directory, name)
            shas.update({name: sha} if sha else {})
    try:
        every = archive.indexes(archive.default_root(project), one.table, one.package) if one.package else []
    except errors.KnexwrapError:
        every = []  # a damaged index: the archive says nothing here, `archive` reports it
    for index in every:
        if index.package == one.package and index.version == one.version_target:
            shas = {**dict(index.files), **shas}
    return shas


def _differs(project: Path, one: SetPlan) -> SetPlan:
    """ONE with the recorded migrations the target keeps whose content differs from the installed file's (unless
    the content applied is known to be the target's): once downgraded, a rollback runs the target's down()."""
    if one.files_from != "install" or one.version_now == one.version_target:
        return one  # the installed folder is the target's already: `changed` says what differs
    theirs, found = _target_shas(project, one), []
    applied = {c.name: c.applied_sha256 for c in one.changed}  # else, where known, the installed file's
    for name in (n for n in one.recorded if n in set(one.target_files) and n in theirs):
        mine = report.file_sha(one.directory, name)
        if mine is not None and mine != theirs[name] and applied.get(name) != theirs[name]:
            found.append(Differs(name, mine, theirs[name]))
    return replace(one, differs_in_target=tuple(found)) if found else one


def _from_stored(p: install.Plan, one: SetPlan, absent: tuple[str, ...], timeout: float, notes: list[str]) -> SetPlan:
    """ONE with the ABSENT files Backstage's stored sources hold, verified (stored.py), when they are all there;
    a stored source whose checksum does not verify is never used, and said so in NOTES."""
    if one.plugin not in p.databases:
        return one
    found = stored.read(p, one.plugin, one.table, absent, timeout)
    where = f"{one.database} {one.table}"
    notes += [
        f"{where}: Backstage's stored source of {n} does not hash to its checksum: not used" for n in found.refused
    ]
    if set(found.files) != set(absent):
        return one
    return replace(one, files_from=stored.FROM, stored_sources=found.shas())


def _sourced(one: SetPlan, p: install.Plan, timeout: float, notes: list[str]) -> SetPlan:
    """Where the files of a set whose installed folder lacks some will come from, truthfully: the archive
    when it has every recorded one (each name's content as the run will choose it, said in NOTES), the archive
    and Backstage's stored sources for the names only they hold, else none."""
    if one.files_from == "install" or not one.revert:
        return one
    root, key, where = archive.default_root(p.project), (one.table, str(one.package)), f"{one.database} {one.table}"
    absent = runfolder.missing(root, key, one.recorded)
    one = _from_stored(p, one, absent, timeout, notes) if absent else one
    if absent and not one.stored_sources:
        notes.append(f"{where}: no source has {', '.join(absent)} (neither install nor archive)")
        return replace(one, files_from="none", missing_files=absent)
    try:
        prefer = journal.applied_hashes(p.project, one.table, one.recorded)
        names = [n for n in one.recorded if n not in absent]
        choice = runfolder.archived_choice(root, key, names, prefer, stored=bool(one.stored_sources))
        notes += [f"{where}: {n}" for n in (choice.notes if choice else ())]
        if choice is not None and one.stored_sources and choice.newest.module_type == "module":
            notes.append(
                f"{where}: {one.package} is an ES module package: Backstage's stored CommonJS sources "
                "cannot run in its folder: not used"
            )
            return replace(one, files_from="none", missing_files=absent, stored_sources=())
    except errors.KnexwrapError as damaged:
        notes.append(f"{where}: {damaged.message}")
    notes += [
        f"{where}: {f.name} from Backstage's stored migration sources (sha256 {f.sha256[:12]}, checksum verified)"
        for f in one.stored_sources
    ]
    return one


def _keep_installed_files(project: Path) -> list[str]:
    """Planning archives the sets not archived yet, like every command that changes or diagnoses: once the
    code is swapped back, the archive is the only place the newer files are. A failure is a note, not a stop."""
    try:
        archive.refresh(project)
    except errors.KnexwrapError as failure:
        return [f"could not archive the installed migration files: {failure.message}"]
    return []


def plan(p: install.Plan, *, to: str, timeout: float) -> DowngradePlan:
    from . import drift

    target = target_install(to)
    project = p.project
    now = drift.annotate_install(project, install.read(p, timeout, strict=True))
    shared = {s.table for s in sets.shared_sets(sets.discover_all(project))}
    planned, notes = [], []
    for db in now.databases:
        for found in db.sets:
            key = _set_key(str(db.plugin), found, shared)
            one = _set_plan(db, found, target, key)
            if one is None:
                notes.append(f"{db.database} {found.migrations_table}: not in {target.to}, left alone")
            else:
                planned.append(one)
    notes += _keep_installed_files(project)  # after a successful plan, like the commands that change
    planned = [_differs(project, _sourced(one, p, timeout, notes)) for one in planned]
    changed = dict.fromkeys(s.plugin for s in planned if s.revert)
    space = tuple(backup.space(p.databases[plugin], project) for plugin in changed)
    return DowngradePlan(target.to, tuple(planned), tuple(notes), space)
