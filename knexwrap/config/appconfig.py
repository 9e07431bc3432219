"""Find a plugin's database in Backstage's own app-config files, the way Backstage finds it.

Pure Python, no Node: it reproduces what ``@backstage/config-loader`` (1.11.x) and the database manager
of ``@backstage/backend-defaults`` (0.19.x) do, so knexwrap connects where the backend connects.

- Files: ``--config`` files, else ``app-config.yaml``, ``app-config.<BACKSTAGE_ENV>.yaml``,
  ``app-config.local.yaml``, ``app-config.<BACKSTAGE_ENV>.local.yaml`` (those present), then the
  ``APP_CONFIG_*`` environment variables. Later sources win; mappings merge deeply; ``null`` removes a key.
- YAML 1.2 core schema (as the ``yaml`` package reads it): ``yes``/``on`` stay strings, ``0123`` is 123,
  no timestamps, no ``<<`` merge keys, duplicate keys are an error.
- Values: ``${VAR}``, ``${VAR:-fallback}``, ``$${...}`` (literal), ``$env``, ``$file``, ``$include``.
  A variable that is not set makes the whole value undefined and drops its key, as in Backstage (a
  trust-auth server needs no password); a driver default that then fills host or port is named in
  ``PluginDatabase.defaults``. Only a whole connection left undefined is a ConfigError naming the variable.
- ``backend.database``: ``client``, ``connection`` (mapping or connection string), ``prefix``,
  ``pluginDivisionMode``/``schemaPrefix`` and ``plugin.<pluginId>.{client,connection}``; beside them
  (``settings``) ``knexConfig``, ``role``, ``skipMigrations``, ``ensureExists``, ``ensureSchemaExists``,
  global and per plugin. A relative SQLite directory is resolved by ``workdir`` (the backend's folder).

Every error is a ConfigError of one line: ``<file>: <key path>: <what is wrong>``. No message ever holds a
password or a connection string.

Modules: ``shared`` (the result types, constants and small helpers), ``loading`` (files, ``APP_CONFIG_*``,
merging), ``yaml12`` (the YAML 1.2 loader), ``transform`` (substitution, ``$file``/``$env``/``$include``),
``reader`` (typed reads of the merged config), ``database`` (``plugin_database``, per client),
``settings`` (knexConfig, role, skipMigrations, ensureExists), ``values`` (connection values, dropped
keys), ``workdir`` (the backend's folder) and ``urls`` (connection strings).
"""

from __future__ import annotations

from .database import plugin_database
from .loading import find_config_files, load
from .shared import (
    DEFAULT_PREFIX,
    KNEX_CLIENTS,
    MEMORY,
    SQLITE_CLIENTS,
    BackendSettings,
    Key,
    LoadedConfig,
    PluginDatabase,
)

__all__ = [
    "DEFAULT_PREFIX",
    "KNEX_CLIENTS",
    "MEMORY",
    "SQLITE_CLIENTS",
    "BackendSettings",
    "Key",
    "LoadedConfig",
    "PluginDatabase",
    "find_config_files",
    "load",
    "plugin_database",
]
