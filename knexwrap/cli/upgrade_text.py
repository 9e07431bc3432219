"""Text renderings of the upgrade-day results: downgrade plans and results, restore, doctor, archive."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..state.report import APPLIED_FROM_SAID
from .tables import count, placed, plural, server_line, size_text, table

if TYPE_CHECKING:
    from ..upgrade.archive import ArchiveResult
    from ..upgrade.backup import Space
    from ..upgrade.doctor import DoctorReport
    from ..upgrade.downgrade import DowngradeResult
    from ..upgrade.plan import DowngradePlan
    from ..upgrade.restore import RestorePlan, RestoreResult


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
            f"{APPLIED_FROM_SAID[c.applied_sha256_from]}, installed {c.file_sha256[:12]}): reverting it runs the "
            "installed down()"
            for c in s.changed
            if c.name in s.revert  # a file the plan keeps runs nothing here: differs_in_target covers its future
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


def restore_plan(plan: RestorePlan, fmt: str) -> str:
    lines = [
        f"restore {plan.backup}",
        f"  taken at {plan.taken_at}, {size_text(plan.bytes)}, sha256 {plan.sha256[:12]}... (checked)",
        f"  into {plan.into}",
        f"  replaces {plan.replaces}",
    ]
    return "\n".join(lines + [f"note: {note}" for note in plan.notes])


def restore_result(result: RestoreResult, fmt: str) -> str:
    if result.dry_run or not result.restored:
        return f"would restore {result.backup} into {result.into} (dry run: nothing was changed)"
    lines = [f"restored {result.backup} into {result.into}"]
    if result.backup_before:
        lines.append(f"backup of the database as it was before: {result.backup_before}")
    return "\n".join(lines)


def downgrade_result(result: DowngradeResult, fmt: str) -> str:
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


def doctor(result: DoctorReport, fmt: str) -> str:
    pairs = plural(result.checked, "database x migration set pair")
    if not result.findings:
        return f"no problems found in {pairs}"
    lines = []
    for f in result.findings:
        lines.append(f"{f.problem}: {f.database} {f.table}".rstrip())
        lines.append(f"  {f.message}")
        if f.fix:
            lines.append(f"  fix: {f.fix}")
    lines.append(f"{plural(len(result.findings), 'problem')} in {pairs}")
    return "\n".join(lines)


def archive(result: ArchiveResult, fmt: str) -> str:
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
