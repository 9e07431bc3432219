"""A scratch copy of one plugin database to run a plan on, so that the live database is never changed.

PostgreSQL and MySQL/MariaDB: a new, uniquely named database on the same server, filled from a
schema-only dump of the live one plus the rows of its migrations table and lock (knex needs them to
know what is applied); dropped when the block ends, also after a failure, Ctrl-C or SIGTERM.
SQLite: a copy of the file (data included) in a temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType

from ..config import connection as conn
from ..errors import KnexwrapError, PreviewUnavailable
from ..knex.process import Run, find, run

SCRATCH_PREFIX = "knexwrap_preview_"


@contextlib.contextmanager
def scratch_copy(connection: conn.Connection, tables: tuple[str, ...], timeout: float) -> Iterator[conn.Connection]:
    """A Connection to a throwaway copy of CONNECTION's database, for the length of the block.

    TABLES are the migrations tables (and their locks) whose rows are copied; names that do not exist
    in the live database must be left out. Raises PreviewUnavailable when the role may not create a
    database or the copy cannot be made (the scratch database is dropped first), ToolMissing without
    pg_dump/psql (mariadb-dump/mariadb), KnexwrapError when the scratch database cannot be dropped.
    """
    with tempfile.TemporaryDirectory(prefix="knexwrap-preview-") as folder, _signals_interrupt():
        if connection.is_sqlite:
            yield _sqlite_copy(connection, Path(folder))
            return
        server = _Server(connection, Path(folder), timeout)
        name = f"{SCRATCH_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        server.create(name)
        try:
            server.copy(name, tables)
            yield replace(connection, database=name)
        finally:
            server.drop(name)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run like Ctrl-C does, so that the scratch database is dropped on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _sqlite_copy(connection: conn.Connection, folder: Path) -> conn.Connection:
    copy = folder / Path(connection.database).name
    if not Path(connection.database).is_file():
        return replace(connection, database=str(copy))  # knex would create it: so it does, in the temp folder
    try:
        # The backup API reads a consistent state even while a backend holds the file open.
        with sqlite3.connect(f"file:{connection.database}?mode=ro", uri=True) as source, sqlite3.connect(copy) as dest:
            source.backup(dest)
    except sqlite3.Error as failed:
        raise PreviewUnavailable(f"could not copy {connection.database} for the preview: {failed}") from failed
    return replace(connection, database=str(copy))


class _Server:
    """The server's own tools (psql/pg_dump, mariadb/mariadb-dump), run through knexwrap's one wrapper."""

    def __init__(self, connection: conn.Connection, folder: Path, timeout: float) -> None:
        self.connection, self.folder, self.timeout = connection, folder, timeout
        self.pg = connection.client == "pg"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL"))}
        if connection.password:
            # The tools read it from the environment, never from argv.
            env["PGPASSWORD" if self.pg else "MYSQL_PWD"] = connection.password
        self.env = env

    def _tool(self, pg_name: str, maria: str, mysql: str) -> str:
        why = "knexwrap copies the database's schema to preview the SQL"
        if self.pg:
            return find(pg_name, why)
        with contextlib.suppress(KnexwrapError):
            return find(maria, why)
        return find(mysql, why)

    def _where(self) -> list[str]:
        c = self.connection
        if self.pg:
            return [f"--host={c.host}", f"--port={c.port}", f"--username={c.user}", "--no-password"]
        return ["--protocol=TCP", f"--host={c.host}", f"--port={c.port}", f"--user={c.user}"]

    def _run(self, executable: str, argv: list[str]) -> Run:
        return run(
            executable, argv, cwd=self.folder, env=self.env, timeout=self.timeout, secrets=(self.connection.password,)
        )

    def sql(self, database: str, statement: str) -> Run:
        if self.pg:
            argv = [*self._where(), "-X", "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={database}", "-c", statement]
            return self._run(self._tool("psql", "", ""), argv)
        argv = [*self._where(), "--batch", "-e", statement, database]
        return self._run(self._tool("", "mariadb", "mysql"), argv)

    def create(self, name: str) -> None:
        quoted = f'"{name}"' if self.pg else f"`{name}`"
        # template0: a clean database, whatever was added to template1 on this server.
        done = self.sql(
            self.connection.database, f"CREATE DATABASE {quoted}" + (" TEMPLATE template0" if self.pg else "")
        )
        if done.exit_code == 0:
            return
        message = _first_line(done.stderr)
        if "permission denied" in message or "Access denied" in message:
            offer = (
                "; --sql=live previews it on the live database in a transaction that is always rolled back"
                if self.pg
                else "; MySQL commits DDL at once, so knexwrap never previews it live"
            )
            raise PreviewUnavailable(
                f"{self.connection.user} may not create the scratch database knexwrap previews the SQL on "
                f"({message}){offer}"
            )
        raise PreviewUnavailable(f"could not create the scratch database {name}: {message}")

    def copy(self, name: str, tables: tuple[str, ...]) -> None:
        schema, rows = self.folder / "schema.sql", self.folder / "rows.sql"
        self._dump(schema, ["--schema-only", "--no-owner", "--no-privileges"] if self.pg else ["--no-data"])
        files = [schema]
        if tables:
            if self.pg:
                prefix = f'"{self.connection.schema}".' if self.connection.schema else ""
                self._dump(rows, ["--data-only", *(f'--table={prefix}"{t}"' for t in tables)])
            else:
                self._dump(rows, ["--no-create-info"], list(tables))
            files.append(rows)
        for file in files:
            self._restore(name, file)

    def _dump(self, dest: Path, options: list[str], tables: list[str] | None = None) -> None:
        c = self.connection
        if self.pg:
            argv = [*self._where(), *options, f"--file={dest}", c.database]
            done = self._run(self._tool("pg_dump", "", ""), argv)
        else:
            argv = [*self._where(), *options, "--single-transaction", "--skip-lock-tables", "--skip-add-locks"]
            argv += [f"--result-file={dest}", c.database, *(tables or [])]
            done = self._run(self._tool("", "mariadb-dump", "mysqldump"), argv)
        if done.exit_code != 0:
            raise PreviewUnavailable(
                f"the schema-only dump of {c.target()} for the preview failed: {_first_line(done.stderr)}"
            )

    def _restore(self, name: str, file: Path) -> None:
        if self.pg:
            argv = [*self._where(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", f"--dbname={name}"]
            done = self._run(self._tool("psql", "", ""), [*argv, f"--file={file}"])
        else:
            done = self.sql(name, f"source {file}")
        if done.exit_code != 0:
            raise PreviewUnavailable(f"could not fill the scratch database {name}: {_first_line(done.stderr)}")

    def drop(self, name: str) -> None:
        """Drop it even with the preview's connection still open (a node killed by Ctrl-C)."""
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' if self.pg else f"DROP DATABASE IF EXISTS `{name}`"
        done = self.sql(self.connection.database, statement)
        if done.exit_code != 0:
            raise KnexwrapError(
                f"could not drop the scratch database {name} on {self.connection.host}: "
                f"{_first_line(done.stderr)}; drop it by hand"
            )


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")
