"""Text renderings for people: one function per result type, tables through tabulate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: rendering a status must not import the downgrade machinery
    from ..state.plugin import Current, Status
    from ..state.report import DatabaseReport, InstallReport, SetReport
    from ..state.whole import ConfigReport, SetsReport
    from ..upgrade.archive import ArchiveResult
    from ..upgrade.changes import Outcome
    from ..upgrade.doctor import DoctorReport
    from ..upgrade.downgrade import DowngradeResult
    from ..upgrade.plan import DowngradePlan

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


def _migrations(report: SetReport, fmt: str, verbose: bool) -> str:
    if not report.migrations:
        return "(no migrations in the folder or the database)"
    if verbose:
        rows = [[m.name, m.state, m.batch, m.migration_time] for m in report.migrations]
        return table(rows, ["migration", "state", "batch", "migration_time"], fmt)
    return table([[m.name, m.state] for m in report.migrations], ["migration", "state"], fmt)


def _summary(report: SetReport) -> str:
    c = report.counts
    line = f"{c['applied']} applied, {c['pending']} pending, {c['missing']} missing; "
    return line + f"current version {report.current_version or 'none'}"


def _set_line(report: SetReport) -> str:
    version = f" {report.version}" if report.version else ""
    return f"{report.migrations_table} ({report.package}{version}): {_summary(report)}; {report.state}"


def _status(result: Status, fmt: str, verbose: bool) -> str:
    primary = result.primary
    lines = [where(result.target), "", _migrations(primary, fmt, verbose), "", _summary(primary)]
    if primary.counts["missing"]:
        lines.append(
            "missing: recorded in the database but absent from the folder (the database is ahead of this code)"
        )
    if primary.state == "absent":
        lines.append("absent: the database does not exist yet (the backend creates it when it first starts)")
    if primary.locked:
        lines.append("lock: HELD (if no backend or knex is running, release it with knexwrap unlock)")
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
            if s.counts["missing"] or (verbose and s.counts["pending"]):
                lines.append(
                    f"{placed(db.database)[1]} {s.migrations_table}: missing {', '.join(s.names('missing')) or '-'}"
                    f"; pending {', '.join(s.names('pending')) or '-'}"
                )
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


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
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    if result.dry_run:
        lines.append("dry run: nothing was changed")
    lines.extend(f"knex: {note}" for note in result.notes)
    return "\n".join(lines)


def _config(result: ConfigReport, fmt: str) -> str:
    headers = ["plugin", "client", "where", "user", "password", "migrations tables", "from"]
    rows = []
    for r in result.plugins:
        where = r.sqlite_file or f"{r.host}:{r.port}/{r.database}"
        if r.schema:
            where += f" schema {r.schema}"
        rows.append([r.plugin, r.client, where, r.user or "", r.password, "\n".join(r.migrations_tables), r.source])
    return table(rows, headers, fmt, shrink=(0, 1, 2, 5, 6))


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
    lines += [f"note: {note}" for note in plan.notes]
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
    lines += [f"skipped: {why}" for why in result.skipped]
    return "\n".join(lines)


def _sets(result: SetsReport, fmt: str) -> str:
    headers = ["plugin", "package", "version", "table", "migrations folder", "database"]
    rows = []
    for r in result.sets:
        where = "every plugin database" if r.plugin == "*" else "\n".join(r.databases)
        rows.append([r.plugin, r.package or "", r.version or "", r.migrations_table, r.migrations_directory, where])
    return table(rows, headers, fmt, shrink=(1, 3, 4, 5))
