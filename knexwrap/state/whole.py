"""The whole install at a glance: every plugin database x migration set, read in one node process.

Read-only: nothing here creates a database, a table or a lock row. Databases that do not exist yet
and databases that cannot be reached are rows of the report, not failures of the whole report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import errors
from ..config import connection as conn
from ..config.environment import as_flags, load_environment
from ..install import sets
from ..install.plugins import find_project
from ..knex.node import Node
from . import read as st
from . import report, repository
from .plugin import reader_entry, unclaimed


@dataclass(frozen=True)
class Plan:
    """Who to read: each plugin database with the sets that may live in it."""

    project: Path
    databases: dict[str, conn.Connection]  # plugin id -> its database
    sets_by_plugin: dict[str, list[sets.MigrationSet]]
    prefix: str
    flags: str = ""  # the options that chose these databases, to repeat in a printed command
    missing: dict[str, str] = field(default_factory=dict)  # plugin id -> the setting its connection lacks


def plan(options: conn.Options, project_dir: str | None, cwd: Path | None = None, lenient: bool = False) -> Plan:
    """Every plugin database of the install with the sets that may live in it.

    `lenient` (plugins, config): a plugin whose connection cannot be built (a setting is missing) is
    kept in `missing` with the reason instead of failing the whole plan."""
    if options.database:
        raise errors.ConfigError("--database names one database: give a PLUGIN, or leave --database out")
    project = find_project(cwd or Path.cwd(), project_dir)
    found = sets.discover_all(project)
    env = load_environment(project, options.env_file)
    config = conn.load_config(project, options, env)
    shared = sets.shared_sets(found)
    by_plugin: dict[str, list[sets.MigrationSet]] = {plugin: [] for plugin in sets.plugin_ids(project)}
    if not by_plugin:
        raise errors.NoPlugins(
            f"no Backstage backend plugin found in {project}: run knexwrap inside the Backstage repository "
            "(after yarn install) or pass --project-dir"
        )
    for one in sets.plugin_sets(found):
        by_plugin.setdefault(str(one.plugin_id), []).append(one)
    for plugin in by_plugin:
        by_plugin[plugin] += shared
    databases, missing = {}, {}
    for plugin in sorted(by_plugin):
        try:
            databases[plugin] = conn.build(options, plugin, env, config, project)
        except errors.SettingMissing as failure:
            if not lenient:
                raise
            missing[plugin] = failure.message
    return Plan(project, databases, by_plugin, _prefix(options, config), as_flags(options), missing)


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
        targets.append(reader_entry(connection, tables, timeout, plugin, every_set=True, plugin=plugin))
    for ident, server in _servers(p).items():
        targets.append({**reader_entry(server, [], timeout, ident), "listDatabases": True})
    return targets


def shared_tables(found: list[sets.MigrationSet]) -> set[str]:
    """Tables that two of these sets (one database's) would both keep their rows in: a conflict."""
    tables = [s.table for s in found]
    return {t for t in tables if tables.count(t) > 1}


def _database(
    plugin: str,
    connection: conn.Connection,
    p: Plan,
    result: dict[str, Any] | None,
    owners: report.Claims,
    strict: bool,
) -> report.DatabaseReport:
    where = connection.target()
    skip = connection.settings.skip_migrations
    if result is None or st.missing_database(result):
        # A plugin that ships no set of its own needs a database only once it uses a core service.
        own = any(s.plugin_id != sets.EVERY_PLUGIN for s in p.sets_by_plugin[plugin])
        return report.DatabaseReport(plugin, connection.client, where, "absent" if own else "unused", None, (), skip)
    if "error" in result:
        failure = st.reader_error(result)
        if strict:  # its own type, so its own exit code: a wrong password is 6, not "unreachable"
            failure.message = f"{where}: {failure.message}"
            raise failure
        return report.DatabaseReport(plugin, connection.client, where, "unreachable", failure.message, (), skip)
    reports = []
    clashes = shared_tables(p.sets_by_plugin[plugin])
    for one in p.sets_by_plugin[plugin]:
        read = st.from_reader(result, one.table, one.directory)
        if read.table_exists or one.plugin_id != sets.EVERY_PLUGIN:
            reports.append(report.set_report(one, read, owners, one.table in clashes))
    reports += unclaimed(result, p.sets_by_plugin[plugin], plugin)
    state = report.worst([r.state for r in reports])
    return report.DatabaseReport(plugin, connection.client, where, state, None, tuple(reports), skip)


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
    owners = report.claims(sets.discover_all(p.project))
    databases = [_database(plugin, c, p, results.get(plugin), owners, strict) for plugin, c in p.databases.items()]
    orphans, notes = _orphans(p, results)
    groups = {p.databases[a].target(): sorted([a, *b]) for a, b in sharing(p.databases).items()}
    notes += [
        f"{', '.join(group)} share the database {where}: one knex_migrations table holds all their migrations"
        for where, group in sorted(groups.items())
    ]
    return report.InstallReport(tuple(databases + orphans), tuple(notes), repository.describe(p.project))


def sharing(databases: Mapping[str, conn.Connection]) -> dict[str, list[str]]:
    """Plugin id -> the other plugins configured to the same database (and schema): one knex_migrations."""
    by_place: dict[str, list[str]] = {}
    for plugin, c in databases.items():
        by_place.setdefault(c.target(), []).append(plugin)
    return {p: [o for o in group if o != p] for group in by_place.values() if len(group) > 1 for p in group}
