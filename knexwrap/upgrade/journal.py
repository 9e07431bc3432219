"""The journal: one JSON line per change knexwrap made or tried, appended to `<state folder>/journal.jsonl`.

Each record (format 1):

    {"format": 1, "time": "2026-01-30T10:15:00+00:00", "user": "ops", "host": "bastion-1",
     "command": "downgrade", "arguments": {"to": "...", "yes": true},            # as parsed; never a password
     "plan": {...},                                                              # the plan that was shown
     "ran": [{"database": "postgresql://...", "table": "knex_migrations", "name": "2024..._x.js",
              "status": "reverted", "sha256": "<the file knex ran>"}],           # or null: file unreadable
     "backups": ["..."], "outcome": "done" | {"code": ..., "message": ..., "exit_code": ...}}

Appends are single writes to a file opened O_APPEND (0600), so concurrent runs never interleave a line.
`ran` is built from what the run reports; where a run reports per-migration events, pass each as a Ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import errors
from . import statedir

FILE = "journal.jsonl"


@dataclass(frozen=True)
class Ran:
    database: str  # where, as `knexwrap config` prints it
    table: str
    name: str
    status: str  # "applied", "reverted", "failed" (was running when the change stopped), "not run"
    sha256: str | None  # of the migration file as knex loaded it; None when it could not be read


@dataclass
class Entry:
    """What a change fills in while it runs; recorded when it ends, however it ends."""

    command: str
    arguments: dict[str, Any]
    plan: Any
    ran: list[Ran] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    outcome: Any = "done"


def file_sha(directory: str | Path, name: str) -> str | None:
    """sha256 of DIRECTORY/NAME, the file knex ran; None when it cannot be read."""
    try:
        return hashlib.sha256((Path(directory) / name).read_bytes()).hexdigest()
    except OSError:
        return None


def ran_of(database: str, migrations: Any, names: Sequence[str], action: str) -> list[Ran]:
    """What one knex run over MIGRATIONS (a MigrationSet) did to NAMES, for the journal.

    A seam: where the run reports per-migration events, build the Ran records from them instead."""
    status = {"apply": "applied", "revert": "reverted", "unlock": "released"}.get(action, action)
    return [Ran(database, migrations.table, n, status, file_sha(migrations.directory, n)) for n in names]


def of_run(database: str, migrations: Any, action: str, done: Sequence[str], seen: Sequence[Any]) -> list[Ran]:
    """The journal's records of one knex run over MIGRATIONS: each of DONE (what the run, or after a failure the
    re-read database, shows done) with ACTION's status, then the migration that was running if it stopped."""
    return ran_of(database, migrations, done, action) + failed_of(database, migrations, seen)


def failed_of(database: str, migrations: Any, seen: Sequence[Any]) -> list[Ran]:
    """The migration that was running when a change stopped (its "fail" event, or started and never ended),
    as a Ran with status "failed": what doctor looks for when a migration without a transaction may be half
    done. SEEN: the run's MigrationEvents (knex/events.py), in order."""
    last = next((e for e in reversed(seen) if e.kind in ("start", "end", "fail")), None)
    if last is None or last.kind == "end":
        return []
    return [Ran(database, migrations.table, last.name, "failed", file_sha(migrations.directory, last.name))]


def path(project: Path) -> Path:
    """The journal file in the state folder (statedir.py)."""
    return statedir.root(project) / FILE


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field marked {"journal": False} is working state, not what the record is about.
        kept = (f for f in dataclasses.fields(value) if f.metadata.get("journal", True))
        return {f.name: _json(getattr(value, f.name)) for f in kept}
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _record(entry: Entry, now: datetime | None) -> dict[str, Any]:
    import getpass  # here: status reads the journal, only a change writes it
    import socket

    return {
        "format": 1,
        "time": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "command": entry.command,
        "arguments": _json(entry.arguments),
        "plan": _json(entry.plan),
        "ran": _json(entry.ran),
        "backups": list(entry.backups),
        "outcome": _json(entry.outcome),
    }


def _open(project: Path) -> int:
    where = path(project)
    try:
        return os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise errors.ConfigError(f"cannot append to the journal {where}: {exc.strerror or exc}") from exc


def _write(fd: int, record: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())


@contextmanager
def change(project: Path, command: str, arguments: dict[str, Any], plan: Any) -> Iterator[Entry]:
    """Journal one change: the body fills the Entry in; a failure is recorded as the outcome, then raised on.

    The journal is opened before the body runs: one that cannot be written refuses the change before it
    starts (ConfigError), never after it happened."""
    entry = Entry(command, dict(arguments), plan)
    fd = _open(project)
    try:
        yield entry
    except errors.KnexwrapError as failure:
        entry.outcome = {"code": failure.code, "message": failure.message, "exit_code": failure.exit_code}
        raise
    except KeyboardInterrupt:
        entry.outcome = {"code": "interrupted", "message": "interrupted", "exit_code": 130}
        raise
    except Exception as bug:  # still a change that may have happened part way
        entry.outcome = {"code": "internal", "message": type(bug).__name__, "exit_code": 1}
        raise
    finally:
        with contextlib.suppress(OSError):  # a full disk now must not hide what the change did
            _write(fd, _record(entry, None))
        os.close(fd)


def read(project: Path, containing: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every record, oldest first; a damaged line (a crash mid-append on a full disk) is skipped. With
    CONTAINING, only the lines that hold one of those texts (as JSON writes them) are parsed: status is quick."""
    try:
        lines = path(project).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise errors.ConfigError(f"cannot read the journal {path(project)}: {exc.strerror or exc}") from exc
    records = []
    wanted = [json.dumps(text, ensure_ascii=False)[1:-1] for text in containing]
    for line in (line for line in lines if not wanted or any(w in line for w in wanted)):
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def applied_hashes(project: Path, table: str, names: Sequence[str]) -> dict[str, str]:
    """For each of NAMES, the sha256 of the file the newest journal record says was applied in TABLE."""
    found: dict[str, str] = {}
    wanted = set(names)
    for record in reversed(read(project)):
        for ran in record.get("ran") or []:
            if not isinstance(ran, dict) or ran.get("table") != table or ran.get("status") != "applied":
                continue
            name, sha = ran.get("name"), ran.get("sha256")
            if name in wanted and name not in found and isinstance(sha, str):
                found[name] = sha
    return found
