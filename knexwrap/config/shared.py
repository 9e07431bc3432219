"""What the app-config modules share: the result types, constants, and small helpers for values and key paths."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PREFIX = "backstage_plugin_"
# The connectors DatabaseManager.fromConfig registers, and the knex client knexwrap uses for each.
# Backstage hands "mysql" to knex as it is (knex then wants the `mysql` package); knexwrap uses mysql2.
KNEX_CLIENTS = {
    "pg": "pg",
    "better-sqlite3": "better-sqlite3",
    "sqlite3": "sqlite3",
    "mysql": "mysql2",
    "mysql2": "mysql2",
}
SQLITE_CLIENTS = ("better-sqlite3", "sqlite3")
MEMORY = ":memory:"

Key = tuple[str, ...]

# @backstage/config: what a key part may look like (also what APP_CONFIG_ names may hold).
_KEY_PART = re.compile(r"^[a-z][a-z0-9]*(?:[-_:][a-z0-9]+)*$", re.IGNORECASE)


class _Missing:
    """JavaScript's ``undefined``: a value that is not there (``None`` is YAML's null)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


@dataclass(frozen=True)
class BackendSettings:
    """One plugin's database settings other than its connection, as the backend applies them."""

    knex_config: dict[str, Any] = field(default_factory=dict)  # knexConfig, base deep-merged with plugin's
    role: str | None = None  # pg: SET ROLE on every new connection (plugin's role, else the base role)
    skip_migrations: bool = False  # the backend never runs this plugin's migrations at start
    ensure_exists: bool = True  # the backend creates the plugin's database when it is missing
    ensure_schema_exists: bool = False  # schema mode: the backend creates the schema (also when ensure_exists)
    schema_mode: bool = False  # pluginDivisionMode schema: the plugin's schema is the backend's to create


@dataclass(frozen=True)
class PluginDatabase:
    """Where one plugin's tables live, as Backstage's database manager would connect."""

    client: str  # knex client: "pg", "better-sqlite3", "sqlite3" or "mysql2"
    host: str | None
    port: int | None
    user: str | None
    password: str | None = field(repr=False)
    database: str | None  # pg/mysql: the database name (prefix + pluginId in database mode)
    schema: str | None  # pg schema mode: schemaPrefix + pluginId (knex searchPath); database is the shared one
    filename: str | None  # SQLite: the plugin's file, absolute
    extra: dict[str, Any]  # other connection keys for knex (ssl, ...), never the password
    source: str  # e.g. "app-config.yaml: backend.database.plugin.catalog"
    role: str | None = None  # pg: the role Backstage switches to (SET ROLE) on every connection
    settings: BackendSettings = field(default_factory=BackendSettings)
    # Defaults that filled a key a missing variable dropped, e.g. "host: ${POSTGRES_HOST} is not set; ..."
    defaults: tuple[str, ...] = ()
    # SQLite: the file as configured (path.join(directory, file)); relative ones depend on the backend's folder
    sqlite_path: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.client in SQLITE_CLIENTS

    def knex_connection(self) -> dict[str, Any]:
        """The knex ``connection`` object, without the password (it travels separately)."""
        if self.is_sqlite:
            return {**self.extra, "filename": self.filename}
        fields = {"host": self.host, "port": self.port, "user": self.user, "database": self.database}
        return {**self.extra, **{k: v for k, v in fields.items() if v is not None}}


class LoadedConfig(dict[str, Any]):
    """The merged configuration, and where its values came from (only used to word messages)."""

    def __init__(
        self,
        data: Mapping[str, Any],
        origins: Mapping[Key, tuple[int, str]] | None = None,
        unset: Mapping[Key, tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(data)
        # Each value's key path -> (source order, file or variable that set it).
        self.origins: dict[Key, tuple[int, str]] = dict(origins or {})
        # Key paths a missing variable left undefined -> (file, "${X} is not set").
        self.unset: dict[Key, tuple[str, str]] = dict(unset or {})


def _lookup(data: Any, path: Key) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _dotted(path: Key) -> str:
    text = ""
    for part in path:
        text += part if part.startswith("[") or not text else f".{part}"
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if value == "" else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _js_string(value: bool | int | float) -> str:
    """String(value) as JavaScript writes it (YAML numbers are JavaScript numbers to Backstage)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return type(exc).__name__
