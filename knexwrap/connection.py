"""Build the database connection for one plugin from flags, the environment and the .env file.

Nothing here falls back to a default server or database: a missing value is an error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

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


@dataclass(frozen=True)
class Options:
    """What the user said on the command line; None means "not given"."""

    client: str = "pg"
    host: str | None = None
    port: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    prefix: str = DEFAULT_PREFIX
    sqlite_dir: str | None = None
    env_file: str | None = None


@dataclass(frozen=True)
class Connection:
    client: str
    database: str  # the database name, or the SQLite file's path
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False, compare=False)

    @property
    def is_sqlite(self) -> bool:
        return self.client in SQLITE_CLIENTS

    def knex_connection(self) -> dict[str, Any]:
        """The connection object for knex, without the password (it travels separately)."""
        if self.is_sqlite:
            return {"filename": self.database}
        return {"host": self.host, "port": self.port, "user": self.user, "database": self.database}

    def target(self) -> str:
        """Where this points, safe to print: never holds the password."""
        if self.is_sqlite:
            return self.database
        scheme = "postgresql" if self.client == "pg" else "mysql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


def load_environment(project: Path, env_file: str | None) -> dict[str, str]:
    """The real environment over the .env file: a variable set in the shell always wins."""
    path = Path(env_file) if env_file else project / ".env"
    if env_file and not path.is_file():
        raise ConfigError(f"--env-file {env_file}: no such file")
    values: dict[str, str] = {}
    if path.is_file():
        from dotenv import dotenv_values  # imported only when there is a file: start-up time counts

        values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    values.update(os.environ)
    return values


def _required(flag_value: str | None, env: Mapping[str, str], var: str, flag: str) -> str:
    value = flag_value if flag_value is not None else env.get(var)
    if not value:
        raise ConfigError(f"{var} is not set (set it in the environment or .env, or pass {flag})")
    return value


def _port(text: str, source: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{source} must be a port number from 1 to 65535, not {text!r}")
    return int(text)


def build(options: Options, plugin_id: str | None, env: Mapping[str, str]) -> Connection:
    client = CLIENTS.get(options.client)
    if client is None:
        raise ConfigError(f"unknown client {options.client!r}: use one of pg, better-sqlite3, sqlite3")
    if options.database is None and plugin_id is None:
        raise ConfigError("cannot tell which plugin database to use: pass --database")
    database = options.database or f"{options.prefix}{plugin_id}"
    if client in SQLITE_CLIENTS:
        return _sqlite(client, options, plugin_id)
    if client == "mysql2":
        raise ConfigError("the mysql2 client needs an app-config.yaml connection (not supported yet)")
    port_text = options.port if options.port is not None else env.get("POSTGRES_PORT") or "5432"
    source = "--port" if options.port is not None else "POSTGRES_PORT"
    return Connection(
        client=client,
        database=database,
        host=_required(options.host, env, "POSTGRES_HOST", "--host"),
        port=_port(port_text, source),
        user=_required(options.user, env, "POSTGRES_USER", "--user"),
        password=options.password if options.password is not None else env.get("POSTGRES_PASSWORD") or None,
    )


def _sqlite(client: str, options: Options, plugin_id: str | None) -> Connection:
    if options.database and ("/" in options.database or options.database.endswith(".sqlite")):
        return Connection(client=client, database=str(Path(options.database).resolve()))
    if options.sqlite_dir is None:
        raise ConfigError(f"the {client} client needs --sqlite-dir DIR (Backstage's connection.directory)")
    directory = Path(options.sqlite_dir)
    if not directory.is_dir():
        raise ConfigError(f"--sqlite-dir {options.sqlite_dir}: no such directory")
    name = options.database or plugin_id
    return Connection(client=client, database=str((directory / f"{name}.sqlite").resolve()))
