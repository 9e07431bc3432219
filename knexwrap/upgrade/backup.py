"""A verified backup of one plugin database before anything reverts it (down, rollback, downgrade, restore).

PostgreSQL with pg_dump (only the plugin's schema in schema mode), MySQL/MariaDB with mariadb-dump or
mysqldump, SQLite with a consistent copy through SQLite's backup API. Backups go to the state folder's
`backups/` (0600 files), each with a manifest `<file>.json` saying what it came from, which
`knexwrap restore` reads:

    {"kind": "knexwrap-backup", "format": 1, "taken_at": "2026-...Z", "file": "<name>.dump",
     "client": "pg", "host": ..., "port": ..., "user": ..., "database": "<name as the server knows it>",
     "schema": null, "format_of_file": "pg_dump custom" | "sql" | "sqlite", "bytes": 1234, "sha256": "..."}

A backup counts only once verified, before the first change: non-empty, and read back by
`pg_restore --list` (its dbname and, in schema mode, its schema being the ones asked for), by the
dump's own `-- Dump completed` marker, or by SQLite's integrity check.

`knexwrap mark` backs up one table only (`Table`: the migrations table): `pg_dump --table`, `mariadb-dump
<database> <table>`, the manifest naming it in `tables`; `restore` drops and recreates just that table.
SQLite keeps the whole-file copy: restore puts files back whole.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import connection as conn
from ..errors import BackupFailed
from . import dumptools as tools
from . import statedir

KIND, FORMAT = "knexwrap-backup", 1
_MISMATCH = re.compile(r"server version: ([\d.]+); pg_dump version: ([\d.]+)")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_WHY = "knexwrap backs up each {what} database before it reverts anything; or pass --no-backup"


@dataclass(frozen=True)
class Table:
    """One table to back up instead of the whole database: its name, and its schema on PostgreSQL."""

    name: str
    schema: str | None = None  # where PostgreSQL finds it (the session's current_schema()); None elsewhere


@dataclass(frozen=True)
class Space:
    database: str  # where the connection points, safe to print
    size_bytes: int | None  # what the database (or schema) takes on the server; None: unknown
    folder: str  # where the backup goes
    free_bytes: int  # free space there


def folder(project: Path) -> Path:
    """The state folder's `backups/` (0700), created when absent; ConfigError when the state folder is refused."""
    return statedir.sub(project, "backups")


def file_name(connection: conn.Connection) -> str:
    """A plain file name for the backup: never a path, never hidden, never read as an option."""
    base = Path(connection.database).stem if connection.is_sqlite else connection.database
    suffix = f"-{connection.schema}" if connection.schema else ""
    return _UNSAFE.sub("_", f"{base}{suffix}").lstrip(".-") or "database"


def _reserve(where: Path, name: str, suffix: str) -> Path:
    """A new file for the backup, created here: a run within the same second as another (a retry right after
    a failed downgrade) gets `-2`, `-3`, ... and never overwrites the earlier backup."""
    for n in range(1, 1000):
        path = where / f"{name}{'' if n == 1 else f'-{n}'}{suffix}"
        try:
            statedir.create_private(path)
        except FileExistsError:
            continue
        except OSError as failed:
            raise BackupFailed(f"cannot create the backup file {path}: {failed.strerror or failed}") from failed
        return path
    raise BackupFailed(f"too many backups named {name} in {where}")


def check_possible(connection: conn.Connection) -> None:
    """Refuse before anything is asked or changed when this database cannot be backed up (no dump tool)."""
    if connection.client == "pg":
        tools.pg_tool("pg_dump", connection, _WHY.format(what="PostgreSQL"))
        tools.pg_tool("pg_restore", connection, "knexwrap reads each backup back before it changes anything")
    elif not connection.is_sqlite:
        tools.mysql_tool(tools.MYSQL_DUMPS, connection, _WHY.format(what="MySQL/MariaDB"))


def space(connection: conn.Connection, project: Path) -> Space:
    """The database's size and the free space where its backup goes: shown in the plan before a revert."""
    import shutil

    where = folder(project)
    return Space(
        connection.target(), tools.database_size(connection, project), str(where), shutil.disk_usage(where).free
    )


def backup(connection: conn.Connection, project: Path, table: Table | None = None) -> Path:
    """Back CONNECTION's database (or only TABLE of it; SQLite: always the whole file) up into the state
    folder and verify it; its path (the manifest beside it).

    No time limit: a dump takes as long as the database needs. Raises BackupFailed, leaving no file that
    looks like a backup, when the tool is missing, fails, or writes something that does not read back."""
    check_possible(connection)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    suffix, kind = {"pg": (".dump", "pg_dump custom"), "mysql2": (".sql", "sql")}.get(
        connection.client, (".sqlite", "sqlite")
    )
    table = None if connection.is_sqlite else table
    name = file_name(connection) + (_UNSAFE.sub("_", f"-{table.name}") if table else "")
    dest = _reserve(folder(project), f"{name}-{stamp}", suffix)
    try:
        if connection.is_sqlite:
            _sqlite(connection, dest)
        elif connection.client == "pg":
            _postgres(connection, project, dest, table)
        else:
            _mysql(connection, project, dest, table)
        _write_manifest(connection, dest, kind, stamp, table)
    except BaseException:
        dest.unlink(missing_ok=True)  # no file that looks like a backup
        raise
    return dest


def _sqlite(connection: conn.Connection, dest: Path) -> None:
    try:
        # The backup API copies a consistent state even while a backend holds the file open.
        source = sqlite3.connect(f"file:{connection.database}?mode=ro", uri=True)
        with closing(source), closing(sqlite3.connect(dest)) as copy:
            source.backup(copy)
            checked = copy.execute("pragma integrity_check").fetchall()
    except sqlite3.Error as failed:
        raise BackupFailed(f"could not back up {connection.database}: {failed}") from failed
    if checked != [("ok",)] or dest.stat().st_size == 0:
        raise BackupFailed(f"the copy of {connection.database} does not read back: {checked[:1]}")


def _postgres(connection: conn.Connection, project: Path, dest: Path, table: Table | None) -> None:
    pg_dump = tools.pg_tool("pg_dump", connection, _WHY.format(what="PostgreSQL"))
    argv = ["--format=custom", f"--file={dest}", "--no-password"]
    if table is not None:  # quoted: matched exactly, never as a pattern; its owned id sequence comes with it
        pattern = f"{tools.pg_identifier(table.schema or 'public')}.{tools.pg_identifier(table.name)}"
        argv += ["--strict-names", f"--table={pattern}"]
    elif connection.schema:
        argv += ["--strict-names", f"--schema={tools.pg_identifier(connection.schema)}"]
    done = tools.call(pg_dump, argv, project)  # the database comes from PGDATABASE: never an argument
    if done.exit_code != 0:
        mismatch = _MISMATCH.search(done.stderr)
        if mismatch:
            raise BackupFailed(
                f"pg_dump {mismatch[2]} is older than the server ({mismatch[1]}): install a matching pg_dump, "
                "or take a backup yourself and pass --no-backup"
            )
        raise BackupFailed(f"pg_dump of {connection.target()} failed: {tools.first_line(done)}")
    _verify_pg(connection, project, dest, table)


def _verify_pg(connection: conn.Connection, project: Path, dest: Path, table: Table | None = None) -> None:
    where = connection.target()
    if dest.stat().st_size == 0:
        raise BackupFailed(f"pg_dump of {where} exited 0 but wrote nothing to {dest}: no backup, nothing changed")
    listing = tools.call(
        tools.pg_tool("pg_restore", connection, "to read the backup back"), ["--list", str(dest)], project
    )
    if listing.exit_code != 0:
        raise BackupFailed(f"the backup of {where} does not read back ({tools.first_line(listing)}): nothing changed")
    dbname = re.search(r"^;\s+dbname: (.*)$", listing.stdout, re.MULTILINE)
    if dbname is None or dbname[1] != connection.database:
        got = dbname[1] if dbname else "none"
        raise BackupFailed(f"the backup of {where} holds the database {got!r}, not {connection.database!r}")
    if table is not None:
        if f" TABLE DATA {table.schema or 'public'} {table.name} " not in listing.stdout:
            raise BackupFailed(f"the backup of {where} does not hold the rows of {table.name!r}")
    elif connection.schema and f" SCHEMA - {connection.schema} " not in listing.stdout:
        raise BackupFailed(f"the backup of {where} does not hold the schema {connection.schema!r}")


def _mysql(connection: conn.Connection, project: Path, dest: Path, table: Table | None) -> None:
    dump, argv = tools.mysql_tool(tools.MYSQL_DUMPS, connection, _WHY.format(what="MySQL/MariaDB"))
    argv += ["--single-transaction", "--hex-blob", f"--result-file={dest}"]
    argv += ["--routines", "--triggers"] if table is None else []
    tables = [table.name] if table is not None else []
    done = tools.call(dump, [*argv, "--", connection.database, *tables], project)  # after --: never an option
    if done.exit_code != 0:
        raise BackupFailed(f"{Path(dump.path).name} of {connection.target()} failed: {tools.first_line(done)}")
    with dest.open("rb") as dumped:
        head = dumped.read(4096).decode("utf-8", "replace")
        dumped.seek(max(0, dest.stat().st_size - 200))
        tail = dumped.read().decode("utf-8", "replace")
    if "-- Dump completed" not in tail:
        raise BackupFailed(f"the dump of {connection.target()} in {dest} is incomplete (no '-- Dump completed')")
    named = re.search(r"^-- Host: .*\bDatabase: (.*)$", head, re.MULTILINE)
    if named is None or named[1] != connection.database:
        raise BackupFailed(f"the dump in {dest} is not of the database {connection.database!r}")
    if table is not None and f"CREATE TABLE `{table.name}`" not in dest.read_text("utf-8", "replace"):
        raise BackupFailed(f"the dump in {dest} does not hold the table {table.name!r}")


def _write_manifest(connection: conn.Connection, dest: Path, kind: str, stamp: str, table: Table | None) -> None:
    data = dest.read_bytes()
    manifest: dict[str, Any] = {
        "kind": KIND,
        "format": FORMAT,
        "taken_at": stamp,
        "file": dest.name,
        "client": connection.client,
        "host": connection.host,
        "port": connection.port,
        "user": connection.user,
        "database": connection.database,
        "schema": connection.schema,
        "format_of_file": kind,
        "tables": [table.name] if table is not None else None,  # None: the whole database
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    statedir.write_private(manifest_path(dest), (json.dumps(manifest, indent=2) + "\n").encode())


def manifest_path(backup_file: Path) -> Path:
    """Where the manifest of BACKUP_FILE lives: beside it, `<file>.json`."""
    return backup_file.with_name(backup_file.name + ".json")
