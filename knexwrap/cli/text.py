"""Text renderings for people: one function per result type, tables through tabulate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..state.report import APPLIED_FROM_SAID
from . import tables
from .tables import VERBS, count, placed, plural, server_line, table, where

if TYPE_CHECKING:  # for annotations only: rendering a status must not import the downgrade machinery
    from ..state.listing import ConfigReport, SetsReport
    from ..state.plugin import Current, Status
    from ..state.report import DatabaseReport, InstallReport, MigrationRow, SetReport
    from ..state.repository import Repository
    from ..upgrade.changes import Outcome

# Upgrade-day results: their renderers (cli/upgrade_text.py), imported only when one is rendered.
_UPGRADE = {
    "DowngradePlan": "downgrade_plan",
    "DowngradeResult": "downgrade_result",
    "DoctorReport": "doctor",
    "ArchiveResult": "archive",
    "RestorePlan": "restore_plan",
    "RestoreResult": "restore_result",
}


def render(result: Any, fmt: str, verbose: bool, width: int | None = None) -> str:
    """RESULT for people; tables no wider than WIDTH columns (None: as wide as their values, --wide)."""
    tables.WIDTH[0] = width
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
    }
    if kind in _UPGRADE:
        from . import upgrade_text  # only an upgrade-day result needs those renderers

        renderers[kind] = getattr(upgrade_text, _UPGRADE[kind])
    if kind not in renderers:
        raise TypeError(f"no text rendering for {kind}")
    text: str = renderers[kind](result, fmt)
    return text


def _current(result: Current, fmt: str) -> str:
    return f"{where(result.target)}\ncurrent version: {result.current_version or 'none'}"


def _state(m: MigrationRow) -> str:
    return f"{m.state} (changed)" if m.drift is not None and m.drift.changed else m.state


def _migrations(report: SetReport, fmt: str, verbose: bool) -> str:
    if not report.migrations:
        return "(no migrations in the folder or the database)"
    if verbose:
        rows = [[m.name, _state(m), m.batch, m.migration_time] for m in report.migrations]
        return table(rows, ["migration", "state", "batch", "migration_time"], fmt)
    return table([[m.name, _state(m)] for m in report.migrations], ["migration", "state"], fmt)


def changed_lines(prefix: str, report: SetReport) -> list[str]:
    """One line per recorded migration whose installed file is not the content that was applied."""
    return [
        f"{prefix}changed: {m.name}: the installed file (sha256 {m.drift.file_sha256[:12]}) is not the one "
        f"applied (sha256 {m.drift.applied_sha256[:12]}, from {APPLIED_FROM_SAID[m.drift.applied_sha256_from]}): "
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
    if result.dry_run:  # a real run showed them with its plan, before it ran: advice for then, not after
        lines.extend(f"warning: {warning}" for warning in result.warnings)
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
