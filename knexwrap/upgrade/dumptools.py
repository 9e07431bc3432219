"""How knexwrap talks to each client's own tools: pg_dump/pg_restore/psql and mariadb-dump/mariadb.

The database name never reaches a tool as a bare argument (a name starting with `-` would be read as
an option) nor as a string libpq could parse as a connection string (a name holding `=` or starting
with `postgresql://`): PostgreSQL tools get it in PGDATABASE, which libpq never expands, or in a
quoted `dbname='...'` conninfo where one is required (pg_restore); MariaDB tools get it after `--`
or as the value of `--database=`. The password travels in the environment, never in argv.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import connection as conn
from ..errors import BackupFailed, ToolMissing
from ..knex.process import Run, find, run

MYSQL_DUMPS = ("mariadb-dump", "mysqldump")
MYSQL_CLIENTS = ("mariadb", "mysql")


@dataclass(frozen=True)
class Tool:
    path: str
    env: dict[str, str]
    secret: str | None  # masked in what the tool prints


def pg_identifier(name: str) -> str:
    """NAME as a quoted identifier: pg_dump's -n reads it exactly, never case-folded nor as a pattern."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """TEXT as a standard SQL string literal (standard_conforming_strings, on since PostgreSQL 9.1)."""
    return "'" + text.replace("'", "''") + "'"


def conninfo_dbname(name: str) -> str:
    """A libpq conninfo naming only the database, quoted: `dbname='a=b'` connects to the database "a=b"."""
    return "dbname='" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _first_found(names: tuple[str, ...], why: str) -> str:
    for name in names:
        if shutil.which(name):
            return find(name, why)
    try:
        return find(names[0], why)
    except ToolMissing as missing:
        raise BackupFailed(missing.message) from missing  # the backup cannot be taken: 15, like any backup failure


def pg_tool(program: str, connection: conn.Connection, why: str) -> Tool:
    """PROGRAM with an environment that points libpq at CONNECTION and nowhere else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # no PGSERVICE, PGOPTIONS of the shell
    env.update(PGHOST=str(connection.host), PGPORT=str(connection.port), PGUSER=str(connection.user))
    env["PGDATABASE"] = connection.database
    if connection.password:
        env["PGPASSWORD"] = connection.password
    return Tool(_first_found((program,), why), env, connection.password)


def mysql_tool(programs: tuple[str, ...], connection: conn.Connection, why: str) -> tuple[Tool, list[str]]:
    """The first of PROGRAMS on PATH, and the options that point it at CONNECTION's server (not its database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
    if connection.password:
        env["MYSQL_PWD"] = connection.password  # read by the client library; never in argv
    # --no-defaults first: a ~/.my.cnf must not send the dump to another server or database.
    argv = ["--no-defaults", f"--host={connection.host}", f"--port={connection.port}", f"--user={connection.user}"]
    return Tool(_first_found(programs, why), env, connection.password), argv


def call(tool: Tool, argv: list[str], cwd: Path, *, stdin: Path | None = None) -> Run:
    """Run a dump, restore or client tool with no time limit: a large database takes as long as it takes."""
    return run(tool.path, argv, cwd=cwd, env=tool.env, timeout=None, secrets=(tool.secret,), stdin=stdin)


def first_line(done: Run) -> str:
    """The first non-empty line a tool wrote on stderr (already masked), or its exit code: for one-line errors."""
    return next((line.strip() for line in done.stderr.splitlines() if line.strip()), f"exit code {done.exit_code}")


def database_size(connection: conn.Connection, cwd: Path) -> int | None:
    """Bytes the database (or, in schema mode, its schema) takes on the server; None when the client tool
    (psql, mariadb) is absent or the query fails: the size is shown, never needed."""
    try:
        if connection.is_sqlite:
            return Path(connection.database).stat().st_size
        if connection.client == "pg":
            return _pg_size(connection, cwd)
        tool, argv = mysql_tool(MYSQL_CLIENTS, connection, "to show the database's size")
        query = "select coalesce(sum(data_length + index_length), 0) from information_schema.tables "
        query += "where table_schema = database()"
        done = call(
            tool, [*argv, f"--database={connection.database}", "--batch", "--skip-column-names", "-e", query], cwd
        )
    except (BackupFailed, OSError):
        return None
    return int(done.stdout.strip()) if done.exit_code == 0 and done.stdout.strip().isdigit() else None


def _pg_size(connection: conn.Connection, cwd: Path) -> int | None:
    tool = pg_tool("psql", connection, "to show the database's size")
    query = "select pg_database_size(current_database())"
    if connection.schema:
        query = (
            "select coalesce(sum(pg_total_relation_size(c.oid)), 0) from pg_class c join pg_namespace n "
            f"on n.oid = c.relnamespace where c.relkind in ('r', 'm') and n.nspname = {sql_literal(connection.schema)}"
        )
    done = call(tool, ["--no-psqlrc", "--no-align", "--tuples-only", "--quiet", f"--command={query}"], cwd)
    return int(done.stdout.strip()) if done.exit_code == 0 and done.stdout.strip().isdigit() else None
