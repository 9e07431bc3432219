"""Migration sets read from the packages' own built code (install/code.py), on real packages fetched
with npm pack, migrated by the real knex into real PostgreSQL and read back set by set; two sets on
one table and a folder pointed at another plugin's database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backstage import (
    ANNOUNCEMENTS,
    CATALOG,
    DEFAULTS,
    INCREMENTAL,
    INCREMENTAL_TABLE,
    KEYS_TABLE,
    ROOT,
    SCHEDULER_TABLE,
    knex,
    make_project,
    ok,
)
from helpers import PLUGINS, knexwrap
from servers import PgServer, create_database, drop_database, psql_rows, unique_name

OWN = "@knexwrap-fixture/plugin-catalog-backend-module-own"
SHARED = "@knexwrap-fixture/plugin-catalog-backend-module-shared"
OWN_TABLE = "catalog_module_own__knex_migrations"
PACKAGES = {ANNOUNCEMENTS: "0.29.0", CATALOG: "4.0.5", INCREMENTAL: "0.8.0", DEFAULTS: "0.10.0"}


def add_fixture(project: Path, folder: str, name: str, with_code: bool = True) -> Path:
    target = project / "node_modules" / name
    shutil.copytree(
        ROOT / "fixtures" / "packages" / folder, target, ignore=None if with_code else shutil.ignore_patterns("dist")
    )
    return target


def build(root: Path, with_code: bool) -> Path:
    project = make_project(root, PACKAGES, with_code=tuple(PACKAGES) if with_code else ())
    add_fixture(project, "catalog-module-own", OWN, with_code)
    return project


def listed(project: Path) -> dict[str, tuple[str, str, str, str]]:
    result = knexwrap("plugins", "--json", "--host", "h", "--user", "u", cwd=project)
    assert result.code == 0, result.err
    modules = str(project / "node_modules") + "/"
    return {
        s["package"] + " " + s["migrations_table"]: (
            s["plugin"],
            s["migrations_directory"].replace(modules, ""),
            s["source"],
            s["version"],
        )
        for s in result.json()["sets"]
    }


def test_which_answered_for_each_real_package(tmp_path: Path) -> None:
    """With the built code, the code names every folder and table; without it (the packages as the
    other tests hold them: package.json and migrations/ only) the data table answers what it knows,
    and the sets it cannot know are not there: a folder other than migrations/ and a module's own table."""
    assert listed(build(tmp_path / "code", True)) == {
        f"{ANNOUNCEMENTS} knex_migrations": ("announcements", f"{ANNOUNCEMENTS}/db/migrations", "code", "0.29.0"),
        f"{CATALOG} knex_migrations": ("catalog", f"{CATALOG}/migrations", "code", "4.0.5"),
        f"{INCREMENTAL} {INCREMENTAL_TABLE}": ("catalog", f"{INCREMENTAL}/migrations", "code", "0.8.0"),
        f"{OWN} {OWN_TABLE}": ("catalog", f"{OWN}/migrations", "code", "0.3.0"),
        f"{DEFAULTS} {KEYS_TABLE}": ("*", f"{DEFAULTS}/migrations/auth", "code", "0.10.0"),
        f"{DEFAULTS} {SCHEDULER_TABLE}": ("*", f"{DEFAULTS}/migrations/scheduler", "code", "0.10.0"),
    }
    assert listed(build(tmp_path / "data", False)) == {
        f"{CATALOG} knex_migrations": ("catalog", f"{CATALOG}/migrations", "table", "4.0.5"),
        f"{INCREMENTAL} {INCREMENTAL_TABLE}": ("catalog", f"{INCREMENTAL}/migrations", "table", "0.8.0"),
        f"{DEFAULTS} {KEYS_TABLE}": ("*", f"{DEFAULTS}/migrations/auth", "table", "0.10.0"),
        f"{DEFAULTS} {SCHEDULER_TABLE}": ("*", f"{DEFAULTS}/migrations/scheduler", "table", "0.10.0"),
    }


@dataclass(frozen=True)
class Migrated:
    project: Path
    prefix: str
    env: dict[str, str | None]

    def run(self, *args: str) -> Any:
        return knexwrap(*args, "--prefix", self.prefix, cwd=self.project, env=self.env)


@pytest.fixture(scope="module")
def migrated(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    """Every set of the code-read project applied by the real knex, as the backend would."""
    project = build(tmp_path_factory.mktemp("codesets"), True)
    shutil.copytree(PLUGINS / "app", project / "node_modules" / "@knexwrap-fixture" / "plugin-app-backend")
    prefix = unique_name("kw_code") + "_"
    made = [f"{prefix}{p}" for p in ("announcements", "catalog", "app")]
    for name in made:
        create_database(pg, name)
    modules = project / "node_modules"
    try:
        ok(knex(project, pg, made[0], "migrate:latest", modules / ANNOUNCEMENTS / "db" / "migrations"))
        ok(knex(project, pg, made[1], "migrate:latest", modules / CATALOG / "migrations"))
        ok(knex(project, pg, made[1], "migrate:latest", modules / INCREMENTAL / "migrations", INCREMENTAL_TABLE))
        ok(knex(project, pg, made[1], "migrate:latest", modules / OWN / "migrations", OWN_TABLE))
        ok(knex(project, pg, made[2], "migrate:latest", PLUGINS / "app" / "migrations"))
        env: dict[str, str | None] = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
        yield Migrated(project, prefix, env)
    finally:
        for name in made:
            drop_database(pg, name)


def test_every_set_read_back_row_for_row(migrated: Migrated, pg: PgServer) -> None:
    result = migrated.run("status", "--json", "--check")
    assert result.code == 0, result.out
    found = {
        (d["plugin"], s["migrations_table"], s["package"]): [
            m["name"] for m in s["migrations"] if m["state"] == "applied"
        ]
        for d in result.json()["databases"]
        for s in d["sets"]
    }
    expected = {}
    for plugin, table, package in [
        ("announcements", "knex_migrations", ANNOUNCEMENTS),
        ("catalog", "knex_migrations", CATALOG),
        ("catalog", INCREMENTAL_TABLE, INCREMENTAL),
        ("catalog", OWN_TABLE, OWN),
        ("app", "knex_migrations", "@knexwrap-fixture/plugin-app-backend"),
    ]:
        expected[(plugin, table, package)] = [
            r[0] for r in psql_rows(pg, migrated.prefix + plugin, f"select name from {table} order by id")
        ]
    assert found == expected
    assert len(expected[("announcements", "knex_migrations", ANNOUNCEMENTS)]) == 9
    assert expected[("catalog", OWN_TABLE, OWN)] == ["20240501000000_own_state.js"]


def test_two_sets_on_one_table_are_a_conflict_not_a_crash(migrated: Migrated, pg: PgServer) -> None:
    shared = add_fixture(migrated.project, "catalog-module-shared", SHARED)
    db = f"{migrated.prefix}catalog"
    try:
        # What the module's own migrate.latest leaves when it runs first (knex refuses it after the
        # catalog's: "corrupt"): its row in the catalog's table.
        psql_rows(pg, db, "create table catalog_module_shared_state (key varchar(255) primary key)")
        psql_rows(
            pg,
            db,
            "insert into knex_migrations (name, batch, migration_time) "
            "values ('20240601000000_shared_state.js', 2, now())",
        )
        for args in (("status",), ("status", "catalog")):
            result = migrated.run(*args, "--json", "--check")
            assert result.code == 8, result.err
        doc = migrated.run("status", "--json").json()
        [catalog] = [d for d in doc["databases"] if d["plugin"] == "catalog"]
        assert catalog["state"] == "conflict"
        states = {
            s["package"]: (s["state"], [r["name"] for r in s["rows_of_other_sets"]], s["counts"]["missing"])
            for s in catalog["sets"]
        }
        assert states[SHARED][0] == "conflict"
        assert states[CATALOG][0] == "conflict"
        assert states[CATALOG][1] == ["20240601000000_shared_state.js"]  # named with its set, not "missing"
        assert states[CATALOG][2] == 0
        doctor = migrated.run("doctor", "--json")
        problems = {(f["migrations_table"], f["problem"]) for f in doctor.json()["findings"]}
        assert ("knex_migrations", "conflict") in problems
        refused = migrated.run("latest", "catalog", "--yes")
        assert refused.code == 8
        assert "holds 1 migrations of " + SHARED in refused.err
        assert "nothing was changed" in refused.err
    finally:
        shutil.rmtree(shared)
        psql_rows(pg, db, "delete from knex_migrations where name = '20240601000000_shared_state.js'")
        psql_rows(pg, db, "drop table catalog_module_shared_state")


def test_the_guides_mistake_is_named_and_refused(migrated: Migrated, pg: PgServer) -> None:
    """Backstage's manual rollback guide pairs the catalog's folder with the app's database."""
    db = f"{migrated.prefix}app"
    catalog_files = sorted(p.name for p in (migrated.project / "node_modules" / CATALOG / "migrations").glob("*.js"))
    # The guide's steps on an app database the backend has not migrated yet (knex refuses the catalog's
    # folder on one it has: "corrupt").
    drop_database(pg, db)
    create_database(pg, db)
    ok(knex(migrated.project, pg, db, "migrate:latest", migrated.project / "node_modules" / CATALOG / "migrations"))
    try:
        status = migrated.run("status", "app", "--json")
        assert status.json()["state"] == "wrong_folder"
        assert [r["name"] for r in status.json()["rows_of_other_sets"]] == catalog_files
        assert status.json()["counts"]["missing"] == 0  # never "ahead"
        text = migrated.run("status", "app")
        assert (
            f"{len(catalog_files)} rows belong to {CATALOG} (knex_migrations), "
            "not to @knexwrap-fixture/plugin-app-backend" in text.out
        )
        rows = psql_rows(pg, db, "select name, batch from knex_migrations order by id")
        for verb in (
            ("latest", "app"),
            ("up", "app"),
            ("down", "app"),
            ("rollback", "app"),
            ("rollback", "app", "--all"),
        ):
            refused = migrated.run(*verb, "--yes")
            assert (refused.code, refused.err.count("\n")) == (8, 1), refused.err
            assert "this folder and this database do not belong together" in refused.err
        assert psql_rows(pg, db, "select name, batch from knex_migrations order by id") == rows
    finally:
        drop_database(pg, db)
        create_database(pg, db)
        ok(knex(migrated.project, pg, db, "migrate:latest", PLUGINS / "app" / "migrations"))
