"""knexwrap doctor: what is wrong with each plugin database x migration set, and the command that fixes it.

Diagnoses the downgrade condition knex reports as "The migration directory is corrupt" (which files,
from which package version, whether the archive holds them), a held lock, and a database that was
migrated with another plugin's folder. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..install import sets
from ..state import report
from ..state import whole as install


@dataclass(frozen=True)
class Finding:
    database: str
    table: str
    problem: str  # "ahead", "locked", "wrong_folder", "unreachable"
    message: str
    files: tuple[str, ...] = ()
    fix: str | None = None  # the exact knexwrap command that fixes it, when there is one


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[Finding, ...]
    checked: int  # database x set pairs looked at


def _owners(found: tuple[sets.MigrationSet, ...], names: tuple[str, ...], own_directory: str) -> dict[str, str]:
    """Which other installed set ships each of these file names (a database migrated with its folder)."""
    owners: dict[str, str] = {}
    for other in found:
        if other.directory == own_directory or not Path(other.directory).is_dir():
            continue
        present = set(p.name for p in Path(other.directory).iterdir())
        for name in names:
            if name in present:
                owners.setdefault(name, f"{other.package} ({other.directory})")
    return owners


def _archived(project: Path, table: str, names: tuple[str, ...]) -> dict[str, str]:
    """name -> "package@version" for the missing files the archive holds."""
    from . import archive

    held: dict[str, str] = {}
    for name in names:
        copies = archive.lookup(archive.default_root(project), table, name)
        if copies:
            held[name] = f"{copies[0].index.package}@{copies[0].index.version}"
    return held


def _ahead(
    db: report.DatabaseReport, one: report.SetReport, p: install.Plan, found: tuple[sets.MigrationSet, ...]
) -> Finding:
    missing = one.names("missing")
    owners = _owners(found, missing, one.migrations_directory)
    if owners and len(owners) == len(missing):
        where = sorted(set(owners.values()))
        return Finding(
            db.database,
            one.migrations_table,
            "wrong_folder",
            f"{len(missing)} recorded migrations belong to {', '.join(where)}, not to {one.package}: this database was "
            "migrated with another plugin's folder",
            missing,
        )
    held = _archived(p.project, one.migrations_table, missing)
    detail = "; ".join(f"{n} from {held[n]} (archived)" if n in held else f"{n} (not archived)" for n in missing)
    fix = f"knexwrap downgrade --to {p.project}{p.flags}" if len(held) == len(missing) else None
    advice = "" if fix else ": install the newer version again and run knexwrap archive, then downgrade"
    return Finding(
        db.database,
        one.migrations_table,
        "ahead",
        f"the database is ahead of the installed {one.package} {one.version or ''}: {detail}{advice}".replace(
            "  ", " "
        ),
        missing,
        fix,
    )


def _locked(db: report.DatabaseReport, one: report.SetReport, flags: str) -> Finding:
    table = "" if one.migrations_table == "knex_migrations" else f" --migrations-table-name {one.migrations_table}"
    return Finding(
        db.database,
        one.migrations_table,
        "locked",
        "the migration lock is held: a backend or knex is migrating, or one crashed while holding it; "
        "release it only when nothing is running",
        fix=f"knexwrap unlock {db.plugin}{table}{flags}",
    )


def diagnose(p: install.Plan, *, timeout: float) -> DoctorReport:
    found = sets.discover_all(p.project)
    status = install.read(p, timeout)
    findings: list[Finding] = []
    checked = 0
    for db in status.databases:
        if db.state == "unreachable":
            findings.append(Finding(db.database, "", "unreachable", str(db.error)))
        for one in db.sets:
            checked += 1
            if one.locked:
                findings.append(_locked(db, one, p.flags))
            if one.counts["missing"]:
                findings.append(_ahead(db, one, p, found))
    return DoctorReport(tuple(findings), checked)
