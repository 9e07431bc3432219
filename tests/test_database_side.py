"""The databases' own half of the truth: every table of knex's migrations shape in a plugin database
appears in status (an unclaimed one as an orphan set with its rows), and a lock held on any set is
shown and released by `unlock PLUGIN` (several held: nothing changes unless --all)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backstage import DEFAULTS, SCHEDULER_TABLE, knex, make_project, ok
from helpers import PLUGINS, knexwrap
from servers import PgServer, create_database, drop_database, psql_rows, unique_name

RETIRED = "retired_module__knex_migrations"
APP_FILES = ["20211229105307_init.js", "20240113144027_assets-namespace.js"]


@dataclass(frozen=True)
class Db:
    project: Path
    prefix: str
    env: dict[str, str | None]

    @property
    def name(self) -> str:
        return f"{self.prefix}catalog"

    def run(self, *args: str) -> Any:
        return knexwrap(*args, "--prefix", self.prefix, cwd=self.project, env=self.env)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("dbside"), {DEFAULTS: "0.10.0"})
    shutil.copytree(PLUGINS / "catalog", project / "node_modules" / "@knexwrap-fixture" / "plugin-catalog-backend")
    return project


@pytest.fixture
def db(project: Path, pg: PgServer) -> Iterator[Db]:
    """The catalog's database: its own set, the scheduler's, and a table of a module no longer installed."""
    prefix = unique_name("kw_side") + "_"
    name = f"{prefix}catalog"
    create_database(pg, name)
    try:
        ok(knex(project, pg, name, "migrate:latest", PLUGINS / "catalog" / "migrations"))
        scheduler = project / "node_modules" / DEFAULTS / "migrations" / "scheduler"
        ok(knex(project, pg, name, "migrate:latest", scheduler, SCHEDULER_TABLE))
        # A module that kept its own table here and was uninstalled since (its files are gone with it).
        ok(knex(project, pg, name, "migrate:latest", PLUGINS / "app" / "migrations", RETIRED))
        env: dict[str, str | None] = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
        yield Db(project, prefix, env)
    finally:
        drop_database(pg, name)


def lock(pg: PgServer, db: Db, table: str, value: int = 1) -> None:
    psql_rows(pg, db.name, f"update {table}_lock set is_locked = {value}")


def locks(pg: PgServer, db: Db) -> dict[str, int]:
    tables = ("knex_migrations", SCHEDULER_TABLE, RETIRED)
    return {t: int(psql_rows(pg, db.name, f"select max(is_locked) from {t}_lock")[0][0]) for t in tables}


def test_an_unclaimed_table_is_an_orphan_set_with_its_rows(db: Db) -> None:
    result = db.run("status", "--json", "--check")
    assert result.code == 0, result.out
    [catalog] = result.json()["databases"]
    assert catalog["state"] == "in_sync"
    sets = {s["migrations_table"]: s for s in catalog["sets"]}
    assert sorted(sets) == sorted(["knex_migrations", SCHEDULER_TABLE, RETIRED])
    orphan = sets[RETIRED]
    assert (orphan["state"], orphan["package"], orphan["migrations_directory"]) == ("orphan", None, "")
    assert [(m["name"], m["state"], m["batch"]) for m in orphan["migrations"]] == [(n, "applied", 1) for n in APP_FILES]
    single = db.run("status", "catalog", "--json").json()
    assert [(s["migrations_table"], s["state"]) for s in single["other_sets"]] == [
        (SCHEDULER_TABLE, "in_sync"),
        (RETIRED, "orphan"),
    ]


def test_a_lock_on_any_set_is_shown_and_released_by_unlock_plugin(db: Db, pg: PgServer) -> None:
    lock(pg, db, SCHEDULER_TABLE)
    status = db.run("status", "--json", "--check")
    assert status.code == 9
    [catalog] = status.json()["databases"]
    assert {s["migrations_table"]: s["locked"] for s in catalog["sets"]} == {
        "knex_migrations": False,
        SCHEDULER_TABLE: True,
        RETIRED: False,
    }
    released = db.run("unlock", "catalog", "--yes")
    assert released.code == 0, released.err
    assert f"table {SCHEDULER_TABLE}" in released.err  # the plan names the set whose lock it releases
    assert locks(pg, db) == {"knex_migrations": 0, SCHEDULER_TABLE: 0, RETIRED: 0}


def test_an_orphan_sets_lock_is_released_too(db: Db, pg: PgServer) -> None:
    lock(pg, db, RETIRED)
    assert db.run("status", "--check").code == 9
    released = db.run("unlock", "catalog", "--yes")
    assert released.code == 0, released.err
    assert f"table {RETIRED}" in released.err
    assert locks(pg, db)[RETIRED] == 0


def test_several_locks_change_nothing_unless_all(db: Db, pg: PgServer) -> None:
    lock(pg, db, "knex_migrations")
    lock(pg, db, SCHEDULER_TABLE)
    refused = db.run("unlock", "catalog", "--yes")
    assert refused.code == 9
    assert refused.err == (
        f"knexwrap: error: 2 migration locks are held in postgresql://{pg.user}@{pg.host}:{pg.port}/{db.name}: "
        f"knex_migrations, {SCHEDULER_TABLE}; nothing was changed: name one with --migrations-table-name, "
        "or release every one with --all\n"
    )
    assert locks(pg, db) == {"knex_migrations": 1, SCHEDULER_TABLE: 1, RETIRED: 0}
    one = db.run("unlock", "catalog", "--migrations-table-name", SCHEDULER_TABLE, "--yes")
    assert one.code == 0, one.err
    assert locks(pg, db) == {"knex_migrations": 1, SCHEDULER_TABLE: 0, RETIRED: 0}
    lock(pg, db, SCHEDULER_TABLE)
    every = db.run("unlock", "catalog", "--all", "--yes", "--json")
    assert every.code == 0, every.err
    assert every.json()["done"] == ["knex_migrations_lock", f"{SCHEDULER_TABLE}_lock"]
    assert locks(pg, db) == {"knex_migrations": 0, SCHEDULER_TABLE: 0, RETIRED: 0}
