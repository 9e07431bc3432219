"""Real Backstage packages, the real knex CLI and a real PostgreSQL: the upgrade/downgrade facts knexwrap relies on.

The packages come from tests/backstage.py (npm pack, cached); nothing here goes through knexwrap,
so a failure points at a changed fact about Backstage or knex, not at knexwrap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backstage import (
    AUTH,
    CATALOG,
    DEFAULTS,
    INCREMENTAL,
    INCREMENTAL_TABLE,
    KEYS_TABLE,
    PINNED,
    SCAFFOLDER,
    SCHEDULER_TABLE,
    TASKS,
    FetchFailed,
    fetch,
    knex,
    make_project,
    ok,
    package_dir,
    swap,
)
from servers import PgServer, psql_rows

CORRUPT = "The migration directory is corrupt, the following files are missing: "


def applied(pg: PgServer, db: str, table: str = "knex_migrations") -> list[str]:
    return [row[0] for row in psql_rows(pg, db, f"select name from {table} order by id")]


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".js")


def migrations(project: Path, name: str, sub: str = "") -> Path:
    return package_dir(project, name) / "migrations" / sub


def tables(pg: PgServer, db: str) -> set[str]:
    return {r[0] for r in psql_rows(pg, db, "select tablename from pg_tables where schemaname = 'public'")}


@pytest.fixture(scope="session", autouse=True)
def pinned_packages() -> None:
    """Fetch every pinned package once up front: a registry problem fails here, with npm's message."""
    for name, versions in PINNED.items():
        for version in versions:
            fetch(name, version)


# --------------------------------------------------------------------- the tarballs themselves


@pytest.mark.parametrize(
    ("name", "version", "plugin_id", "role", "counts"),
    [
        (CATALOG, "1.24.0", "catalog", "backend-plugin", {"": 30}),
        (CATALOG, "4.0.5", "catalog", "backend-plugin", {"": 47}),
        # No backstage.pluginId before 0.22: knexwrap finds this one by package name only.
        (AUTH, "0.17.4", None, "backend-plugin", {"": 4}),
        (AUTH, "0.31.0", "auth", "backend-plugin", {"": 13}),
        (SCAFFOLDER, "4.3.0", "scaffolder", "backend-plugin", {"": 5}),
        (DEFAULTS, "0.9.0", None, "node-library", {"scheduler": 2, "auth": 1}),
        (DEFAULTS, "0.10.0", None, "node-library", {"scheduler": 3, "auth": 1}),
        (INCREMENTAL, "0.8.0", "catalog", "backend-plugin-module", {"": 2}),
        (TASKS, "0.6.1", None, "node-library", {"": 2}),
    ],
)
def test_pinned_package_facts(
    name: str, version: str, plugin_id: str | None, role: str, counts: dict[str, int]
) -> None:
    folder = fetch(name, version)
    meta = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    assert (meta["name"], meta["version"]) == (name, version)
    assert (meta["backstage"].get("pluginId"), meta["backstage"]["role"]) == (plugin_id, role)
    assert {sub: len(files(folder / "migrations" / sub)) for sub in counts} == counts
    # Nothing but package.json and migrations/ is kept in the cache.
    assert {p.name for p in folder.iterdir()} == {"package.json", "migrations"}


def test_cached_fetch_needs_no_npm(monkeypatch: pytest.MonkeyPatch) -> None:
    first = fetch(CATALOG, "1.24.0")
    # No npm on PATH: the second call can only succeed from the cache.
    monkeypatch.setenv("PATH", "")
    assert fetch(CATALOG, "1.24.0") == first


def test_fetch_failure_carries_npms_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KNEXWRAP_TEST_CACHE", str(tmp_path))
    with pytest.raises(FetchFailed, match="npm error") as failure:
        fetch(TASKS, "0.0.0-no-such-version")
    assert "@backstage/backend-tasks@0.0.0-no-such-version" in str(failure.value)
    # Nothing half-made is left to be mistaken for a cached package.
    assert list(tmp_path.iterdir()) == []


def test_project_copies_packages_and_links_knex(tmp_path: Path) -> None:
    project = make_project(tmp_path, {CATALOG: "1.24.0"})
    catalog = package_dir(project, CATALOG)
    # A real folder: Node must resolve the migrations' require('uuid') from inside the project.
    assert catalog.is_dir() and not catalog.is_symlink()
    assert all((project / "node_modules" / m).is_symlink() for m in ("knex", "pg", "uuid", ".bin/knex"))
    swap(project, CATALOG, "4.0.5")
    assert json.loads((catalog / "package.json").read_text())["version"] == "4.0.5"
    assert json.loads((project / "package.json").read_text())["dependencies"] == {CATALOG: "4.0.5"}


# ------------------------------------------------------------------ upgrade, then downgrade the code


def test_catalog_downgrade_finds_a_corrupt_directory(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, {CATALOG: "1.24.0"})
    folder = migrations(project, CATALOG)
    old = files(folder)
    # 1.24.0's bootstrap-location migration requires uuid: the copy in node_modules must find it.
    assert "Batch 1 run: 30 migrations" in ok(knex(project, pg, pg_database, "migrate:latest", folder))
    assert applied(pg, pg_database) == old

    swap(project, CATALOG, "4.0.5")
    new = [f for f in files(folder) if f not in old]
    assert len(new) == 17
    assert "Batch 2 run: 17 migrations" in ok(knex(project, pg, pg_database, "migrate:latest", folder))
    assert applied(pg, pg_database) == old + new

    swap(project, CATALOG, "1.24.0")
    listed = knex(project, pg, pg_database, "migrate:list", folder)
    assert listed.returncode == 1
    message = next(line for line in listed.stderr.splitlines() if CORRUPT in line)
    assert sorted(message.split(CORRUPT, 1)[1].split(", ")) == new


def test_catalog_rollback_then_downgrade_is_clean(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """The documented fix: while 4.0.5 is installed, roll back its 17; then 1.24.0 sees a clean state."""
    project = make_project(tmp_path, {CATALOG: "1.24.0"})
    folder = migrations(project, CATALOG)
    ok(knex(project, pg, pg_database, "migrate:latest", folder))
    swap(project, CATALOG, "4.0.5")
    ok(knex(project, pg, pg_database, "migrate:latest", folder))

    assert "Batch 2 rolled back: 17 migrations" in ok(knex(project, pg, pg_database, "migrate:rollback", folder))
    swap(project, CATALOG, "1.24.0")
    listed = ok(knex(project, pg, pg_database, "migrate:list", folder))
    assert "Found 30 Completed Migration file/files." in listed
    assert "No Pending Migration files Found." in listed


def test_auth_upgrade_adds_sessions(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, {AUTH: "0.17.4"})
    folder = migrations(project, AUTH)
    assert "Batch 1 run: 4 migrations" in ok(knex(project, pg, pg_database, "migrate:latest", folder))

    swap(project, AUTH, "0.31.0")
    assert "Batch 2 run: 9 migrations" in ok(knex(project, pg, pg_database, "migrate:latest", folder))
    assert applied(pg, pg_database)[4] == "20230428155633_sessions.js"

    swap(project, AUTH, "0.17.4")
    listed = knex(project, pg, pg_database, "migrate:list", folder)
    assert listed.returncode == 1
    assert "20230428155633_sessions.js" in listed.stderr


# ---------------------------------------------------------------- several migration sets, one database


def test_scheduler_set_lives_in_its_own_table(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """One plugin database: the plugin's knex_migrations next to backend-defaults' scheduler and keys sets."""
    project = make_project(tmp_path, {SCAFFOLDER: "4.3.0", DEFAULTS: "0.10.0"})
    ok(knex(project, pg, pg_database, "migrate:latest", migrations(project, SCAFFOLDER)))
    scheduler = migrations(project, DEFAULTS, "scheduler")
    ok(knex(project, pg, pg_database, "migrate:latest", scheduler, SCHEDULER_TABLE))
    ok(knex(project, pg, pg_database, "migrate:latest", migrations(project, DEFAULTS, "auth"), KEYS_TABLE))

    assert applied(pg, pg_database) == files(migrations(project, SCAFFOLDER))
    assert applied(pg, pg_database, SCHEDULER_TABLE) == files(scheduler)
    assert applied(pg, pg_database, KEYS_TABLE) == ["20240327104803_public_keys.js"]
    assert {"knex_migrations_lock", f"{SCHEDULER_TABLE}_lock", f"{KEYS_TABLE}_lock"} <= tables(pg, pg_database)
    # Each set is checked against its own table only: the plugin's list stays clean.
    assert "No Pending Migration files Found." in ok(
        knex(project, pg, pg_database, "migrate:list", migrations(project, SCAFFOLDER))
    )


def test_scheduler_downgrade_breaks_every_plugin_database(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """backend-tasks 0.6.1 -> backend-defaults 0.10.0 adds last_run; back to 0.9.0 the scheduler set is corrupt."""
    project = make_project(tmp_path, {TASKS: "0.6.1", DEFAULTS: "0.10.0"})
    ok(knex(project, pg, pg_database, "migrate:latest", migrations(project, TASKS), SCHEDULER_TABLE))
    scheduler = migrations(project, DEFAULTS, "scheduler")
    out = ok(knex(project, pg, pg_database, "migrate:latest", scheduler, SCHEDULER_TABLE))
    assert "Batch 2 run: 1 migrations" in out
    assert applied(pg, pg_database, SCHEDULER_TABLE)[-1] == "20250411000000_last_run.js"

    swap(project, DEFAULTS, "0.9.0")
    listed = knex(project, pg, pg_database, "migrate:list", scheduler, SCHEDULER_TABLE)
    assert listed.returncode == 1
    assert CORRUPT + "20250411000000_last_run.js" in listed.stderr


def test_incremental_ingestion_shares_the_catalog_database(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, {CATALOG: "4.0.5", INCREMENTAL: "0.8.0"})
    ok(knex(project, pg, pg_database, "migrate:latest", migrations(project, CATALOG)))
    incremental = migrations(project, INCREMENTAL)
    ok(knex(project, pg, pg_database, "migrate:latest", incremental, INCREMENTAL_TABLE))
    assert len(applied(pg, pg_database)) == 47
    assert applied(pg, pg_database, INCREMENTAL_TABLE) == files(incremental)
