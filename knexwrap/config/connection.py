"""Build the database connection for one plugin from flags, the environment and the .env file.

Nothing here falls back to a default server or database: a missing value is an error naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SettingMissing, UnsafePluginId
from .shared import BackendSettings

CLIENTS = {
    "pg": "pg",
    "postgres": "pg",
    "postgresql": "pg",
    "better-sqlite3": "better-sqlite3",
    "sqlite": "better-sqlite3",
    "sqlite3": "sqlite3",
    "mysql2": "mysql2",
    "mysql": "mysql2",
}
SQLITE_CLIENTS = ("better-sqlite3", "sqlite3")
DEFAULT_PREFIX = "backstage_plugin_"
# What a plugin id may hold: it names files (<id>.sqlite), databases and schemas, and goes into printed
# commands. Real ids are words joined by - _ : (catalog, tech-insights, 3scale); no path separator, no
# "..", no space or shell character, whatever a package.json says.
_PLUGIN_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_:-]|\.(?!\.))*")


@dataclass(frozen=True)
class Options:
    """What the user said on the command line; None means "not given"."""

    client: str | None = None  # None: app-config's client, else pg
    host: str | None = None
    port: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    prefix: str | None = None  # None: app-config's prefix, else backstage_plugin_
    sqlite_dir: str | None = None
    env_file: str | None = None
    config_files: tuple[str, ...] = ()  # --config; none: app-config.yaml (+ .local) when present
    backend_cwd: str | None = None  # --backend-cwd: the folder the backend runs in (relative SQLite paths)


@dataclass(frozen=True)
class Connection:
    client: str
    database: str  # the database name, or the SQLite file's path
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False, compare=False)
    schema: str | None = None  # pg pluginDivisionMode schema: knex's search path
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # ssl and other knex keys
    source: str = "command line"  # where the connection came from, for `knexwrap config`
    # The backend's knexConfig, role, skipMigrations, ensureExists of this plugin (app-config; else defaults).
    settings: BackendSettings = field(default_factory=BackendSettings, compare=False)
    notes: tuple[str, ...] = ()  # defaults knexwrap used and folders it chose, for `knexwrap config`

    @property
    def is_sqlite(self) -> bool:
        return self.client in SQLITE_CLIENTS

    def knex_connection(self) -> dict[str, Any]:
        """The connection object for knex, without the password (it travels separately)."""
        if self.is_sqlite:
            return {**self.extra, "filename": self.database}
        fields = {"host": self.host, "port": self.port, "user": self.user, "database": self.database}
        return {**self.extra, **fields}

    def knex_config(self, acquire_timeout_ms: int) -> dict[str, Any]:
        """The knex configuration the backend gives this plugin, without migrations and without the password.

        The backend's knexConfig first (base deep-merged with the plugin's), then what knexwrap owns: the
        client, the connection and its own time limit. ``searchPath`` is schema mode's schema merged over
        knexConfig's. A pg role travels as ``knexwrapRole``: knexwrap's knexfile.js and read_state.js run
        ``SET ROLE`` with it on every new connection, as Backstage's createPgDatabaseClient does.
        """
        from .values import _lodash_merge

        # knexConfig.debug only makes knex print its queries, onto the output knexwrap parses: left out.
        config = _lodash_merge({}, {k: v for k, v in self.settings.knex_config.items() if k != "debug"})
        config.update(
            client=self.client,
            connection=self.knex_connection(),
            useNullAsDefault=self.is_sqlite,
            acquireConnectionTimeout=acquire_timeout_ms,
        )
        if self.schema and "searchPath" not in config:
            config["searchPath"] = [self.schema]
        if self.settings.role and self.client == "pg":
            config["knexwrapRole"] = self.settings.role
        return config

    def server(self) -> str | None:
        """The server as scheme://user@host:port (no password; no user@ when none is set); None for SQLite."""
        if self.is_sqlite:
            return None
        scheme = "postgresql" if self.client == "pg" else "mysql"
        user = f"{self.user}@" if self.user is not None else ""
        return f"{scheme}://{user}{self.host}:{self.port}"

    def target(self) -> str:
        """Where this points, safe to print: never holds the password. split_target() takes it apart."""
        server = self.server()
        if server is None:
            return self.database
        where = f"{server}/{self.database}"
        return f"{where} schema {self.schema}" if self.schema else where


def _required(flag_value: str | None, env: Mapping[str, str], var: str, flag: str) -> str:
    value = flag_value if flag_value is not None else env.get(var)
    if not value:
        raise SettingMissing(f"{var} is not set (set it in the environment or .env, or pass {flag})")
    return value


def _port(text: str, source: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{source} must be a port number from 1 to 65535, not {text!r}")
    return int(text)


def build(
    options: Options,
    plugin_id: str | None,
    env: Mapping[str, str],
    config: Mapping[str, Any] | None = None,
    project: Path | None = None,
) -> Connection:
    """Flags first, then app-config, then the bare POSTGRES_* variables (README, precedence).

    Raises UnsafePluginId for a plugin id that could escape the names built from it, ConfigError for
    a missing or bad value.
    """
    if plugin_id is not None:
        check_plugin_id(plugin_id)
    if options.client is not None and options.client not in CLIENTS:
        raise ConfigError(f"unknown client {options.client!r}: use one of pg, better-sqlite3, sqlite3, mysql2")
    if config is not None and project is not None:
        from .appconfig import plugin_database

        if plugin_id is None and options.database is None:
            raise ConfigError("cannot tell which plugin database to use: pass --database")
        # A bare migrations folder has no plugin id: app-config still gives the server and the client.
        found = plugin_database(config, plugin_id, base=project)
        wanted = CLIENTS.get(options.client or "")
        if found is not None and (wanted is None or wanted == CLIENTS.get(found.client)):
            connection = _from_appconfig(found, project, options.backend_cwd)
            return _with_flags(connection, options, plugin_id or "")
        if found is not None:
            # --client names another client than app-config: only the flags (and POSTGRES_*) describe it.
            other = f"app-config's client is {found.client}, not {options.client}"
            return _from_environment(options, plugin_id, env, other)
    return _from_environment(options, plugin_id, env)


def check_plugin_id(plugin_id: str) -> str:
    """``plugin_id`` when it is safe to build file and database names from; else UnsafePluginId."""
    if not _PLUGIN_ID.fullmatch(plugin_id):
        raise UnsafePluginId(
            f"plugin id {plugin_id!r} is not a plugin id knexwrap can use (letters, digits and - _ : . only; "
            "no path): check the backstage.pluginId of the package that declares it"
        )
    return plugin_id


def _from_appconfig(found: Any, project: Path, backend_cwd: str | None) -> Connection:
    client = CLIENTS.get(found.client, found.client)
    notes = tuple(found.defaults)
    if client in SQLITE_CLIENTS:
        from .workdir import sqlite_file

        filename, note = sqlite_file(found.sqlite_path, project, backend_cwd)
        return Connection(
            client=client,
            database=filename,
            extra=dict(found.extra),
            source=found.source,
            settings=found.settings,
            notes=notes + ((note,) if note else ()),
        )
    return Connection(
        client=client,
        database=found.database or "",
        host=found.host,
        port=found.port or (5432 if client == "pg" else 3306),
        user=found.user,
        password=found.password,
        schema=found.schema,
        extra=dict(found.extra),
        source=found.source,
        settings=found.settings,
        notes=notes,
    )


def _with_flags(found: Connection, options: Options, plugin_id: str) -> Connection:
    """Flags given on the command line win over app-config, field by field."""
    if found.is_sqlite:
        if options.database or options.sqlite_dir:
            located = _sqlite(found.client, options, Path(found.database).stem)
            return replace(located, source="command line", settings=found.settings)
        return found
    changes: dict[str, Any] = {}
    if options.prefix is not None and options.database is None and not found.schema:
        changes["database"] = f"{options.prefix}{plugin_id}"
    for name in ("host", "user", "database", "password"):
        if getattr(options, name) is not None:
            changes[name] = getattr(options, name)
    if options.port is not None:
        changes["port"] = _port(options.port, "--port")
    return replace(found, **changes, source=f"{found.source} + command line") if changes else found


def _from_environment(
    options: Options, plugin_id: str | None, env: Mapping[str, str], other_client: str | None = None
) -> Connection:
    client = CLIENTS[options.client or "pg"]
    if options.database is None and plugin_id is None:
        raise ConfigError("cannot tell which plugin database to use: pass --database")
    database = options.database or f"{options.prefix or DEFAULT_PREFIX}{plugin_id}"
    if client in SQLITE_CLIENTS:
        return _sqlite(client, options, plugin_id)
    if client == "mysql2":
        if not options.host or not options.user:
            why = f" ({other_client})" if other_client else ", or an app-config.yaml that names them"
            raise ConfigError(f"the mysql2 client needs --host and --user{why}")
        return Connection(
            client=client,
            database=database,
            host=options.host,
            port=_port(options.port or "3306", "--port"),
            user=options.user,
            password=options.password,
        )
    port_text = options.port if options.port is not None else env.get("POSTGRES_PORT") or "5432"
    source = "--port" if options.port is not None else "POSTGRES_PORT"
    return Connection(
        client=client,
        database=database,
        host=_required(options.host, env, "POSTGRES_HOST", "--host"),
        port=_port(port_text, source),
        user=_required(options.user, env, "POSTGRES_USER", "--user"),
        password=options.password if options.password is not None else env.get("POSTGRES_PASSWORD") or None,
        source="environment (POSTGRES_*)",
    )


def load_config(project: Path, options: Options, env: Mapping[str, str]) -> Mapping[str, Any] | None:
    """Backstage's app-config files of the project, merged; None when there are none."""
    explicit = list(options.config_files)
    default_files = [project / "app-config.yaml", project / "app-config.local.yaml"]
    if not explicit and not any(f.is_file() for f in default_files):
        return None  # keeps PyYAML out of start-up for projects configured by flags and variables
    from .appconfig import find_config_files, load

    files = find_config_files(project, explicit, env=env)
    return load(files, env) if files else None


def _sqlite(client: str, options: Options, plugin_id: str | None) -> Connection:
    if options.database and ("/" in options.database or options.database.endswith(".sqlite")):
        return Connection(client=client, database=str(Path(options.database).resolve()))
    if options.sqlite_dir is None:
        raise ConfigError(f"the {client} client needs --sqlite-dir DIR (Backstage's connection.directory)")
    directory = Path(options.sqlite_dir)
    if not directory.is_dir():
        raise ConfigError(f"--sqlite-dir {options.sqlite_dir}: no such directory")
    name = options.database or plugin_id
    path = directory / f"{name}.sqlite"
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(directory):  # never outside the folder
        raise UnsafePluginId(f"{name}.sqlite would be outside --sqlite-dir {options.sqlite_dir}")
    return Connection(client=client, database=str(path.resolve()))
