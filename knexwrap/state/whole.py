"""The whole install at a glance: every plugin database x migration set, read in one node process.

Read-only: nothing here creates a database, a table or a lock row. Databases that do not exist yet
and databases that cannot be reached are rows of the report, not failures of the whole report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import errors
from ..config import connection as conn
from ..install import sets
from ..install.plugins import find_project
from ..knex.node import Node
from . import read as st
from . import report
from .plugin import reader_entry


@dataclass(frozen=True)
class Plan:
    """Who to read: each plugin database with the sets that may live in it."""

    project: Path
    databases: dict[str, conn.Connection]  # plugin id -> its database
    sets_by_plugin: dict[str, list[sets.MigrationSet]]
    prefix: str
    flags: str = ""  # the options that chose these databases, to repeat in a printed command


def plan(options: conn.Options, project_dir: str | None, cwd: Path | None = None) -> Plan:
    if options.database:
        raise errors.ConfigError("--database names one database: give a PLUGIN, or leave --database out")
    project = find_project(cwd or Path.cwd(), project_dir)
    found = sets.discover_all(project)
    env = conn.load_environment(project, options.env_file)
    config = conn.load_config(project, options, env)
    shared = sets.shared_sets(found)
    by_plugin: dict[str, list[sets.MigrationSet]] = {}
    for one in sets.plugin_sets(found):
        by_plugin.setdefault(str(one.plugin_id), []).append(one)
    for plugin in by_plugin:
        by_plugin[plugin] += shared
    databases = {plugin: conn.build(options, plugin, env, config, project) for plugin in sorted(by_plugin)}
    return Plan(project, databases, by_plugin, _prefix(options, config), conn.as_flags(options))


def _prefix(options: conn.Options, config: Mapping[str, Any] | None) -> str:
    """The plugin databases' prefix, for orphans: --prefix when given, else app-config's, else the default."""
    if options.prefix is not None:
        return options.prefix
    if config is None:
        return conn.DEFAULT_PREFIX
    backend = config.get("backend")
    database = backend.get("database") if isinstance(backend, Mapping) else None
    prefix = database.get("prefix") if isinstance(database, Mapping) else None
    return prefix if isinstance(prefix, str) and prefix else conn.DEFAULT_PREFIX


def _servers(p: Plan) -> dict[str, conn.Connection]:
    """One connection per database server, to its maintenance database, for listing databases."""
    servers = {(c.client, c.host, c.port, c.user): c for c in p.databases.values() if not c.is_sqlite}
    return {
        f"#server{i}": conn.Connection(
            c.client, "postgres" if c.client == "pg" else "", c.host, c.port, c.user, c.password
        )
        for i, c in enumerate(servers.values())
    }


def _targets(p: Plan, timeout: float) -> list[dict[str, Any]]:
    targets = []
    for plugin, connection in p.databases.items():
        if connection.is_sqlite and not Path(connection.database).is_file():
            continue  # absent: opening it would create it
        tables = list(dict.fromkeys(s.table for s in p.sets_by_plugin[plugin]))
        targets.append(reader_entry(connection, tables, timeout, plugin))
    for ident, server in _servers(p).items():
        targets.append({**reader_entry(server, [], timeout, ident), "listDatabases": True})
    return targets


def _database(
    plugin: str, connection: conn.Connection, p: Plan, result: dict[str, Any] | None, strict: bool
) -> report.DatabaseReport:
    where = connection.target()
    if result is None:
        return report.DatabaseReport(plugin, connection.client, where, "absent", None, ())
    if st.missing_database(result):
        return report.DatabaseReport(plugin, connection.client, where, "absent", None, ())
    if "error" in result:
        failure = st.reader_error(result)
        if strict:  # its own type, so its own exit code: a wrong password is 6, not "unreachable"
            failure.message = f"{where}: {failure.message}"
            raise failure
        return report.DatabaseReport(plugin, connection.client, where, "unreachable", failure.message, ())
    reports = []
    for one in p.sets_by_plugin[plugin]:
        read = st.from_reader(result, one.table, one.directory)
        if read.table_exists or one.plugin_id != sets.EVERY_PLUGIN:
            reports.append(report.set_report(one, read))
    state = report.worst([r.state for r in reports])
    return report.DatabaseReport(plugin, connection.client, where, state, None, tuple(reports))


def _orphans(p: Plan, results: dict[str, dict[str, Any]]) -> tuple[list[report.DatabaseReport], list[str]]:
    """Databases carrying the prefix that no installed plugin claims; notes for servers not listed."""
    known = {c.database for c in p.databases.values()}
    found: set[tuple[str, str]] = set()
    notes = []
    for ident, server in _servers(p).items():
        result = results.get(ident, {})
        if "databases" not in result:
            notes.append(f"could not list the databases of {server.target()}: {result.get('error', {}).get('message')}")
            continue
        names = {n for n in result["databases"] if n.startswith(p.prefix) and n not in known}
        found |= {(server.client, replace_database(server, n)) for n in names}
    for folder in {Path(c.database).parent for c in p.databases.values() if c.is_sqlite}:
        found |= {("better-sqlite3", str(f)) for f in folder.glob("*.sqlite") if str(f) not in known}
    orphans = [report.DatabaseReport(None, client, where, "orphan", None, ()) for client, where in sorted(found)]
    return orphans, notes


def replace_database(server: conn.Connection, name: str) -> str:
    return conn.Connection(server.client, name, server.host, server.port, server.user).target()


def install_status(
    options: conn.Options,
    *,
    project_dir: str | None = None,
    timeout: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> report.InstallReport:
    return read(plan(options, project_dir), timeout, progress)


def read(
    p: Plan, timeout: float, progress: Callable[[str], None] | None = None, *, strict: bool = False
) -> report.InstallReport:
    """Every database of a plan, in one node process: commands that already built the plan reuse it.

    A database that cannot be read is reported "unreachable"; with ``strict`` (a plan needs every one)
    its typed error is raised instead: AuthFailed, Unreachable, HostNotFound, ...
    """
    passwords = {c.password for c in p.databases.values() if c.password}
    if len(passwords) > 1:
        raise errors.ConfigError("plugin databases with different passwords are not supported yet")
    node = Node(p.project, timeout, next(iter(passwords), None))
    targets = _targets(p, timeout)
    results = {r["id"]: r for r in node.read(targets, progress=progress)} if targets else {}
    databases = [_database(plugin, c, p, results.get(plugin), strict) for plugin, c in p.databases.items()]
    orphans, notes = _orphans(p, results)
    return report.InstallReport(tuple(databases + orphans), tuple(notes))


@dataclass(frozen=True)
class ConfigRow:
    plugin: str
    source: str
    client: str
    host: str | None
    port: int | None
    database: str | None
    schema: str | None
    sqlite_file: str | None
    user: str | None
    password: str  # "set" or "not set": the value itself is never shown
    migrations_tables: tuple[str, ...]


@dataclass(frozen=True)
class ConfigReport:
    plugins: tuple[ConfigRow, ...]


def describe(options: conn.Options, *, project_dir: str | None = None, plugin: str | None = None) -> ConfigReport:
    """Where each plugin's connection comes from and where it points: `knexwrap config`."""
    p = plan(options, project_dir)
    if plugin is not None and plugin not in p.databases:
        raise errors.PluginNotFound(f"no installed plugin {plugin!r}; found: {', '.join(p.databases) or 'none'}")
    rows = []
    for ident, c in p.databases.items():
        if plugin in (None, ident):
            rows.append(
                ConfigRow(
                    plugin=ident,
                    source=c.source,
                    client=c.client,
                    host=c.host,
                    port=c.port,
                    database=None if c.is_sqlite else c.database,
                    schema=c.schema,
                    sqlite_file=c.database if c.is_sqlite else None,
                    user=c.user,
                    password="set" if c.password else "not set",
                    migrations_tables=tuple(dict.fromkeys(s.table for s in p.sets_by_plugin[ident])),
                )
            )
    return ConfigReport(tuple(rows))


@dataclass(frozen=True)
class SetRow:
    plugin: str  # the plugin id, or "*" for a set that lives in every plugin database
    package: str | None
    version: str | None
    migrations_directory: str
    migrations_table: str
    databases: tuple[str, ...]  # where it lives (a shared set: every plugin database)


@dataclass(frozen=True)
class SetsReport:
    sets: tuple[SetRow, ...]


def list_sets(options: conn.Options, *, project_dir: str | None = None) -> SetsReport:
    """Every installed migration set and the database(s) it belongs to: `knexwrap plugins`."""
    p = plan(options, project_dir)
    rows = []
    for one in sets.discover_all(p.project):
        owners = list(p.databases) if one.plugin_id == sets.EVERY_PLUGIN else [str(one.plugin_id)]
        where = tuple(p.databases[o].target() for o in owners if o in p.databases)
        rows.append(SetRow(str(one.plugin_id), one.package, one.version, one.directory, one.table, where))
    return SetsReport(tuple(rows))
