"""One plain function per knexwrap verb, over a Target (project + plugin + connection).

The CLI is a thin layer over these; they return frozen dataclasses and raise KnexwrapError.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import errors
from ..config import connection as conn
from ..install import plugins, sets
from ..install.sets import MigrationSet
from ..knex.node import PASSWORD_ENV, Node
from . import read as st
from . import report


@dataclass(frozen=True)
class Target:
    project: Path
    migrations: MigrationSet
    connection: conn.Connection
    node: Node = field(repr=False)

    def knex_config(self, *, validate: bool = True) -> dict[str, Any]:
        migrations: dict[str, Any] = {
            "directory": self.migrations.directory,
            "tableName": self.migrations.table,
        }
        if not validate:
            # Lets migrate:list name rows whose files are gone instead of failing as "corrupt".
            migrations["disableMigrationsListValidation"] = True
        return {**connection_config(self.connection, self.node.timeout), "migrations": migrations}

    def header(self) -> dict[str, Any]:
        return {
            "plugin": self.migrations.plugin_id,
            "package": self.migrations.package,
            "client": self.connection.client,
            "database": self.connection.target(),
            "migrations_table": self.migrations.table,
            "migrations_directory": self.migrations.directory,
        }


def open_target(
    plugin: str,
    options: conn.Options,
    *,
    project_dir: str | None = None,
    table: str | None = None,
    timeout: float = 30.0,
    cwd: Path | None = None,
) -> Target:
    project = plugins.find_project(cwd or Path.cwd(), project_dir)
    migrations = plugins.resolve(project, plugin)
    if table:
        migrations = replace(migrations, table=table)
    env = conn.load_environment(project, options.env_file)
    config = conn.load_config(project, options, env)
    plugin_id = None if migrations.plugin_id == sets.EVERY_PLUGIN else migrations.plugin_id
    connection = conn.build(options, plugin_id, env, config, project)
    return Target(project, migrations, connection, Node(project, timeout, connection.password))


@dataclass(frozen=True)
class Status:
    """One plugin database: the set asked for, and the other sets living in the same database."""

    target: dict[str, Any]
    primary: report.SetReport
    other_sets: tuple[report.SetReport, ...] = ()


def _require_sqlite_file(target: Target) -> None:
    # knex would create an empty file and its tables: a typo must not leave a new database behind.
    if target.connection.is_sqlite and not Path(target.connection.database).is_file():
        raise errors.DatabaseMissing(f"SQLite database {target.connection.database} does not exist")


def neighbours(target: Target) -> list[MigrationSet]:
    """The other sets that live in the target's plugin database (scheduler, keys, modules)."""
    plugin = target.migrations.plugin_id
    if plugin is None or plugin == sets.EVERY_PLUGIN:
        return []
    found = sets.discover_all(target.project)
    return [
        s
        for s in found
        if s.plugin_id in (plugin, sets.EVERY_PLUGIN)
        and (s.table, s.directory) != (target.migrations.table, target.migrations.directory)
    ]


def reader_entry(
    connection: conn.Connection, tables: list[str], timeout: float, ident: str = "target"
) -> dict[str, Any]:
    return {
        "id": ident,
        "config": connection_config(connection, timeout),
        "tables": tables,
        "passwordEnv": PASSWORD_ENV,
    }


def connection_config(connection: conn.Connection, timeout: float) -> dict[str, Any]:
    """The knex configuration of a connection, without migrations and without the password."""
    config: dict[str, Any] = {
        "client": connection.client,
        "connection": connection.knex_connection(),
        "useNullAsDefault": connection.is_sqlite,
        "acquireConnectionTimeout": int(max(timeout - 2, 1) * 1000),
    }
    if connection.schema:
        # Backstage's schema mode: the plugin's tables, knex_migrations included, live in its schema.
        config["searchPath"] = [connection.schema]
    return config


def status(target: Target) -> Status:
    """Every set of the plugin's database, read without creating anything (knex's list would)."""
    _require_sqlite_file(target)
    others = neighbours(target)
    tables = list(dict.fromkeys([target.migrations.table, *(s.table for s in others)]))
    [result] = target.node.read([reader_entry(target.connection, tables, target.node.timeout)])
    primary = report.set_report(
        target.migrations, st.from_reader(result, target.migrations.table, target.migrations.directory)
    )
    rest = []
    for other in others:
        read = st.from_reader(result, other.table, other.directory)
        if read.table_exists:  # a shared set the plugin never used is not part of its database
            rest.append(report.set_report(other, read))
    return Status(target.header(), primary, tuple(rest))


@dataclass(frozen=True)
class Current:
    target: dict[str, Any]
    current_version: str | None


def current(target: Target) -> Current:
    _require_sqlite_file(target)
    if target.connection.schema:
        read_state(target)  # knex would try to create its tables in a schema that may not exist
    from ..knex import parse  # deferred: status, the frequent read, parses no knex output

    run = target.node.knex(["migrate:currentVersion"], target.knex_config())
    return Current(target.header(), parse.parse_current(run.stdout))


def read_state(target: Target) -> st.SetState:
    """Rows, batches and lock of the plugin's migrations table, without creating anything."""
    if target.connection.is_sqlite and not Path(target.connection.database).is_file():
        folder = Path(target.connection.database).parent
        if not folder.is_dir():
            # knex would create the file but not its folder (Backstage creates it when the backend starts).
            raise errors.DatabaseMissing(f"SQLite folder {folder} does not exist: create it first")
        return st.SetState(False, (), st.list_files(target.migrations.directory), False)
    [result] = target.node.read([reader_entry(target.connection, [target.migrations.table], target.node.timeout)])
    return st.from_reader(result, target.migrations.table, target.migrations.directory)
