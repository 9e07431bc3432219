"""A backup of one plugin database before a downgrade changes it: pg_dump, or a copy of the SQLite file.

Backups go to <project>/.knexwrap/backups/ and their paths are printed; restoring is the
operator's call (`pg_restore --clean --dbname ...`, or copying the file back).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

from ..config import connection as conn
from ..errors import BackupFailed, ToolMissing
from ..knex.process import find, run

_MISMATCH = re.compile(r"server version: ([\d.]+); pg_dump version: ([\d.]+)")


def folder(project: Path) -> Path:
    path = project / ".knexwrap" / "backups"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as failed:  # a read-only or full state folder: no backup, so no change
        raise BackupFailed(
            f"cannot create the backups folder {path}: {(failed.strerror or str(failed)).lower()}"
        ) from None
    return path


def _name(connection: conn.Connection) -> str:
    base = Path(connection.database).stem if connection.is_sqlite else connection.database
    suffix = f"-{connection.schema}" if connection.schema else ""
    return f"{base}{suffix}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def _reserve(folder: Path, name: str, suffix: str) -> Path:
    """A new file for the backup, created here: a run within the same second as another (a retry right after
    a failed downgrade) gets `-2`, `-3`, ... and never overwrites the earlier backup."""
    for n in range(1, 1000):
        path = folder / f"{name}{'' if n == 1 else f'-{n}'}{suffix}"
        try:
            path.open("x").close()
        except FileExistsError:
            continue
        except OSError as failed:
            raise BackupFailed(f"cannot create the backup file {path}: {failed.strerror or failed}") from failed
        return path
    raise BackupFailed(f"too many backups named {name} in {folder}")


def check_possible(connection: conn.Connection) -> None:
    """Refuse before anything is asked or changed when this database cannot be backed up."""
    if connection.client == "pg":
        _pg_dump()
    elif not connection.is_sqlite:
        raise BackupFailed(
            f"knexwrap cannot back up {connection.client} databases yet: take a backup of {connection.target()} "
            "yourself, then pass --no-backup"
        )


def _pg_dump() -> str:
    try:
        return find("pg_dump", "knexwrap backs up each PostgreSQL database before a downgrade; or pass --no-backup")
    except ToolMissing as missing:
        raise BackupFailed(missing.message) from missing  # the backup cannot be taken: 15, like any backup failure


def backup(connection: conn.Connection, project: Path, timeout: float) -> Path:
    if connection.is_sqlite:
        return _sqlite(connection, project)
    check_possible(connection)
    return _postgres(connection, project, timeout)


def _sqlite(connection: conn.Connection, project: Path) -> Path:
    dest = _reserve(folder(project), _name(connection), ".sqlite")
    try:
        # The backup API copies a consistent state even while a backend holds the file open.
        with sqlite3.connect(f"file:{connection.database}?mode=ro", uri=True) as source, sqlite3.connect(dest) as copy:
            source.backup(copy)
    except sqlite3.Error as failed:
        dest.unlink(missing_ok=True)
        raise BackupFailed(f"could not back up {connection.database}: {failed}") from failed
    return dest


def _postgres(connection: conn.Connection, project: Path, timeout: float) -> Path:
    pg_dump = _pg_dump()
    dest = _reserve(folder(project), _name(connection), ".dump")
    argv = ["--format=custom", f"--file={dest}", f"--host={connection.host}", f"--port={connection.port}"]
    argv += [f"--username={connection.user}", "--no-password"]
    if connection.schema:
        argv.append(f"--schema={connection.schema}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if connection.password:
        env["PGPASSWORD"] = connection.password  # libpq reads it from the environment, never from argv
    try:
        done = run(
            pg_dump, [*argv, connection.database], cwd=project, env=env, timeout=timeout, secrets=(connection.password,)
        )
    except BaseException:
        dest.unlink(missing_ok=True)  # no empty file that looks like a backup
        raise
    if done.exit_code != 0:
        dest.unlink(missing_ok=True)
        mismatch = _MISMATCH.search(done.stderr)
        if mismatch:
            raise BackupFailed(
                f"pg_dump {mismatch[2]} is older than the server ({mismatch[1]}): install a matching pg_dump, "
                "or take a backup yourself and pass --no-backup"
            )
        first = next((line for line in done.stderr.splitlines() if line.strip()), "no output")
        raise BackupFailed(f"pg_dump of {connection.target()} failed: {first}")
    return dest
