"""The database Backstage's database manager gives a plugin: the settings it reads, then each client's connection."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .reader import _Plugin, _Reader
from .settings import backend_settings, search_path
from .shared import (
    _KEY_PART,
    _MISSING,
    DEFAULT_PREFIX,
    KNEX_CLIENTS,
    MEMORY,
    Key,
    PluginDatabase,
    _dotted,
    _kind,
)
from .urls import _parse_pg_url, _UrlError
from .values import _dropped, _lodash_merge, _network_fields, _normalize, _text

_DB: Key = ("backend", "database")
# The id a bare migrations folder is read with: no config key can be it (a key part may not end with "-").
_NO_PLUGIN = "knexwrap-"
_SCHEMA_PREFIX = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Keys of a pg connection that are Backstage's own, never knex's (buildPgDatabaseConfig omits them).
_PG_CONFIG_ONLY = ("type", "instance", "tokenCredential")
# The connection types Backstage's pg connector knows besides "default", and whose credentials they fetch.
_CLOUD_TYPES = {
    "cloudsql": "Google Cloud SQL IAM login",
    "azure": "Azure Entra ID token",
    "rds": "AWS RDS IAM token",
}
_NETWORK_FIELDS = ("host", "port", "user", "password", "database")
# The settings of DatabaseManager.fromConfig that decide the name of a plugin's database or schema.
_NAMING_KEYS = ("prefix", "pluginDivisionMode", "schemaPrefix")


def plugin_database(config: Mapping[str, Any], plugin_id: str | None, *, base: Path) -> PluginDatabase | None:
    """The database Backstage gives ``plugin_id``, or None when the config has no ``backend.database``.

    ``plugin_id`` None (a bare migrations folder): only the base settings apply, and the database name is
    the prefix alone (the caller names the database). ``base`` is the folder relative SQLite paths are
    taken from in ``filename``; ``sqlite_path`` keeps the path as configured.
    """
    reader = _Reader(config)
    db = _DB
    section = reader.get(db)
    if section is _MISSING:
        return None
    if not isinstance(section, Mapping):
        raise reader.error(db, f"must be a mapping, not {_kind(section)}")
    if plugin_id is None:
        plugin_id = _NO_PLUGIN
    elif not _KEY_PART.match(plugin_id):
        raise ConfigError(f"plugin id {plugin_id!r} cannot be a Backstage config key (letters, digits, - _ :)")
    plugin = _settings(reader, plugin_id)
    settings = backend_settings(reader, plugin_id)
    knex_client = KNEX_CLIENTS[plugin.client]
    if knex_client == "pg":
        found = _pg(plugin)
        return replace(found, **search_path(found, replace(settings, schema_mode=plugin.mode == "schema")))
    if plugin.mode != "database":
        why = "is only supported by the pg client" if plugin.mode == "schema" else "is not a plugin division mode"
        raise reader.error((*db, "pluginDivisionMode"), f"{plugin.mode!r} {why}, not {plugin.client}")
    found = _mysql(plugin) if knex_client == "mysql2" else _sqlite(plugin, base)
    # Only the pg connector switches roles; the others carry the setting without using it.
    return replace(found, settings=replace(settings, role=None))


def _settings(reader: _Reader, plugin_id: str) -> _Plugin:
    """What the database manager reads for one plugin, checked in the order Backstage checks it."""
    db = _DB
    # DatabaseManager.fromConfig
    prefix = reader.optional_str((*db, "prefix")) or DEFAULT_PREFIX
    schema_prefix = reader.optional_str((*db, "schemaPrefix")) or ""
    if schema_prefix and not _SCHEMA_PREFIX.match(schema_prefix):
        raise reader.error(
            (*db, "schemaPrefix"),
            f"{schema_prefix!r} must start with a letter or underscore and hold only letters, digits and underscores",
        )
    # DatabaseManagerImpl.getClientType and forPlugin
    plugin_block: Key = (*db, "plugin", plugin_id)
    client, base_client = _client(reader, plugin_block)
    mode = reader.optional_str((*db, "pluginDivisionMode")) or "database"

    base_path: Key = (*db, "connection")
    reader.check_unset(base_path)
    base_raw = reader.get(base_path)
    if base_raw is _MISSING:
        raise reader.error(base_path, "is required and not set")
    plugin_path: Key = (*plugin_block, "connection")
    reader.check_unset(plugin_path)
    plugin_raw = reader.get(plugin_path)

    return _Plugin(
        reader=reader,
        plugin_id=plugin_id,
        client=client,
        overridden=client != base_client,
        mode=mode,
        prefix=prefix,
        schema_prefix=schema_prefix,
        base_raw=base_raw,
        plugin_raw=plugin_raw,
        base_path=base_path,
        plugin_path=plugin_path,
    )


def _client(reader: _Reader, plugin_block: Key) -> tuple[str, str]:
    """The plugin's client as configured (its own, else the base one), and the base client."""
    block = reader.get(plugin_block)
    if block is not _MISSING and not isinstance(block, Mapping):
        raise reader.error(plugin_block, f"must be a mapping, not {_kind(block)}")
    base_client = reader.required_str((*_DB, "client"))
    plugin_client = reader.optional_str((*plugin_block, "client"))
    client = plugin_client or base_client
    client_path = (*plugin_block, "client") if plugin_client else (*_DB, "client")
    if client not in KNEX_CLIENTS:
        raise reader.error(
            client_path, f"unsupported client {client!r}: Backstage accepts pg, better-sqlite3, sqlite3, mysql2, mysql"
        )
    return client, base_client


def _source(plugin: _Plugin, *, base_used: bool) -> str:
    """Where the plugin's settings came from, for ``knexwrap config``: the files and variables, then the key path."""
    reader = plugin.reader
    block = plugin.plugin_path[:-1]
    paths: list[Key] = [(*_DB, "client"), (*block, "client"), plugin.plugin_path]
    # The keys that name the database or schema count too: a local file that only sets the prefix changes
    # where the plugin's tables live as much as one that changes the connection.
    paths += [(*_DB, key) for key in _NAMING_KEYS]
    if base_used:
        paths.append(plugin.base_path)
    block_value = reader.get(block)
    used = isinstance(block_value, Mapping) and ("client" in block_value or "connection" in block_value)
    return f"{reader.files(*paths)}: {_dotted(block if used else block[:2])}"


# ---------------------------------------------------------------------------------------- PostgreSQL


def _pg(plugin: _Plugin) -> PluginDatabase:
    reader = plugin.reader
    final, plugin_conn, dropped = _pg_connection(plugin)
    schema = None
    if plugin.mode == "schema":
        schema = f"{plugin.schema_prefix}{plugin.plugin_id}"
        if len(schema.encode("utf-8")) > 63:
            raise reader.error(
                (*_DB, "schemaPrefix"), f"the schema name {schema!r} is longer than PostgreSQL's 63-byte limit"
            )
    host, port, user, password = _network_fields(plugin, final, plugin_conn)
    database = _text(plugin, final.get("database"), plugin.key_path("database", plugin_conn))
    extra = {k: v for k, v in final.items() if k not in _NETWORK_FIELDS and k not in _PG_CONFIG_ONLY and v is not None}
    return PluginDatabase(
        client="pg",
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        schema=schema,
        filename=None,
        extra=extra,
        source=_source(plugin, base_used=True),
        defaults=dropped,
    )


def _pg_connection(plugin: _Plugin) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]:
    """computePgPluginConfig and buildPgDatabaseConfig: the plugin's connection, and its own part of it."""
    reader = plugin.reader
    base_conn = _normalize(plugin, plugin.base_raw, plugin.base_path, lenient=plugin.overridden)
    plugin_conn = _normalize(plugin, plugin.plugin_raw, plugin.plugin_path)
    schema_mode = plugin.mode == "schema"
    shared = base_conn if schema_mode else {k: v for k, v in base_conn.items() if k != "database"}
    connection = {**({} if plugin.overridden else shared), **plugin_conn}
    database_name = connection.get("database")
    if not schema_mode and database_name is None:
        database_name = f"{plugin.prefix}{plugin.plugin_id}"
    # buildPgDatabaseConfig merges the whole base connection under the plugin's (even when the plugin
    # changed the client), then the database name override.
    final = _lodash_merge(_lodash_merge({}, base_conn), connection)
    if database_name:
        final["database"] = database_name
    dropped = _dropped(plugin, final, base_used=True)
    connection_string = final.pop("connectionString", None)
    if isinstance(connection_string, str):  # pg lets a connectionString's values win over the object's
        try:
            final.update(_parse_pg_url(connection_string))
        except _UrlError as exc:
            path = plugin.key_path("connectionString", plugin_conn)
            raise reader.error(path, f"cannot parse the PostgreSQL connection string: {exc}") from None
    kind = final.get("type")
    if kind not in (None, "default"):
        provider = _CLOUD_TYPES.get(kind) if isinstance(kind, str) else None
        what = f"connection type {kind!r} ({provider})" if provider else f"connection type {kind!r}"
        raise reader.error(
            plugin.key_path("type", plugin_conn),
            f"{what} gets a short-lived password from the cloud provider when the backend connects, which "
            "knexwrap does not do: pass --config with an app-config file whose connection names a database "
            "user and password instead",
        )
    return final, plugin_conn, dropped


# ------------------------------------------------------------------------------------- MySQL, SQLite


def _mysql(plugin: _Plugin) -> PluginDatabase:
    base_used = not plugin.overridden
    base_conn = _normalize(plugin, plugin.base_raw, plugin.base_path) if base_used else {}
    plugin_conn = _normalize(plugin, plugin.plugin_raw, plugin.plugin_path)
    shared = {k: v for k, v in base_conn.items() if k != "database"}
    final = {k: v for k, v in {**shared, **plugin_conn}.items() if v is not None}
    if final.get("database") is None:
        final["database"] = f"{plugin.prefix}{plugin.plugin_id}"
    dropped = _dropped(plugin, final, base_used=base_used)
    host, port, user, password = _network_fields(plugin, final, plugin_conn)
    database = _text(plugin, final.get("database"), plugin.key_path("database", plugin_conn))
    return PluginDatabase(
        client="mysql2",
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        schema=None,
        filename=None,
        extra={k: v for k, v in final.items() if k not in _NETWORK_FIELDS},
        source=_source(plugin, base_used=base_used),
        defaults=dropped,
    )


def _sqlite(plugin: _Plugin, base: Path) -> PluginDatabase:
    base_used = not plugin.overridden
    base_conn = _normalize(plugin, plugin.base_raw, plugin.base_path) if base_used else {}
    plugin_conn = _normalize(plugin, plugin.plugin_raw, plugin.plugin_path)
    if "filename" in base_conn and base_conn["filename"] != MEMORY:
        raise plugin.reader.error(
            plugin.key_path("filename", {}),
            "a file name is not supported for the base SQLite connection: use connection.directory, "
            "or set backend.database.plugin.<pluginId>.connection.filename",
        )
    connection = {**{k: v for k, v in base_conn.items() if k != "database"}, **plugin_conn}
    dropped = _dropped(plugin, connection, base_used=base_used)
    configured = _sqlite_file(plugin, connection, plugin_conn)
    return PluginDatabase(
        client=KNEX_CLIENTS[plugin.client],
        host=None,
        port=None,
        user=None,
        password=None,
        database=None,
        schema=None,
        filename=os.path.normpath(os.path.join(os.path.abspath(base), configured)),
        extra={k: v for k, v in connection.items() if k not in ("filename", "directory") and v is not None},
        source=_source(plugin, base_used=base_used),
        defaults=dropped,
        sqlite_path=configured,
    )


def _sqlite_file(plugin: _Plugin, connection: Mapping[str, Any], plugin_conn: Mapping[str, Any]) -> str:
    """The plugin's SQLite file as configured: ``directory`` joined with ``filename`` or ``<pluginId>.sqlite``.

    Relative when the directory is: the backend takes it from its working folder.
    """
    reader = plugin.reader
    filename = connection.get("filename")
    if filename == MEMORY:
        raise reader.error(
            plugin.key_path("filename", plugin_conn),
            "':memory:' is an in-memory SQLite database that only the Backstage process can open; "
            "set connection.directory to keep the plugin databases in files",
        )
    if filename is not None and not isinstance(filename, str):
        raise reader.error(plugin.key_path("filename", plugin_conn), f"must be a string, not {_kind(filename)}")
    directory = connection.get("directory")
    if directory is None:
        directory = "."
    elif not isinstance(directory, str):
        raise reader.error(plugin.key_path("directory", plugin_conn), f"must be a string, not {_kind(directory)}")
    # path.join(directory, filename): Node joins even an absolute file name onto the directory.
    return re.sub(r"^/+", "/", posixpath.normpath(f"{directory}/{filename or plugin.plugin_id + '.sqlite'}"))
