"""What the install is configured to use, read without connecting to any database: `knexwrap config`
(where each plugin's connection comes from and where it points) and `knexwrap plugins` (the migration sets
of the installed packages and the databases they live in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..config import connection as conn
from ..install import backend, sets
from . import repository
from .whole import plan, sharing


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
    role: str | None = None  # pg: the role the backend (and knexwrap) switches to with SET ROLE
    skip_migrations: bool = False  # the backend never applies this plugin's migrations at start
    ensure_exists: bool = True  # the backend creates a missing database (schema mode: schema) at start
    knex_config: dict[str, Any] = field(default_factory=dict)  # knexConfig as merged for this plugin
    shares_database_with: tuple[str, ...] = ()  # other plugins configured to this very database (or schema)
    notes: tuple[str, ...] = ()  # defaults used for unset keys, the folder a relative SQLite path used
    missing: str | None = None  # why no connection could be built (the setting that is missing)


@dataclass(frozen=True)
class ConfigReport:
    plugins: tuple[ConfigRow, ...]
    repository: repository.Repository | None = None


def describe(options: conn.Options, *, project_dir: str | None = None, plugin: str | None = None) -> ConfigReport:
    """Where each plugin's connection comes from and where it points: `knexwrap config`."""
    p = plan(options, project_dir, lenient=True)
    shared = sharing(p.databases)
    if plugin is not None and plugin not in p.sets_by_plugin:
        raise errors.PluginNotFound(f"no installed plugin {plugin!r}; found: {', '.join(p.sets_by_plugin) or 'none'}")
    rows = []
    for ident in sorted(p.sets_by_plugin):
        tables = tuple(dict.fromkeys(s.table for s in p.sets_by_plugin[ident]))
        if ident in p.missing and plugin in (None, ident):
            none = (None, None, None, None, None, None)
            rows.append(ConfigRow(ident, "", options.client or "", *none, "not set", tables, missing=p.missing[ident]))
            continue
        c = p.databases[ident]
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
                    migrations_tables=tables,
                    role=c.settings.role,
                    skip_migrations=c.settings.skip_migrations,
                    ensure_exists=c.settings.ensure_exists,
                    knex_config=c.settings.knex_config,
                    shares_database_with=tuple(shared.get(ident, ())),
                    notes=c.notes,
                )
            )
    return ConfigReport(tuple(rows), repository.describe(p.project))


@dataclass(frozen=True)
class SetRow:
    plugin: str  # the plugin id, or "*" for a set that lives in every plugin database
    package: str | None
    version: str | None
    migrations_directory: str
    migrations_table: str
    databases: tuple[str, ...]  # where it lives (a shared set: every plugin database)
    source: str = "table"  # who named its folder and table: "code", "table" or "package.json" (install/sets.py)


@dataclass(frozen=True)
class PluginRow:
    """A backend plugin or module the backend loads, with or without sets of its own."""

    plugin: str | None  # its plugin id (package.json, else its code); None when neither names one
    package: str
    version: str | None
    role: str | None
    folder: str
    sets: int  # how many migration sets it ships


@dataclass(frozen=True)
class SetsReport:
    sets: tuple[SetRow, ...]
    repository: repository.Repository | None = None
    plugins: tuple[PluginRow, ...] = ()
    missing: tuple[str, ...] = ()  # "<plugin>: <the setting its connection lacks>"


def list_sets(options: conn.Options, *, project_dir: str | None = None) -> SetsReport:
    """Every installed migration set and the database(s) it belongs to: `knexwrap plugins`."""
    p = plan(options, project_dir, lenient=True)
    rows = []
    found = sets.discover_all(p.project)
    for one in found:
        owners = list(p.databases) if one.plugin_id == sets.EVERY_PLUGIN else [str(one.plugin_id)]
        where = tuple(p.databases[o].target() for o in owners if o in p.databases)
        rows.append(SetRow(str(one.plugin_id), one.package, one.version, one.directory, one.table, where, one.source))
    shipped = [s.package for s in found]
    loaded = [
        PluginRow(sets.plugin_id_of(x), x.name, x.version, x.role, str(x.folder), shipped.count(x.name))
        for x in backend.load(p.project).plugins
    ]
    missing = tuple(f"{plugin}: {why}" for plugin, why in p.missing.items())
    return SetsReport(tuple(rows), repository.describe(p.project), tuple(loaded), missing)
