"""A plugin's missing database or schema, created by a change verb as the backend's ensureExists would.

The backend creates its plugin's database at start (``ensureExists``, default true) and in schema mode
its schema (``ensureSchemaExists`` or ``ensureExists``). knexwrap's read-only commands never create
anything; ``latest`` and ``up`` may, only when app-config lets the backend do it, and their plan says so
before anyone says yes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import errors
from ..config import connection as conn
from ..state.plugin import Target, connection_config


@dataclass(frozen=True)
class Creation:
    """What a change verb creates before applying migrations."""

    kind: str  # "database" or "schema"
    name: str
    where: str  # the server or database it is created in, never with a password
    then_schema: str | None = None  # schema mode: the plugin's schema, created in the new database next

    def __str__(self) -> str:
        then = f', then schema "{self.then_schema}" in it' if self.then_schema else ""
        return f'create {self.kind} "{self.name}" in {self.where}{then} (app-config ensureExists, as the backend does)'


def creation_for(target: Target, missing: errors.DatabaseMissing) -> Creation:
    """The creation that answers ``missing``; re-raises it when the backend would not create it either."""
    c = target.connection
    settings = c.settings
    schema_missing = missing.message.startswith("schema ")
    if c.is_sqlite:
        raise missing
    ensure_schema = settings.ensure_schema_exists or settings.ensure_exists
    if schema_missing and settings.schema_mode and c.schema and ensure_schema:
        return Creation("schema", c.schema, c.target().rsplit(" schema ", 1)[0])
    from_appconfig = "command line" not in c.source and not c.source.startswith("environment")
    if not schema_missing and settings.ensure_exists and from_appconfig and c.database:
        server = conn.Connection(c.client, "", c.host, c.port, c.user).target().rstrip("/")
        if settings.schema_mode and c.schema and ensure_schema:  # the backend creates both, in this order
            return Creation("database", c.database, server, then_schema=c.schema)
        if c.schema is not None and c.schema != "public":
            # knex would fail in the new, empty database ("no schema has been selected to create in") after
            # knexwrap created it: a half-done change. The backend fails the same way; say it up front.
            why = "schema mode (ensureSchemaExists off)" if settings.schema_mode else "knexConfig.searchPath"
            raise errors.DatabaseMissing(
                f'{missing.message}, and {why} puts the tables in schema "{c.schema}", which a new database would '
                "not have: create the database and the schema first"
            )
        return Creation("database", c.database, server)
    raise missing


def create(target: Target, creation: Creation) -> bool:
    """Carry the creation out (True: created; False: someone created it meanwhile)."""
    c = target.connection
    config = connection_config(c, target.node.timeout)
    request: dict[str, object] = {"kind": creation.kind, "name": creation.name, "config": config}
    if creation.then_schema is not None:
        created = create(target, Creation("database", creation.name, creation.where))
        create(target, Creation("schema", creation.then_schema, creation.name))
        return created
    if creation.kind == "database":
        # Like ensurePgDatabaseExists: from the server's maintenance database (MySQL: no database at all).
        connection = {k: v for k, v in config["connection"].items() if k != "database"}
        if c.client == "pg":
            connection["database"] = "postgres"
        server = {k: v for k, v in config.items() if k != "searchPath"}
        request["config"] = {**server, "connection": connection}
    elif c.settings.role:
        request["owner"] = c.settings.role  # ensurePgSchemaExists: AUTHORIZATION <role>
    return target.node.ensure(request)
