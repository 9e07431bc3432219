"""The backend's own settings of a plugin's database beside its connection: knexConfig, role,
skipMigrations, ensureExists and ensureSchemaExists, read as the database manager and its connectors
of ``@backstage/backend-defaults`` read them (DatabaseManager.forPlugin, PgConnector, Sqlite3Connector,
MysqlConnector)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from .reader import _Reader
from .shared import _MISSING, BackendSettings, Key, PluginDatabase, _js_string, _kind
from .values import _lodash_merge

_DB: Key = ("backend", "database")
_TRUE = ("y", "yes", "true", "1", "on")
_FALSE = ("n", "no", "false", "0", "off")
# getConfigForPlugin spreads knexConfig first and then sets these itself: knexConfig cannot change them.
_OWNED_BY_BACKSTAGE = ("client", "connection")
# Keys of knexConfig.migrations that would move the migrations table of a plugin that names none (the
# catalog, ...): knexwrap would then read another table than the backend. Refused until followed.
_MOVES_THE_TABLE = ("tableName", "schemaName")


def backend_settings(reader: _Reader, plugin_id: str) -> BackendSettings:
    """The settings of ``plugin_id``; a value of the wrong type is a ConfigError naming its file and key."""
    plugin: Key = (*_DB, "plugin", plugin_id)
    return BackendSettings(
        knex_config=_knex_config(reader, plugin),
        role=reader.optional_str((*plugin, "role")) or reader.optional_str((*_DB, "role")),
        skip_migrations=_flag(reader, (*plugin, "skipMigrations"), (*_DB, "skipMigrations"), default=False),
        ensure_exists=_flag(reader, (*plugin, "ensureExists"), (*_DB, "ensureExists"), default=True),
        # PgConnector reads the plugin's value from the key `plugin.<id>.getEnsureSchemaExistsConfig` (sic),
        # so a plugin's own `ensureSchemaExists` has no effect on the backend: only the base one counts.
        ensure_schema_exists=_flag(
            reader, (*plugin, "getEnsureSchemaExistsConfig"), (*_DB, "ensureSchemaExists"), default=False
        ),
    )


def _flag(reader: _Reader, plugin_path: Key, base_path: Key, *, default: bool) -> bool:
    """getOptionalBoolean(plugin) ?? getOptionalBoolean(base) ?? default."""
    for path in (plugin_path, base_path):
        reader.check_unset(path)
        value = reader.get(path)
        if value is _MISSING:
            continue
        if isinstance(value, bool):
            return value
        # ConfigReader.getOptionalBoolean also takes numbers and words ("yes", "off", "1", ...).
        word = None
        if isinstance(value, str):
            word = value.strip().lower()
        elif isinstance(value, (int, float)):
            word = _js_string(value)
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise reader.error(path, f"must be a boolean, not {_kind(value)}")
    return default


def _knex_config(reader: _Reader, plugin: Key) -> dict[str, Any]:
    """lodash.merge(base knexConfig, plugin knexConfig), without what Backstage sets over it."""
    merged: dict[str, Any] = {}
    for path in ((*_DB, "knexConfig"), (*plugin, "knexConfig")):
        value = reader.get(path)
        if value is _MISSING:
            continue
        if not isinstance(value, Mapping):
            raise reader.error(path, f"must be a mapping, not {_kind(value)}")
        migrations = value.get("migrations")
        for key in _MOVES_THE_TABLE:
            if isinstance(migrations, Mapping) and key in migrations:
                raise reader.error(
                    (*path, "migrations", key),
                    "moves the migrations table of every plugin that names none, which knexwrap does not "
                    "follow yet: remove it, or run knex for this plugin by hand",
                )
        merged = _lodash_merge(merged, value)
    return {k: v for k, v in merged.items() if k not in _OWNED_BY_BACKSTAGE}


def search_path(found: PluginDatabase, settings: BackendSettings) -> dict[str, Any]:
    """Schema mode's ``searchPath: [schema]`` lodash-merged over knexConfig's, as buildPgDatabaseConfig does.

    The first schema of the merged path is where knex keeps the plugin's tables, knex_migrations included.
    """
    knex_config = dict(settings.knex_config)
    if found.schema is not None and "searchPath" in knex_config:
        knex_config = _lodash_merge(knex_config, {"searchPath": [found.schema]})
    path = knex_config.get("searchPath", [found.schema] if found.schema else None)
    if isinstance(path, str):  # knex takes one schema as a string too
        path = [path]
    if path is not None and not (isinstance(path, list) and path and all(isinstance(p, str) and p for p in path)):
        raise ConfigError(f"{found.source}: knexConfig.searchPath must be a schema name or a list of them")
    schema = path[0] if path else None
    if "searchPath" in knex_config:
        knex_config["searchPath"] = path
    return {"schema": schema, "settings": replace(settings, knex_config=knex_config), "role": settings.role}
