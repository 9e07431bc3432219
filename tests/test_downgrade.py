"""Upgrade, regret, downgrade: real catalog and scheduler migrations, real knex, real PostgreSQL."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from backstage import CATALOG, DEFAULTS, SCHEDULER_TABLE, knex, make_project, ok
from helpers import knexwrap, verified
from servers import PgServer, create_database, drop_database, psql_rows, unique_name

CORRUPT = "The migration directory is corrupt"


@dataclass(frozen=True)
class Upgraded:
    new: Path
    old: Path
    prefix: str
    env: dict[str, str | None]

    @property
    def db(self) -> str:
        return f"{self.prefix}catalog"


def folder(project: Path, package: str, sub: str = "") -> Path:
    return project / "node_modules" / package / "migrations" / sub


@pytest.fixture
def upgraded(pg: PgServer, tmp_path: Path) -> Iterator[Upgraded]:
    """catalog 1.24.0 + scheduler 0.9.0 with data, then upgraded to catalog 4.0.5 + backend-defaults 0.10.0."""
    old = make_project(tmp_path / "old", {CATALOG: "1.24.0", DEFAULTS: "0.9.0"})
    new = make_project(tmp_path / "new", {CATALOG: "4.0.5", DEFAULTS: "0.10.0"})
    prefix = unique_name("kw_down") + "_"
    db = f"{prefix}catalog"
    create_database(pg, db)
    try:
        ok(knex(old, pg, db, "migrate:latest", folder(old, CATALOG)))
        ok(knex(old, pg, db, "migrate:latest", folder(old, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
        psql_rows(pg, db, "create table operator_notes (id int primary key, note text)")
        psql_rows(pg, db, "insert into operator_notes values (1, 'kept'), (2, 'also kept')")
        ok(knex(new, pg, db, "migrate:latest", folder(new, CATALOG)))
        ok(knex(new, pg, db, "migrate:latest", folder(new, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
        env: dict[str, str | None] = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
        yield Upgraded(new, old, prefix, env)
    finally:
        drop_database(pg, db)


def newer_catalog_files(up: Upgraded) -> list[str]:
    old = {p.name for p in folder(up.old, CATALOG).iterdir()}
    return sorted((p.name for p in folder(up.new, CATALOG).iterdir() if p.name not in old), reverse=True)


def test_the_older_install_fails_before_and_starts_clean_after(up_and_down: tuple[Upgraded, PgServer]) -> None:
    up, pg = up_and_down
    assert CORRUPT in knex(up.old, pg, up.db, "migrate:list", folder(up.old, CATALOG)).stderr
    result = knexwrap(
        "downgrade", "--to", str(up.old), "--prefix", up.prefix, "--yes", "--json", cwd=up.new, env=up.env
    )
    assert result.code == 0, result.err
    doc = result.json()
    reverted = [(s["migrations_table"], s["name"]) for s in doc["steps"] if s["state"] == "reverted"]
    assert reverted == [("knex_migrations", n) for n in newer_catalog_files(up)] + [
        (SCHEDULER_TABLE, "20250411000000_last_run.js")
    ]
    assert doc["failure"] is None
    assert len(doc["backups"]) == 1 and doc["backups"][0].endswith(".dump")
    listed = subprocess.run(["pg_restore", "--list", doc["backups"][0]], capture_output=True, text=True, check=True)
    assert "operator_notes" in listed.stdout
    # The raw knex CLI with the older folders: no "corrupt" error, nothing pending.
    listing = ok(knex(up.old, pg, up.db, "migrate:list", folder(up.old, CATALOG)))
    assert "Found 30 Completed Migration file/files." in listing and "No Pending Migration files Found." in listing
    scheduler = ok(knex(up.old, pg, up.db, "migrate:list", folder(up.old, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
    assert "No Pending Migration files Found." in scheduler
    assert psql_rows(pg, up.db, "select id, note from operator_notes order by id") == [
        ("1", "kept"),
        ("2", "also kept"),
    ]
    assert verified(doc) == [
        f"postgresql://{pg.user}@{pg.host}:{pg.port}/{up.db} knex_migrations: 30 applied, 0 pending",
        f"postgresql://{pg.user}@{pg.host}:{pg.port}/{up.db} {SCHEDULER_TABLE}: 2 applied, 0 pending",
    ]


@pytest.fixture
def up_and_down(upgraded: Upgraded, pg: PgServer) -> tuple[Upgraded, PgServer]:
    return upgraded, pg


def test_plan_names_every_file_newest_first_and_changes_nothing(up_and_down: tuple[Upgraded, PgServer]) -> None:
    up, pg = up_and_down
    before = psql_rows(pg, up.db, "select count(*) from knex_migrations")
    result = knexwrap("plan", "--to", str(up.old), "--prefix", up.prefix, "--json", cwd=up.new, env=up.env)
    assert result.code == 0, result.err
    sets = {s["migrations_table"]: s for s in result.json()["sets"]}
    assert sets["knex_migrations"]["revert"] == newer_catalog_files(up)
    assert (sets["knex_migrations"]["version_now"], sets["knex_migrations"]["version_target"]) == ("4.0.5", "1.24.0")
    assert sets[SCHEDULER_TABLE]["revert"] == ["20250411000000_last_run.js"]
    assert sets["knex_migrations"]["without_transaction"] == [
        "20261013000000_final_entity_generations.js",
        "20260912000000_refresh_state_maintenance.js",
        "20260904000000_fix_search_entity_id_ndistinct.js",
        "20260609000000_drop_search_entity_id_idx.js",
        "20260516000000_relations_target_index.js",
        "20260510000000_search_indices_and_dedup.js",
        "20260214000000_search_fk_final_entities.js",
    ]
    assert psql_rows(pg, up.db, "select count(*) from knex_migrations") == before == [("47",)]
    dry = knexwrap("downgrade", "--to", str(up.old), "--prefix", up.prefix, "--dry-run", cwd=up.new, env=up.env)
    assert dry.code == 0
    assert "18 migrations to revert in 2 migration sets" in dry.out
    assert psql_rows(pg, up.db, "select count(*) from knex_migrations") == [("47",)]


def test_declined_or_locked_or_backend_running_changes_nothing(up_and_down: tuple[Upgraded, PgServer]) -> None:
    up, pg = up_and_down
    args = ["downgrade", "--to", str(up.old), "--prefix", up.prefix]
    declined = knexwrap(*args, cwd=up.new, env=up.env, input="n\n")
    assert declined.code == 14
    psql_rows(pg, up.db, "update knex_migrations_lock set is_locked = 1")
    locked = knexwrap(*args, "--yes", cwd=up.new, env=up.env)
    assert locked.code == 9
    psql_rows(pg, up.db, "update knex_migrations_lock set is_locked = 0")
    backend = subprocess.Popen(
        ["psql", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", up.db, "-c", "select pg_sleep(60)"],
        env={"PATH": "/usr/bin:/bin", "PGAPPNAME": "backstage_plugin_catalog"},
    )
    try:
        for _ in range(50):
            if psql_rows(
                pg, up.db, "select count(*) from pg_stat_activity where application_name = 'backstage_plugin_catalog'"
            ) == [("1",)]:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        running = knexwrap(*args, "--yes", cwd=up.new, env=up.env)
        assert running.code == 16
        assert "backstage_plugin_catalog" in running.err and "skipMigrations" in running.err
    finally:
        backend.kill()
        backend.wait()
    assert psql_rows(pg, up.db, "select count(*) from knex_migrations") == [("47",)]
    backups = up.new / ".knexwrap" / "backups"
    assert not backups.exists() or not any(backups.iterdir())  # refused before any backup was taken


def test_down_finds_the_set_of_the_database_that_holds_the_file(up_and_down: tuple[Upgraded, PgServer]) -> None:
    """`down catalog <a scheduler file>` means the scheduler's set in the catalog database."""
    up, pg = up_and_down
    args = ["--prefix", up.prefix, "--yes", "--json"]
    result = knexwrap("down", "catalog", "20250411000000_last_run", *args, cwd=up.new, env=up.env)
    assert result.code == 0, result.err
    doc = result.json()
    assert (doc["migrations_table"], doc["done"]) == (SCHEDULER_TABLE, ["20250411000000_last_run.js"])
    assert [r[0] for r in psql_rows(pg, up.db, f"select name from {SCHEDULER_TABLE} order by id")] == [
        p.name for p in sorted(folder(up.old, DEFAULTS, "scheduler").iterdir())
    ]
    assert psql_rows(pg, up.db, "select count(*) from knex_migrations") == [("47",)]
