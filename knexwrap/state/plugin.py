"""One plain function per knexwrap verb, over a Target (project + plugin + connection).

The CLI is a thin layer over these; they return frozen dataclasses and raise KnexwrapError.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import errors
from ..config import connection as conn
from ..config.environment import load_environment
from ..install import backend, plugins, sets
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
        config = connection_config(self.connection, self.node.timeout)
        # knexConfig.migrations (e.g. disableMigrationsListValidation) applies as in the backend, under the
        # set's own folder and table.
        migrations: dict[str, Any] = {
            **config.get("migrations", {}),
            "directory": self.migrations.directory,
            "tableName": self.migrations.table,
        }
        if not validate:
            # Lets migrate:list name rows whose files are gone instead of failing as "corrupt".
            migrations["disableMigrationsListValidation"] = True
        return {**config, "migrations": migrations}

    def header(self) -> dict[str, Any]:
        return {
            "plugin": self.migrations.plugin_id,
            "package": self.migrations.package,
            "client": self.connection.client,
            "database": self.connection.target(),
            "migrations_table": self.migrations.table,
            "migrations_directory": self.migrations.directory,
            # app-config's skipMigrations: the backend never applies this database's pending migrations.
            "skip_migrations": self.connection.settings.skip_migrations,
            "root": str(self.project),
            "knex_version": knex_version(self.project),
        }


def knex_version(project: Path) -> str | None:
    """The version of the knex the backend loads (install/backend.py), None when none is installed."""
    found = backend.load(project).knex
    return found.version if found else None


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
    env = load_environment(project, options.env_file)
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


def _absent(target: Target) -> Status:
    nothing = st.SetState(False, (), st.list_files(target.migrations.directory), False)
    primary = replace(report.set_report(target.migrations, nothing), state="absent")
    return Status(target.header(), primary)


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
    connection: conn.Connection,
    tables: list[str],
    timeout: float,
    ident: str = "target",
    every_set: bool = False,
    plugin: str | None = None,
) -> dict[str, Any]:
    """One target of read_state.js; `every_set` also lists and reads every table of knex's migrations shape,
    and with PLUGIN Backstage's stored migration sources of that plugin, where its database has them."""
    entry: dict[str, Any] = {
        "id": ident,
        "config": connection_config(connection, timeout),
        "tables": tables,
        "passwordEnv": PASSWORD_ENV,
    }
    if plugin and plugin != sets.EVERY_PLUGIN:
        entry["sourcesTable"] = st.SOURCES_TABLE.format(plugin)
    return {**entry, "migrationTables": True} if every_set else entry


def unclaimed(result: dict[str, Any], claimed: list[MigrationSet], plugin: str | None) -> list[report.SetReport]:
    """The tables of knex's migrations shape in a database that no installed set of it claims: orphan sets."""
    tables = {s.table for s in claimed}
    found = []
    for table in result.get("migrationTables", []):
        if table not in tables:
            orphan = MigrationSet(plugin, None, None, "", table, source="database")
            read = st.from_reader(result, table, "")
            # No folder to compare with: every row is what the database records, none is "missing".
            read = replace(read, files=tuple(sorted(read.applied_names)))
            # A held lock counts wherever it is; an orphan set fails no check otherwise.
            found.append(replace(report.set_report(orphan, read), state="locked" if read.locked else "orphan"))
    return found


def connection_config(connection: conn.Connection, timeout: float) -> dict[str, Any]:
    """The knex configuration of a connection, without the password (Connection.knex_config)."""
    return connection.knex_config(int(max(timeout - 2, 1) * 1000))


def plugin_of(target: Target) -> str | None:
    """The plugin whose database the target is (None for a folder of every plugin's)."""
    plugin = target.migrations.plugin_id
    return None if plugin in (None, sets.EVERY_PLUGIN) else plugin


def status(target: Target) -> Status:
    """Every set of the plugin's database, read without creating anything (knex's list would).

    A database (or schema, or SQLite file) that does not exist yet is the state "absent", every file
    pending: the same answer the whole-install status gives, not an error."""
    if target.connection.is_sqlite and not Path(target.connection.database).is_file():
        return _absent(target)
    others = neighbours(target)
    tables = list(dict.fromkeys([target.migrations.table, *(s.table for s in others)]))
    entry = reader_entry(target.connection, tables, target.node.timeout, every_set=True, plugin=plugin_of(target))
    [result] = target.node.read([entry])
    if st.missing_database(result):
        return _absent(target)
    owners = report.claims(sets.discover_all(target.project))
    clashes = {o.table for o in others if o.table == target.migrations.table}
    primary = report.set_report(
        target.migrations,
        st.from_reader(result, target.migrations.table, target.migrations.directory),
        owners,
        bool(clashes),
    )
    rest = []
    for other in others:
        read = st.from_reader(result, other.table, other.directory)
        if read.table_exists:  # a shared set the plugin never used is not part of its database
            rest.append(report.set_report(other, read, owners, other.table in clashes))
    rest += unclaimed(result, [target.migrations, *others], target.migrations.plugin_id)
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
    return Current(target.header(), parse.parse_current(run.stdout, (target.node.password,)))


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
