"""Text renderings for people: one function per result type, tables through tabulate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: rendering a status must not import the downgrade machinery
    from ..state.plugin import Current, Status
    from ..state.report import DatabaseReport, InstallReport, MigrationRow, SetReport
    from ..state.repository import Repository
    from ..state.whole import ConfigReport, SetsReport
    from ..upgrade.archive import ArchiveResult
    from ..upgrade.backup import Space
    from ..upgrade.changes import Outcome
    from ..upgrade.doctor import DoctorReport
    from ..upgrade.downgrade import DowngradeResult
    from ..upgrade.plan import DowngradePlan
    from ..upgrade.restore import RestorePlan, RestoreResult

# The width tables must fit in, for this rendering (set by render(); one rendering per process).
_WIDTH: int | None = None

VERBS = {"apply": ("apply", "applied"), "revert": ("revert", "reverted"), "unlock": ("release", "released")}


def render(result: Any, fmt: str, verbose: bool, width: int | None = None) -> str:
    """RESULT for people; tables no wider than WIDTH columns (None: as wide as their values, --wide)."""
    global _WIDTH
    _WIDTH = width
    kind = type(result).__name__
    if kind == "Status":
        return _status(result, fmt, verbose)
    if kind == "InstallReport":
        return _install(result, fmt, verbose)
    if kind == "SnapshotWritten":
        counted = f"{plural(result.database_count, 'database')} and {plural(result.set_count, 'migration set')}"
        return f"snapshot of {counted} written to {result.path}"
    renderers: dict[str, Any] = {
        "Current": _current,
        "Outcome": _outcome,
        "ConfigReport": _config,
        "SetsReport": _sets,
        "DowngradePlan": downgrade_plan,
        "DowngradeResult": _downgrade_result,
        "DoctorReport": _doctor,
        "ArchiveResult": _archive,
        "RestorePlan": _restore_plan,
        "RestoreResult": _restore_result,
    }
    if kind not in renderers:
        raise TypeError(f"no text rendering for {kind}")
    text: str = renderers[kind](result, fmt)
    return text


def _current(result: Current, fmt: str) -> str:
    return f"{where(result.target)}\ncurrent version: {result.current_version or 'none'}"


def plural(n: int, noun: str) -> str:
    """'1 problem', '2 problems': the count and its noun, in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def count(n: int) -> str:
    return plural(n, "migration")


def where(target: dict[str, Any]) -> str:
    plugin = target["plugin"] or "(no plugin)"
    package = f" ({target['package']})" if target["package"] else ""
    return f"{plugin}{package} in {target['database']}, table {target['migrations_table']}"


def table(rows: list[list[Any]], headers: list[str], fmt: str, shrink: tuple[int, ...] = ()) -> str:
    """A table within the rendering's width: the SHRINK columns' values shortened in the middle as needed."""
    from . import fit

    return fit.table(rows, headers, fmt, shrink=shrink, width=_WIDTH)


def server_line(servers: list[str | None]) -> list[str]:
    """The server (or the SQLite files' folder), named once above a table whose rows name only their database."""
    found = sorted({s for s in servers if s})
    if len(found) != 1:
        return []
    kind = "server" if "://" in found[0] else "folder"
    return [f"{kind} {found[0]}", ""]


def placed(target_text: str) -> tuple[str | None, str]:
    """(server, database with its schema) of a connection text; a SQLite file is (its folder, its name)."""
    import os

    from ..config.connection import split_target

    server, database, schema = split_target(target_text)
    if server is None and os.path.isabs(database):
        return os.path.dirname(database), os.path.basename(database)
    return server, f"{database} schema {schema}" if schema else database


def _state(m: MigrationRow) -> str:
    return f"{m.state} (changed)" if m.drift is not None and m.drift.changed else m.state


def _migrations(report: SetReport, fmt: str, verbose: bool) -> str:
    if not report.migrations:
        return "(no migrations in the folder or the database)"
    if verbose:
        rows = [[m.name, _state(m), m.batch, m.migration_time] for m in report.migrations]
        return table(rows, ["migration", "state", "batch", "migration_time"], fmt)
    return table([[m.name, _state(m)] for m in report.migrations], ["migration", "state"], fmt)


# Where the applied content's hash comes from (state/report.APPLIED_FROM), said to people.
APPLIED_FROM = {
    "journal": "knexwrap's journal",
    "backstage_migration_sources": "Backstage's stored migration sources",
    "archive": "the archive, the content installed then",
}


def changed_lines(prefix: str, report: SetReport) -> list[str]:
    """One line per recorded migration whose installed file is not the content that was applied."""
    return [
        f"{prefix}changed: {m.name}: the installed file (sha256 {m.drift.file_sha256[:12]}) is not the one "
        f"applied (sha256 {m.drift.applied_sha256[:12]}, from {APPLIED_FROM[m.drift.applied_sha256_from]}): "
        "its down() may not undo what its up() did"
        for m in report.migrations
        if m.drift is not None and m.drift.changed and m.drift.file_sha256
    ]


def _summary(report: SetReport) -> str:
    c = report.counts
    line = f"{c['applied']} applied, {c['pending']} pending, {c['missing']} missing; "
    return line + f"current version {report.current_version or 'none'}"


def _set_line(report: SetReport) -> str:
    version = f" {report.version}" if report.version else ""
    line = f"{report.migrations_table} ({report.package}{version}): {_summary(report)}; {report.state}"
    changed = sum(1 for m in report.migrations if m.drift is not None and m.drift.changed)
    return line + f"; {changed} changed" if changed else line


def other_rows_lines(prefix: str, report: SetReport) -> list[str]:
    """What a set's table holds that is not its own: rows of other sets, or a conflict over the table."""
    lines = []
    if report.state == "conflict":
        lines.append(f"{prefix}conflict: another installed set keeps its rows in this table too (see knexwrap doctor)")
    by_owner: dict[str, list[str]] = {}
    for row in report.rows_of_other_sets:
        by_owner.setdefault(f"{row.package} ({row.migrations_table})", []).append(row.name)
    for owner, names in by_owner.items():
        lines.append(f"{prefix}{len(names)} rows belong to {owner}, not to {report.package}: {', '.join(names)}")
    return lines


def _status(result: Status, fmt: str, verbose: bool) -> str:
    primary = result.primary
    lines = [where(result.target), "", _migrations(primary, fmt, verbose), "", _summary(primary)]
    if verbose:  # the JSON always names them; the plain table stays the one operators script against
        lines.append(f"repository: {result.target['root']} (knex {result.target['knex_version'] or 'not installed'})")
    if primary.counts["missing"]:
        lines.append(
            "missing: recorded in the database but absent from the folder (the database is ahead of this code)"
        )
    if primary.state == "absent":
        lines.append("absent: the database does not exist yet (the backend creates it when it first starts)")
    if primary.locked and primary.lock_rows > 1:
        lines.append(
            f"lock: {primary.lock_rows} rows in {primary.migrations_table}_lock (two first runs raced): knex says "
            "locked for ever; clear it with knexwrap unlock"
        )
    elif primary.locked:
        lines.append("lock: HELD (if no backend or knex is running, release it with knexwrap unlock)")
    if result.target.get("skip_migrations") and primary.counts["pending"]:
        lines.append("skipMigrations: the backend will not apply the pending migrations (knexwrap latest does)")
    lines += other_rows_lines("", primary)
    lines += changed_lines("", primary)
    if result.other_sets:
        lines += ["", "other migration sets in this database:"]
    for other in result.other_sets:
        lines.append(_set_line(other))
        if verbose:
            lines += [_migrations(other, fmt, verbose), ""]
    return "\n".join(lines)


def _database_rows(db: DatabaseReport, servers: int) -> list[list[Any]]:
    from .fit import ago

    name = db.database if servers > 1 else placed(db.database)[1]
    if not db.sets:
        return [[name, db.plugin or "", "", "", "", "", "", db.state + (f": {db.error}" if db.error else "")]]
    rows = []
    for i, s in enumerate(db.sets):
        rows.append(
            [
                name if i == 0 else "",
                f"{s.package} {s.version or ''}".strip(),
                s.migrations_table,
                s.counts["applied"],
                s.counts["pending"],
                s.counts["missing"],
                f"{s.last_batch}, {ago(s.last_run)}" if s.last_batch is not None else "",
                s.state,
            ]
        )
    return rows


def repository_lines(repo: Repository | None) -> list[str]:
    """The repository part of a report: root, backend package(s), knex, other copies, plugins not loaded."""
    if repo is None:
        return []
    root = Path(repo.root)
    backends = ", ".join(str(Path(b).relative_to(root)) if Path(b).is_relative_to(root) else b for b in repo.backends)
    lines = [f"repository: {repo.root} (backend: {backends or 'none'}; knex {repo.knex_version or 'not installed'})"]
    lines += [
        f"other copy: {o.package} {o.version} at {o.folder} (not loaded; the backend loads {o.used_version})"
        for o in repo.other_copies
    ]
    lines += [
        f"not loaded: {n.package} {n.version} ({n.plugin_id or 'no plugin id'}) at {n.folder}: "
        "installed, but no backend package depends on it"
        for n in repo.not_loaded
    ]
    return lines


def _install(result: InstallReport, fmt: str, verbose: bool) -> str:
    servers = [placed(db.database)[0] for db in result.databases]
    count_servers = len(set(servers))
    rows = [row for db in result.databases for row in _database_rows(db, count_servers)]
    headers = ["database", "set", "table", "applied", "pending", "missing", "last batch", "state"]
    summary = ", ".join(f"{n} {state}" for state, n in result.summary.items() if n)
    lines = server_line(servers) if count_servers == 1 else []
    lines += [table(rows, headers, fmt, shrink=(0, 1, 2, 7)), ""]
    lines.append(f"{plural(len(result.databases), 'database')}: {summary or 'none'}")
    for db in result.databases:
        for s in db.sets:
            lines += other_rows_lines(f"{db.database} {s.migrations_table}: ", s)
            lines += changed_lines(f"{placed(db.database)[1]} {s.migrations_table}: ", s)
            if s.counts["missing"] or (verbose and s.counts["pending"]):
                lines.append(
                    f"{placed(db.database)[1]} {s.migrations_table}: missing {', '.join(s.names('missing')) or '-'}"
                    f"; pending {', '.join(s.names('pending')) or '-'}"
                )
        if db.skip_migrations and any(s.counts["pending"] for s in db.sets):
            lines.append(f"{db.database}: skipMigrations: the backend will not apply its pending migrations")
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines + repository_lines(result.repository))


def _outcome(result: Outcome, fmt: str) -> str:
    future, past = VERBS[result.action]
    if result.action == "unlock":
        if not result.planned:
            state = "the lock is not held: nothing to release"
        elif result.dry_run:
            state = "would release the migration lock (dry run: nothing was changed)"
        else:
            state = f"released the migration lock ({result.planned[0]})"
        return f"{where(result.target)}\n{state}"
    if not result.planned:
        return f"{where(result.target)}\nnothing to {future}"
    names = result.planned if result.dry_run else result.done
    verb = f"would {future}" if result.dry_run else past
    if result.action == "apply" and not result.dry_run:
        listed = table([[n, result.batch] for n in names], ["migration", "batch"], fmt)
    else:
        listed = table([[n] for n in names], ["migration"], fmt)
    lines = [where(result.target), f"{verb} {count(len(names))}:", listed]
    if result.creates:
        lines.insert(1, f"{'would ' if result.dry_run else 'did: '}{result.creates}")
    lines.extend(f"backup: {path}" for path in result.backups)
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    if result.dry_run:
        lines.append("dry run: nothing was changed")
    lines.extend(f"knex: {note}" for note in result.notes)
    return "\n".join(lines)


def _config(result: ConfigReport, fmt: str) -> str:
    headers = ["plugin", "client", "where", "user", "password", "migrations tables", "from"]
    rows = []
    for r in result.plugins:
        where = f"no connection: {r.missing}" if r.missing else r.sqlite_file or f"{r.host}:{r.port}/{r.database}"
        if r.schema:
            where += f" schema {r.schema}"
        rows.append([r.plugin, r.client, where, r.user or "", r.password, "\n".join(r.migrations_tables), r.source])
    lines = [table(rows, headers, fmt, shrink=(0, 1, 2, 5, 6))]
    for r in result.plugins:
        lines += [f"{r.plugin}: note: {note}" for note in r.notes]
        if r.shares_database_with:
            lines.append(f"{r.plugin}: shares its database with {', '.join(r.shares_database_with)}")
        if r.skip_migrations:
            lines.append(f"{r.plugin}: skipMigrations: the backend does not apply its migrations at start")
        if r.role:
            lines.append(f"{r.plugin}: role {r.role} (SET ROLE on every connection)")
        if r.knex_config:
            lines.append(f"{r.plugin}: knexConfig {json.dumps(r.knex_config, sort_keys=True)}")
    return "\n".join([*lines, *repository_lines(result.repository)])


def downgrade_plan(plan: DowngradePlan, fmt: str) -> str:
    servers = [placed(s.database)[0] for s in plan.sets]
    one_server = len(set(servers)) == 1
    rows = [
        [
            placed(s.database)[1] if one_server else s.database,
            s.table,
            f"{s.version_now or '?'} -> {s.version_target or '?'}",
            "\n".join(s.revert) or "-",
            len(s.applies_on_start),
            s.files_from if s.revert else "",
        ]
        for s in plan.sets
    ]
    headers = ["database", "table", "version", "revert (newest first)", "applied at start", "files from"]
    lines = [f"downgrade to {plan.to}", "", *(server_line(servers) if one_server else [])]
    # File names are never shortened: they are what the operator is asked to agree to.
    lines += [table(rows, headers, fmt, shrink=(0, 1, 5)), ""]
    total = sum(len(s.revert) for s in plan.sets)
    lines.append(f"{count(total)} to revert in {plural(len(plan.changes), 'migration set')}")
    for s in plan.changes:
        lines += [
            f"warning: {s.database} {n} runs without a transaction: a failure can leave it half done"
            for n in s.without_transaction
        ]
    lines += plan_drift_lines(plan)
    lines += [f"note: {note}" for note in plan.notes]
    lines += [space_line(one) for one in plan.space]
    return "\n".join(lines)


def plan_drift_lines(plan: DowngradePlan) -> list[str]:
    """Files whose content is not the one applied, or not the target's: the down() that runs may not match."""
    lines = []
    for s in plan.sets:
        where = f"{s.database} {s.table}"
        lines += [
            f"warning: {where} {c.name} changed since it was applied (sha256 {c.applied_sha256[:12]} from "
            f"{APPLIED_FROM[c.applied_sha256_from]}, installed {c.file_sha256[:12]}): reverting it runs the "
            "installed down()"
            for c in s.changed
        ]
        lines += [
            f"warning: {where} {d.name} differs between {s.package} {s.version_now} (sha256 {d.file_sha256[:12]}) "
            f"and {s.version_target} (sha256 {d.target_sha256[:12]}): once downgraded, a rollback runs the down() "
            f"of {s.version_target}, which may not undo the up() that ran"
            for d in s.differs_in_target
        ]
    return lines


def space_line(space: Space) -> str:
    """What a backup before a revert will take, and where it goes: `backup: DB (12.3 MB) to DIR, 4.1 GB free`."""
    size = f"{size_text(space.size_bytes)}" if space.size_bytes is not None else "size unknown"
    line = f"backup: {space.database} ({size}) to {space.folder}, {size_text(space.free_bytes)} free"
    if space.size_bytes is not None and space.size_bytes > space.free_bytes:
        line += " (warning: less free space than the database takes)"
    return line


def size_text(n: int) -> str:
    """N bytes for people, in decimal units: 512 bytes, 12.3 MB."""
    value, unit = float(n), "bytes"
    for bigger in ("kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def _restore_plan(plan: RestorePlan, fmt: str) -> str:
    lines = [
        f"restore {plan.backup}",
        f"  taken at {plan.taken_at}, {size_text(plan.bytes)}, sha256 {plan.sha256[:12]}... (checked)",
        f"  into {plan.into}",
        f"  replaces {plan.replaces}",
    ]
    return "\n".join(lines + [f"note: {note}" for note in plan.notes])


def _restore_result(result: RestoreResult, fmt: str) -> str:
    if result.dry_run or not result.restored:
        return f"would restore {result.backup} into {result.into} (dry run: nothing was changed)"
    lines = [f"restored {result.backup} into {result.into}"]
    if result.backup_before:
        lines.append(f"backup of the database as it was before: {result.backup_before}")
    return "\n".join(lines)


def _downgrade_result(result: DowngradeResult, fmt: str) -> str:
    lines = [f"downgrade to {result.to}"]
    lines += [f"backup: {path}" for path in result.backups]
    if result.steps:
        servers = [placed(s.database)[0] for s in result.steps]
        one_server = len(set(servers)) == 1
        rows = [
            [placed(s.database)[1] if one_server else s.database, s.table, s.name, s.status, s.message or ""]
            for s in result.steps
        ]
        headers = ["database", "table", "migration", "result", "message"]
        lines += server_line(servers) if one_server else []
        lines.append(table(rows, headers, fmt, shrink=(0, 1, 4)))
    else:
        lines.append("nothing to revert")
    lines += [
        f"verified with knex migrate:list: {v.database} {v.table}: {len(v.applied)} applied, {len(v.pending)} pending"
        if v.applied is not None and v.pending is not None
        else f"{v.database} {v.table}: not verified (the archive lacks the target's files)"
        for v in result.verified
    ]
    return "\n".join(lines)


def _doctor(result: DoctorReport, fmt: str) -> str:
    if not result.findings:
        return f"no problems found in {result.checked} database x migration set pairs"
    lines = []
    for f in result.findings:
        lines.append(f"{f.problem}: {f.database} {f.table}".rstrip())
        lines.append(f"  {f.message}")
        if f.fix:
            lines.append(f"  fix: {f.fix}")
    lines.append(f"{plural(len(result.findings), 'problem')} in {result.checked} database x migration set pairs")
    return "\n".join(lines)


def _archive(result: ArchiveResult, fmt: str) -> str:
    lines = [f"archive {result.root}: {plural(len(result.indexes), 'migration set')}"]
    lines.append(
        f"new: {plural(len(result.new_files), 'file')}, {plural(len(result.new_indexes), 'set version')}"
        if result.new_files or result.new_indexes
        else "nothing new"
    )
    lines += [
        f"changed in place: {label} (same package version, new content; both contents kept)"
        for label in result.changed_in_place
    ]
    lines += [f"skipped: {why}" for why in result.skipped]
    return "\n".join(lines)


def _sets(result: SetsReport, fmt: str) -> str:
    headers = ["plugin", "package", "version", "table", "migrations folder", "database"]
    rows = []
    for r in result.sets:
        where = "every plugin database" if r.plugin == "*" else "\n".join(r.databases)
        rows.append([r.plugin, r.package or "", r.version or "", r.migrations_table, r.migrations_directory, where])
    lines = [table(rows, headers, fmt, shrink=(1, 3, 4, 5))]
    lines += [
        f"plugin without migrations of its own: {p.plugin or '(no plugin id)'} ({p.package} {p.version or ''})".rstrip()
        for p in result.plugins
        if not p.sets
    ]
    lines += [f"no connection for {why}" for why in result.missing]
    return "\n".join(lines + repository_lines(result.repository))
