"""knexwrap doctor: what is wrong with each plugin database x migration set, and the command that fixes it.

Diagnoses the downgrade condition knex reports as "The migration directory is corrupt" (which files,
from which package version, whether the archive holds them), a held lock, and a database that was
migrated with another plugin's folder, and (from the journal) a migration without a transaction that failed
part way, with the `knexwrap mark` command that records it once the operator finished it by hand. Read-only.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..install import sets
from ..state import read as st
from ..state import report
from ..state import whole as install


@dataclass(frozen=True)
class Finding:
    database: str
    table: str
    problem: str  # "ahead", "locked", "wrong_folder", "unreachable", "skipped", "half_done", "changed"
    message: str
    files: tuple[str, ...] = ()
    fix: str | None = None  # the exact knexwrap command that fixes it, shell-quoted to paste, when there is one


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
    fix = shlex.join(["knexwrap", "downgrade", "--to", str(p.project)]) + p.flags if len(held) == len(missing) else None
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


def _foreign(db: report.DatabaseReport, one: report.SetReport) -> Finding:
    """Rows of another installed set in this set's table: a conflict (two sets, one table) or a
    folder pointed at the wrong database (the mistake of Backstage's manual rollback guide)."""
    rows = one.rows_of_other_sets
    where = sorted({f"{r.package} ({r.migrations_directory})" for r in rows})
    files = tuple(r.name for r in rows)
    if one.state == "conflict":
        return Finding(
            db.database,
            one.migrations_table,
            "conflict",
            f"{one.package} shares the table {one.migrations_table} with another installed set"
            + (f" ({len(rows)} rows belong to {', '.join(where)})" if rows else "")
            + ": knex would call each folder corrupt; give one of them a migrations table of its own "
            "(migrations.tableName) and move its rows there before the backend starts",
            files,
        )
    their_tables = sorted({r.migrations_table for r in rows})
    return Finding(
        db.database,
        one.migrations_table,
        "wrong_folder",
        f"{len(rows)} recorded migrations belong to {', '.join(where)}, not to {one.package}: this database was "
        f"migrated with another plugin's folder; revert them with that folder against this database, newest "
        f"first (knexwrap down <that folder> --database <this database> --migrations-table-name "
        f"{one.migrations_table} NAME), or restore a backup; their own table is {', '.join(their_tables)}",
        files,
    )


def _orphan(db: report.DatabaseReport, one: report.SetReport) -> Finding:
    return Finding(
        db.database,
        one.migrations_table,
        "locked",
        "the lock of a migrations table no installed package claims is held: release it with "
        f"knexwrap unlock {db.plugin} --migrations-table-name {one.migrations_table} once nothing runs",
    )


def _locked(db: report.DatabaseReport, one: report.SetReport, flags: str) -> Finding:
    table = [] if one.migrations_table == "knex_migrations" else ["--migrations-table-name", one.migrations_table]
    return Finding(
        db.database,
        one.migrations_table,
        "locked",
        (
            f"{one.migrations_table}_lock has {one.lock_rows} rows (two first runs raced, knex #3538): knex "
            "says locked until they are cleared"
            if one.lock_rows > 1
            else "the migration lock is held: a backend or knex is migrating, or one crashed while holding it; "
            "release it only when nothing is running"
        ),
        fix=shlex.join(["knexwrap", "unlock", str(db.plugin), *table]) + flags,
    )


def _skipped(db: report.DatabaseReport, one: report.SetReport, flags: str) -> Finding:
    table = "" if one.migrations_table == "knex_migrations" else f" --migrations-table-name {one.migrations_table}"
    pending = one.names("pending")
    return Finding(
        db.database,
        one.migrations_table,
        "skipped",
        f"app-config sets skipMigrations for {db.plugin}: the backend will never apply these {len(pending)} "
        "pending migrations here",
        pending,
        fix=f"knexwrap latest {db.plugin}{table}{flags}",
    )


# The journal's commands by the direction their migrations ran in.
_DIRECTION = {"latest": "up", "up": "up", "down": "down", "rollback": "down", "downgrade": "down"}


def _last_failures(project: Path) -> dict[tuple[str, str, str], str]:
    """(database, table, name) -> "up"/"down" for each migration whose newest journal record says it failed
    (it was running when its change stopped); a later record of it (applied, reverted, marked) clears it."""
    from . import journal

    last: dict[tuple[str, str, str], str | None] = {}
    for record in journal.read(project):
        direction = _DIRECTION.get(str(record.get("command")))
        for ran in record.get("ran") or []:
            if isinstance(ran, dict) and all(isinstance(ran.get(k), str) for k in ("database", "table", "name")):
                key = (ran["database"], ran["table"], ran["name"])
                last[key] = direction if ran.get("status") == "failed" else None
    return {key: direction for key, direction in last.items() if direction is not None}


def _half_done(db: report.DatabaseReport, one: report.SetReport, failed: dict[Any, str], flags: str) -> list[Finding]:
    """A migration without a transaction that failed part way (the journal says) and whose row still says it
    did not run (up: absent; down: present): what it did before failing may still be there. If the operator
    finished it by hand, `knexwrap mark` records that; only they can tell, so the message says to check first."""
    findings = []
    for (database, table, name), direction in failed.items():
        if (database, table) != (db.database, one.migrations_table):
            continue
        row_says = "pending" if direction == "up" else "applied"
        # MySQL/MariaDB commit each DDL statement on its own: any migration can be left half done there.
        loose = db.client in ("mysql", "mysql2") or st.without_transaction(one.migrations_directory, (name,))
        if name not in one.names(row_says) or not loose:
            continue
        mysql = db.client in ("mysql", "mysql2")
        how = "ran on MySQL/MariaDB, where DDL commits on its own," if mysql else "runs without a transaction"
        flag, did = ("--applied", "applied") if direction == "up" else ("--reverted", "reverted")
        tables = [] if table == "knex_migrations" else ["--migrations-table-name", table]
        findings.append(
            Finding(
                db.database,
                table,
                "half_done",
                f"{name} {how} and failed part way ({direction}, "
                f"see the journal): its row says it is {row_says}, but what it did before failing may still be "
                f"there. Check the database by hand: only if it was finished by hand, record it as {did} with the "
                f"command below (the migration is not run); otherwise undo what it left, if anything, and run it "
                f"again (knexwrap {direction} {db.plugin} {name}): this finding clears once a run records it",
                (name,),
                fix=shlex.join(["knexwrap", "mark", str(db.plugin), name, flag, *tables]) + flags,
            )
        )
    return findings


def plural(n: int) -> str:
    return "1 recorded migration" if n == 1 else f"{n} recorded migrations"


def _changed(db: report.DatabaseReport, one: report.SetReport, project: Path) -> Finding:
    """Recorded migrations whose installed file is not the content that was applied (upgrade/drift.py)."""
    from . import archive

    rows = report.changed(one)
    root = archive.default_root(project)
    details = []
    for m in rows:
        assert m.drift is not None  # report.changed() keeps only rows with one
        kept = archive.blob(root, m.name, m.drift.applied_sha256)
        where = f"archived as {kept}" if kept.is_file() else "not archived"
        details.append(
            f"{m.name} (applied sha256 {m.drift.applied_sha256[:12]} from {m.drift.applied_sha256_from}, installed "
            f"{str(m.drift.file_sha256)[:12]}; the applied content is {where})"
        )
    return Finding(
        db.database,
        one.migrations_table,
        "changed",
        f"{plural(len(rows))} of {one.package} {one.version or ''} changed since applied: "
        f"{'; '.join(details)}. A rollback or downgrade runs the installed file's down(), which may not undo what "
        "the applied up() did: compare the two contents before reverting",
        tuple(m.name for m in rows),
    )


def diagnose(p: install.Plan, *, timeout: float) -> DoctorReport:
    from . import drift

    found = sets.discover_all(p.project)
    status = drift.annotate_install(p.project, install.read(p, timeout))
    failed = _last_failures(p.project)
    findings: list[Finding] = []
    checked = 0
    for db in status.databases:
        if db.state == "unreachable":
            findings.append(Finding(db.database, "", "unreachable", str(db.error)))
        for one in db.sets:
            checked += 1
            if one.package is None and not one.migrations_directory:  # a table no installed set claims
                findings += [_orphan(db, one)] if one.locked else []
                continue
            if one.locked:
                findings.append(_locked(db, one, p.flags))
            if one.rows_of_other_sets or one.state == "conflict":
                findings.append(_foreign(db, one))
            if one.counts["missing"]:
                findings.append(_ahead(db, one, p, found))
            if report.changed(one):
                findings.append(_changed(db, one, p.project))
            if db.skip_migrations and one.counts["pending"]:
                findings.append(_skipped(db, one, p.flags))
            findings += _half_done(db, one, failed, p.flags)
    return DoctorReport(tuple(findings), checked)
