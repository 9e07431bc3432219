"""The whole-install report opens a bounded number of connections at once, however many databases there are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from backstage import make_project
from helpers import knexwrap
from servers import PgServer, psql_rows, unique_name

DATABASES = 20
# The reader reads 8 targets at a time (read_state.js, CONCURRENCY); the role allows a few more,
# for backends the server has not yet reaped when the next connection arrives.
ROLE_LIMIT = 12


def plugin_package(modules: Path, n: int) -> None:
    folder = modules / "@kwtest" / f"plugin-p{n}-backend"
    (folder / "migrations").mkdir(parents=True)
    meta = {"name": f"@kwtest/plugin-p{n}-backend", "version": "1.0.0", "backstage": {"pluginId": f"p{n}"}}
    (folder / "package.json").write_text(json.dumps(meta))
    (folder / "migrations" / "20240101000000_init.js").write_text(
        "exports.up = async k => k.schema.createTable('t', t => t.increments());\n"
        "exports.down = async k => k.schema.dropTable('t');\n"
    )


@pytest.fixture
def many(pg: PgServer, pg_database: str, tmp_path: Path) -> Iterator[Path]:
    """A project of DATABASES plugins in Backstage's schema mode, all in PG_DATABASE (their schemas not
    created yet), connecting as a role allowed ROLE_LIMIT connections."""
    project = make_project(tmp_path / "project", {})
    for n in range(DATABASES):
        plugin_package(project / "node_modules", n)
    role = unique_name("kw_role")
    (project / "app-config.yaml").write_text(
        "backend:\n  database:\n    client: pg\n    pluginDivisionMode: schema\n    connection:\n"
        f"      host: {pg.host}\n      port: {pg.port}\n      user: {role}\n      database: {pg_database}\n"
    )
    psql_rows(pg, "postgres", f"create role {role} login connection limit {ROLE_LIMIT}")
    try:
        yield project
    finally:
        psql_rows(pg, "postgres", f"drop role if exists {role}")


def test_every_database_is_read_within_the_connection_limit(many: Path) -> None:
    result = knexwrap("status", "--json", cwd=many)
    assert result.code == 0, result.err
    states = {d["plugin"]: (d["state"], d["error"]) for d in result.json()["databases"]}
    # All at once, 21 connections (20 plugins and the server's list) would pass the role's limit:
    # "unreachable", too many connections for role.
    assert states == {f"p{n}": ("absent", None) for n in range(DATABASES)}
    assert result.json()["notes"] == []
