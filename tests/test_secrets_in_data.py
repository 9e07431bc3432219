"""A password that is also a word of the data never rewrites the data, and never shows in error text.

Real scaffolder migrations (`20210409225200_secrets.js`), the real knex CLI and a PostgreSQL cluster
that checks passwords: each password below is the password of a role of its own. Public Backstage
set-ups use `backstage`; `secret` is part of a scaffolder file name; `knex`, `true` and `2024` are words
of knex's output, of the reader's JSON and of migration names; `a` is a one-character password.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from backstage import SCAFFOLDER, make_project
from helpers import Result, knexwrap, write_migration
from servers import PgServer, psql_rows, unique_name

from knexwrap.install import sets

PASSWORDS = ("backstage", "secret", "knex", "true", "2024", "a")
SCAFFOLDER_FILES = [
    "20210120143715_init.js",
    "20210409225200_secrets.js",
    "20220129100000_created_by.js",
    "20240203232000_state.js",
    "20240401213200_workspace.js",
]


@dataclass(frozen=True)
class Login:
    server: PgServer
    role: str
    password: str
    prefix: str

    @property
    def env(self) -> dict[str, str | None]:
        return {
            "POSTGRES_HOST": self.server.host,
            "POSTGRES_PORT": str(self.server.port),
            "POSTGRES_USER": self.role,
            "POSTGRES_PASSWORD": self.password,
        }

    @property
    def database(self) -> str:
        return f"{self.prefix}scaffolder"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("secrets") / "backstage", {SCAFFOLDER: "4.3.0"})


def _login(server: PgServer, password: str) -> Iterator[Login]:
    """A role logging in with `password`, owning a fresh scaffolder database; both dropped afterwards."""
    # Backstage's own prefix, made unique: `backstage` is then part of every database name too.
    role, prefix = unique_name("kw_role"), f"backstage_plugin_{unique_name('kw')}_"
    literal = password.replace("'", "''")
    psql_rows(server, "postgres", f"create role {role} login password '{literal}'")
    for database in (f"{prefix}scaffolder", f"{prefix}orphan"):
        psql_rows(server, "postgres", f"create database {database} owner {role}")
    try:
        yield Login(server, role, password, prefix)
    finally:
        for database in (f"{prefix}scaffolder", f"{prefix}orphan"):
            psql_rows(server, "postgres", f"drop database if exists {database} with (force)")
        psql_rows(server, "postgres", f"drop role if exists {role}")


@pytest.fixture(params=PASSWORDS)
def login(request: pytest.FixtureRequest, scram_pg: PgServer) -> Iterator[Login]:
    yield from _login(scram_pg, request.param)


def run(login: Login, project: Path, *args: str) -> Result:
    sets.discover_all.cache_clear()
    result = knexwrap(*args, "--prefix", login.prefix, cwd=project, env=login.env)
    assert "internal error" not in result.err and "Traceback" not in result.err, result.err
    return result


def test_names_and_tables_are_never_rewritten(login: Login, project: Path) -> None:
    latest = run(login, project, "latest", "scaffolder", "--yes", "--json")
    assert latest.code == 0, latest.err
    assert latest.json()["done"] == SCAFFOLDER_FILES
    assert [r[0] for r in psql_rows(login.server, login.database, "select name from knex_migrations order by id")] == (
        SCAFFOLDER_FILES
    )

    status = run(login, project, "status", "scaffolder", "--json")
    assert status.code == 0, status.err
    doc = status.json()
    assert doc["migrations_table"] == "knex_migrations"
    assert [(m["name"], m["state"]) for m in doc["migrations"]] == [(n, "applied") for n in SCAFFOLDER_FILES]

    whole = run(login, project, "status", "--json")
    assert whole.code == 0, whole.err
    (database,) = [d for d in whole.json()["databases"] if d["plugin"] == "scaffolder"]
    assert database["state"] == "in_sync"
    assert [m["name"] for m in database["sets"][0]["migrations"]] == SCAFFOLDER_FILES
    # The server's list of databases is data too: the other one carrying the prefix is named exactly.
    where = f"postgresql://{login.role}@{login.server.host}:{login.server.port}"
    orphans = [(d["server"], d["database"]) for d in whole.json()["databases"] if d["state"] == "orphan"]
    assert orphans == [(where, f"{login.prefix}orphan")]

    plan = run(login, project, "plan", "--to", str(project), "--json")
    assert plan.code == 0, plan.err
    assert [(s["migrations_table"], s["revert"]) for s in plan.json()["sets"]] == [("knex_migrations", [])]
    doctor = run(login, project, "doctor")
    assert (doctor.code, doctor.out) == (0, "no problems found in 1 database x migration set pair\n")

    down = run(login, project, "down", "scaffolder", "--yes", "--json")
    assert down.code == 0, down.err
    assert down.json()["done"] == ["20240401213200_workspace.js"]


@pytest.fixture
def secret_login(scram_pg: PgServer) -> Iterator[Login]:
    yield from _login(scram_pg, "secret")


def test_a_database_error_quoting_the_password_masks_it_and_keeps_the_names(
    secret_login: Login, project: Path, tmp_path: Path
) -> None:
    """PostgreSQL quotes the token it choked on: a real driver error with the password in it, twice."""
    name = "20240101000000_rotate_secrets.js"
    write_migration(tmp_path, name, f'await knex.raw("alter role {secret_login.role} with password secret");')
    failed = run(secret_login, project, "latest", str(tmp_path), "--database", secret_login.database, "--yes")
    assert failed.code == 12, failed.err
    (message,) = [line for line in failed.err.splitlines() if line.startswith("knexwrap: error:")]
    assert message.startswith(f'knexwrap: error: migration "{name}" failed: '), message
    assert 'syntax error at or near "********"' in message
    assert not re.search(r"\bsecret\b", failed.err), failed.err
    as_json = run(
        secret_login, project, "latest", str(tmp_path), "--database", secret_login.database, "--yes", "--json"
    )
    assert as_json.code == 12
    error = json.loads(as_json.out)["error"]
    assert error["code"] == "migration_failed" and name in error["message"]
    assert not re.search(r"\bsecret\b", as_json.out + as_json.err)
