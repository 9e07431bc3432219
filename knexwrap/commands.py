"""One plain function per knexwrap verb, over a Target (project + plugin + connection).

The CLI is a thin layer over these; they return frozen dataclasses and raise KnexwrapError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import connection as conn
from . import errors, parse, plugins
from . import state as st
from .node import Node


@dataclass(frozen=True)
class Target:
    project: Path
    migrations: plugins.MigrationSet
    connection: conn.Connection
    node: Node = field(repr=False)

    def knex_config(self, *, validate: bool = True) -> dict[str, Any]:
        c = self.connection
        timeout_ms = int(max(self.node.timeout - 2, 1) * 1000)
        migrations: dict[str, Any] = {
            "directory": self.migrations.directory,
            "tableName": self.migrations.table,
        }
        if not validate:
            # Lets migrate:list name rows whose files are gone instead of failing as "corrupt".
            migrations["disableMigrationsListValidation"] = True
        return {
            "client": c.client,
            "connection": c.knex_connection(),
            "useNullAsDefault": c.is_sqlite,
            "acquireConnectionTimeout": timeout_ms,
            "migrations": migrations,
        }

    def header(self) -> dict[str, Any]:
        return {
            "plugin": self.migrations.plugin_id,
            "package": self.migrations.package,
            "client": self.connection.client,
            "database": self.connection.target(),
            "migrations_table": self.migrations.table,
            "migrations_directory": self.migrations.directory,
        }


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
        migrations = plugins.MigrationSet(**{**migrations.__dict__, "table": table})
    env = conn.load_environment(project, options.env_file)
    connection = conn.build(options, migrations.plugin_id, env)
    return Target(project, migrations, connection, Node(project, timeout, connection.password))


@dataclass(frozen=True)
class Migration:
    name: str
    state: str  # "applied", "pending" or "missing" (recorded in the database, file absent)


@dataclass(frozen=True)
class Status:
    target: dict[str, Any]
    current_version: str | None
    migrations: tuple[Migration, ...]
    notes: tuple[str, ...] = ()

    def count(self, wanted: str) -> int:
        return sum(1 for m in self.migrations if m.state == wanted)


def _require_sqlite_file(target: Target) -> None:
    # knex would create an empty file and its tables: a typo must not leave a new database behind.
    if target.connection.is_sqlite and not Path(target.connection.database).is_file():
        raise errors.DatabaseMissing(f"SQLite database {target.connection.database} does not exist")


def status(target: Target) -> Status:
    """knex migrate:list, with recorded-but-missing files reported instead of failing as corrupt."""
    _require_sqlite_file(target)
    run = target.node.knex(["migrate:list"], target.knex_config(validate=False))
    listing = parse.parse_list(run.stdout)
    present = set(st.list_files(target.migrations.directory))
    rows = [Migration(n, "applied" if n in present else "missing") for n in listing.completed]
    rows += [Migration(n, "pending") for n in listing.pending]
    return Status(target.header(), st.current_version(listing.completed), tuple(rows), listing.notes)


@dataclass(frozen=True)
class Current:
    target: dict[str, Any]
    current_version: str | None


def current(target: Target) -> Current:
    _require_sqlite_file(target)
    run = target.node.knex(["migrate:currentVersion"], target.knex_config())
    return Current(target.header(), parse.parse_current(run.stdout))


def read_state(target: Target) -> st.SetState:
    """Rows, batches and lock of the plugin's migrations table, without creating anything."""
    if target.connection.is_sqlite and not Path(target.connection.database).is_file():
        return st.SetState(False, (), st.list_files(target.migrations.directory), False)
    entry = {
        "id": "target",
        "config": {k: v for k, v in target.knex_config().items() if k != "migrations"},
        "tables": [target.migrations.table],
        "passwordEnv": "KNEXWRAP_PASSWORD",
    }
    [result] = target.node.read([entry])
    return st.from_reader(result, target.migrations.table, target.migrations.directory)
