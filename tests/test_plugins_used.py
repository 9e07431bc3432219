"""Plugins with no migrations of their own (the real @backstage/plugin-techdocs-backend 2.4.3): their
database holds only the core sets, and is reported, checked, diagnosed and snapshotted like any other."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from backstage import DEFAULTS, KEYS_TABLE, TECHDOCS, knex, make_project, ok
from helpers import knexwrap
from servers import PgServer, create_database, drop_database, psql_rows, unique_name

KEYS_FILE = "20240327104803_public_keys.js"
GONE = "20990101000000_from_a_newer_release.js"


@dataclass(frozen=True)
class Techdocs:
    project: Path
    prefix: str
    env: dict[str, str | None]

    def run(self, *args: str) -> tuple[int, str, str]:
        result = knexwrap(*args, "--prefix", self.prefix, cwd=self.project, env=self.env)
        return result.code, result.out, result.err


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("techdocs"), {TECHDOCS: "2.4.3", DEFAULTS: "0.10.0"})


@pytest.fixture
def techdocs(project: Path, pg: PgServer) -> Iterator[Techdocs]:
    """techdocs' database holding the plugin keys' set, as the backend leaves it."""
    prefix = unique_name("kw_td") + "_"
    create_database(pg, f"{prefix}techdocs")
    try:
        keys = project / "node_modules" / DEFAULTS / "migrations" / "auth"
        ok(knex(project, pg, f"{prefix}techdocs", "migrate:latest", keys, KEYS_TABLE))
        yield Techdocs(
            project, prefix, {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
        )
    finally:
        drop_database(pg, f"{prefix}techdocs")


def test_the_package_ships_no_migrations(project: Path) -> None:
    folder = project / "node_modules" / TECHDOCS
    assert not (folder / "migrations").exists()
    assert json.loads((folder / "package.json").read_text())["backstage"]["pluginId"] == "techdocs"


def test_its_database_is_reported_with_the_keys_set(techdocs: Techdocs) -> None:
    code, out, err = techdocs.run("status", "--json", "--check")
    assert code == 0, err
    [db] = json.loads(out)["databases"]
    assert (db["plugin"], db["state"]) == ("techdocs", "in_sync")
    assert [(s["migrations_table"], s["version"], s["counts"]) for s in db["sets"]] == [
        (KEYS_TABLE, "0.10.0", {"applied": 1, "pending": 0, "missing": 0})
    ]


def test_status_techdocs(techdocs: Techdocs) -> None:
    code, out, err = techdocs.run("status", "techdocs", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["plugin"], doc["migrations_table"], doc["state"]) == ("techdocs", KEYS_TABLE, "in_sync")
    assert doc["database"] == f"{techdocs.prefix}techdocs" and doc["server"].startswith("postgresql://")


def test_a_missing_file_fails_check_and_doctor(techdocs: Techdocs, pg: PgServer) -> None:
    # What stopped the real backend ("migration directory is corrupt") while status --check said 0.
    psql_rows(
        pg,
        f"{techdocs.prefix}techdocs",
        f"insert into {KEYS_TABLE} (name, batch, migration_time) values ('{GONE}', 2, now())",
    )
    code, out, _ = techdocs.run("status", "--json", "--check")
    assert code == 8
    [db] = json.loads(out)["databases"]
    assert db["state"] == "ahead"
    code, out, _ = techdocs.run("doctor", "--json")
    assert code != 0
    findings = json.loads(out)["findings"]
    assert [(f["database"], f["migrations_table"], f["problem"], f["files"]) for f in findings] == [
        (f"{techdocs.prefix}techdocs", KEYS_TABLE, "ahead", [GONE])
    ]


def test_snapshot_records_it(techdocs: Techdocs, tmp_path: Path) -> None:
    out_file = tmp_path / "snap.json"
    code, _, err = techdocs.run("snapshot", "--out", str(out_file))
    assert code == 0, err
    taken = json.loads(out_file.read_text())
    [db] = taken["databases"]
    assert db["plugin"] == "techdocs"
    assert [(s["table"], [a["name"] for a in s["applied"]]) for s in db["sets"]] == [(KEYS_TABLE, [KEYS_FILE])]


def test_without_a_database_it_is_unused_and_fails_no_check(project: Path, pg: PgServer) -> None:
    env: dict[str, str | None] = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
    prefix = unique_name("kw_td") + "_"
    result = knexwrap("status", "--json", "--check", "--prefix", prefix, cwd=project, env=env)
    assert result.code == 0, result.err
    [db] = result.json()["databases"]
    assert (db["plugin"], db["state"], db["sets"]) == ("techdocs", "unused", [])
    doctor = knexwrap("doctor", "--json", "--prefix", prefix, cwd=project, env=env)
    assert doctor.code == 0, doctor.out


def test_plugins_and_config_need_no_connection(project: Path) -> None:
    """Nothing configured at all: both list what is installed and say which setting is missing."""
    missing = "POSTGRES_HOST is not set (set it in the environment or .env, or pass --host)"
    plugins = knexwrap("plugins", "--json", cwd=project)
    assert plugins.code == 0, plugins.err
    doc = plugins.json()
    assert [(s["plugin"], s["migrations_table"], s["databases"]) for s in doc["sets"]] == [
        ("*", KEYS_TABLE, []),
        ("*", "backstage_backend_tasks__knex_migrations", []),
    ]
    assert [(p["plugin"], p["package"], p["version"], p["sets"]) for p in doc["plugins"]] == [
        ("techdocs", TECHDOCS, "2.4.3", 0)
    ]
    assert doc["missing"] == [f"techdocs: {missing}"]
    text = knexwrap("plugins", cwd=project)
    assert f"plugin without migrations of its own: techdocs ({TECHDOCS} 2.4.3)" in text.out
    assert f"no connection for techdocs: {missing}" in text.out
    config = knexwrap("config", "--json", cwd=project)
    assert config.code == 0, config.err
    [row] = config.json()["plugins"]
    assert (row["plugin"], row["host"], row["missing"]) == ("techdocs", None, missing)
