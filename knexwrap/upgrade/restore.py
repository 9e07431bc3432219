"""`knexwrap restore BACKUP`: put a backup knexwrap took back into the database it came from.

The manifest beside the backup (backup.py) says where it came from; the file must still hash to what the
manifest recorded. The plan names the backup, its time and the database it replaces; the run first takes a
backup of the database as it is now (unless --no-backup: a restore is a change like any other), then:
- PostgreSQL: `pg_restore --clean --if-exists --single-transaction --exit-on-error`: every object of the
  backup is dropped and recreated in one transaction, so a failed restore changes nothing;
- MySQL/MariaDB: the dump through the `mariadb` (or `mysql`) client: each table is dropped and recreated;
- SQLite: SQLite's backup API copies the backup over the file, page by page, in one transaction.
Objects created after the backup (tables the backup does not have) are left as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import errors
from ..config import connection as conn
from . import backup as backups
from . import dumptools as tools

Hold = Callable[[conn.Connection], AbstractContextManager[Any]]  # knexwrap's change lock on a database
_FIELDS = ("client", "host", "port", "user", "database", "schema")


@dataclass(frozen=True)
class RestorePlan:
    backup: str  # the backup file
    taken_at: str  # UTC, as in its name: 20260130T101500Z
    into: str  # where it goes, as `knexwrap config` prints it (no password)
    bytes: int
    sha256: str
    client: str
    replaces: str  # what the restore replaces, in words
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestoreResult:
    backup: str
    into: str
    restored: bool
    backup_before: str | None  # the backup of the database as it was just before the restore
    dry_run: bool = False


def _manifest(path: Path) -> dict[str, Any]:
    where = backups.manifest_path(path)
    try:
        doc: Any = json.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise errors.ConfigError(f"{path} has no readable knexwrap manifest ({where}): {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise errors.ConfigError(f"the manifest {where} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != backups.KIND or doc.get("format") != backups.FORMAT:
        raise errors.ConfigError(f"{where} is not a format {backups.FORMAT} knexwrap backup manifest")
    if not isinstance(doc.get("database"), str) or doc.get("client") not in ("pg", "mysql2", *conn.SQLITE_CLIENTS):
        raise errors.ConfigError(f"{where}: no database or client knexwrap can restore into")
    return doc


def _checked_file(path: Path, doc: Mapping[str, Any]) -> str:
    """The backup's sha256, refused unless it is what was written: a changed backup is not restored."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise errors.ConfigError(f"cannot read the backup {path}: {exc.strerror or exc}") from exc
    if digest != doc.get("sha256"):
        raise errors.ConfigError(f"the backup {path} is not the file knexwrap wrote (sha256 differs): not restored")
    return digest


def connection_of(path: Path, configured: Mapping[str, conn.Connection]) -> tuple[conn.Connection, tuple[str, ...]]:
    """Where BACKUP came from: the configured plugin database the manifest names (which brings its password),
    else the manifest's own fields without a password, said in a note."""
    doc = _manifest(path)
    wanted = tuple(doc.get(k) for k in _FIELDS)
    for connection in configured.values():
        if tuple(getattr(connection, k) for k in _FIELDS) == wanted:
            return connection, ()
    found = conn.Connection(
        client=str(doc["client"]),
        database=str(doc["database"]),
        host=doc.get("host"),
        port=doc.get("port"),
        user=doc.get("user"),
        schema=doc.get("schema"),
        source=f"the manifest of {path}",
    )
    return found, (f"no configured plugin database is {found.target()}: connecting without a password",)


def plan(path: Path, connection: conn.Connection, notes: tuple[str, ...] = ()) -> RestorePlan:
    """What restoring PATH into CONNECTION does; raises ConfigError for a backup that is not knexwrap's own."""
    doc = _manifest(path)
    digest = _checked_file(path, doc)
    tables = doc.get("tables")
    if connection.is_sqlite:
        replaces = f"the whole file {connection.database}"
    elif isinstance(tables, list) and tables:  # a backup of the migrations table only (knexwrap mark)
        replaces = f"the table {', '.join(map(str, tables))} with its rows, dropped and recreated"
    elif connection.schema:
        replaces = f"every object of schema {connection.schema} the backup holds, with its rows"
    else:
        replaces = "every table, view and sequence the backup holds, with its rows"
    if not connection.is_sqlite:
        replaces += " (tables the backup does not have are left as they are)"
    taken = str(doc.get("taken_at"))
    return RestorePlan(
        str(path), taken, connection.target(), path.stat().st_size, digest, connection.client, replaces, notes
    )


def execute(
    restore: RestorePlan,
    connection: conn.Connection,
    project: Path,
    *,
    take_backup: bool = True,
    hold: Hold | None = None,
) -> RestoreResult:
    """Carry RESTORE out: a backup of now first, then the restore, under HOLD (knexwrap's lock, when given).

    Raises BackupFailed when the backup of now fails (nothing restored), ConfigError when the file changed
    since the plan, MigrationFailed when the restore tool fails (PostgreSQL and SQLite: nothing changed)."""
    path = Path(restore.backup)
    if _checked_file(path, _manifest(path)) != restore.sha256:
        raise errors.ConfigError(f"the backup {path} changed since it was shown: not restored")
    result = RestoreResult(restore.backup, restore.into, False, None)
    with (hold or (lambda _: contextlib.nullcontext()))(connection):
        if take_backup:
            result = replace(result, backup_before=str(backups.backup(connection, project)))
        if connection.is_sqlite:
            _sqlite(path, connection)
        elif connection.client == "pg":
            _postgres(path, connection, project)
        else:
            _mysql(path, connection, project)
    return replace(result, restored=True)


def _failed(what: str, connection: conn.Connection, detail: str) -> errors.MigrationFailed:
    return errors.MigrationFailed(f"restoring {what} into {connection.target()} failed: {detail}")


def _postgres(path: Path, connection: conn.Connection, project: Path) -> None:
    tool = tools.pg_tool("pg_restore", connection, "knexwrap restores PostgreSQL backups with it")
    argv = ["--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner", "--no-password"]
    # pg_restore writes a script without --dbname; a quoted conninfo names the database, whatever its name.
    argv += [f"--dbname={tools.conninfo_dbname(connection.database)}", str(path)]
    done = tools.call(tool, argv, project)
    if done.exit_code != 0:
        raise _failed(path.name, connection, f"{tools.first_line(done)} (nothing was changed)")


def _mysql(path: Path, connection: conn.Connection, project: Path) -> None:
    client, argv = tools.mysql_tool(tools.MYSQL_CLIENTS, connection, "knexwrap restores MySQL backups with it")
    done = tools.call(client, [*argv, f"--database={connection.database}", "--batch"], project, stdin=path)
    if done.exit_code != 0:
        raise _failed(path.name, connection, tools.first_line(done))


def _sqlite(path: Path, connection: conn.Connection) -> None:
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        with contextlib.closing(source), contextlib.closing(sqlite3.connect(connection.database)) as into:
            source.backup(into)
    except sqlite3.Error as exc:
        raise _failed(path.name, connection, str(exc)) from exc
