"""The whole install at a glance, on real Backstage packages migrated by the real knex into real PostgreSQL."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from backstage import AUTH, CATALOG, DEFAULTS, SCAFFOLDER, SCHEDULER_TABLE, fetch, knex, make_project, ok
from contract import validate
from helpers import PLUGINS, knexwrap
from servers import PgServer, create_database, drop_database, psql_rows, unique_name

KEYS_TABLE = "backstage_backend_public_keys__knex_migrations"


@dataclass(frozen=True)
class Install:
    project: Path
    prefix: str
    env: dict[str, str | None]

    def db(self, plugin: str) -> str:
        return f"{self.prefix}{plugin}"


def migrations(project: Path, package: str, sub: str = "") -> Path:
    return project / "node_modules" / package / "migrations" / sub


@pytest.fixture(scope="module")
def install(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """catalog in sync but its scheduler set ahead; auth in sync; scaffolder half done and locked;
    app absent; one orphan database."""
    project = make_project(
        tmp_path_factory.mktemp("backstage"),
        {CATALOG: "4.0.5", AUTH: "0.31.0", SCAFFOLDER: "4.3.0", DEFAULTS: "0.9.0"},
    )
    shutil.copytree(PLUGINS / "app", project / "node_modules" / "@knexwrap-fixture" / "plugin-app-backend")
    prefix = unique_name("kw_inst") + "_"
    made = [f"{prefix}{p}" for p in ("catalog", "auth", "scaffolder", "retired")]
    for name in made:
        create_database(pg, name)
    try:
        ok(knex(project, pg, made[0], "migrate:latest", migrations(project, CATALOG)))
        newer_scheduler = fetch(DEFAULTS, "0.10.0") / "migrations" / "scheduler"
        ok(knex(project, pg, made[0], "migrate:latest", newer_scheduler, SCHEDULER_TABLE))
        ok(knex(project, pg, made[1], "migrate:latest", migrations(project, AUTH)))
        ok(knex(project, pg, made[1], "migrate:latest", migrations(project, DEFAULTS, "auth"), KEYS_TABLE))
        ok(knex(project, pg, made[2], "migrate:up", migrations(project, SCAFFOLDER)))
        psql_rows(pg, made[2], "update knex_migrations_lock set is_locked = 1")
        env: dict[str, str | None] = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
        yield Install(project, prefix, env)
    finally:
        for name in made:
            drop_database(pg, name)


def whole(install: Install, *args: str) -> tuple[int, dict[str, dict[str, object]], dict[str, object]]:
    result = knexwrap("status", "--prefix", install.prefix, "--json", *args, cwd=install.project, env=install.env)
    doc = result.json()
    return result.code, {str(d["database"]): d for d in doc["databases"]}, doc


def sets_by_table(database: dict[str, object]) -> dict[str, dict[str, object]]:
    found = database["sets"]
    assert isinstance(found, list)
    return {s["migrations_table"]: s for s in found}


def test_every_database_and_set_matches_the_database_row_by_row(install: Install, pg: PgServer) -> None:
    code, dbs, doc = whole(install)
    assert code == 0
    assert {name: d["state"] for name, d in dbs.items()} == {
        install.db("app"): "absent",
        install.db("auth"): "in_sync",
        install.db("catalog"): "ahead",
        install.db("retired"): "orphan",
        install.db("scaffolder"): "locked",
    }
    assert doc["summary"] == {
        "orphan": 1,
        "unused": 0,
        "wrong_folder": 0,
        "conflict": 0,
        "in_sync": 1,
        "absent": 1,
        "behind": 0,
        "locked": 1,
        "ahead": 1,
        "unreachable": 0,
    }
    for plugin in ("auth", "catalog", "scaffolder"):
        for table, found in sets_by_table(dbs[install.db(plugin)]).items():
            rows = psql_rows(pg, install.db(plugin), f"select name, batch from {table} order by id")
            applied = [m for m in found["migrations"] if m["state"] != "pending"]  # type: ignore[attr-defined]
            assert [(m["name"], str(m["batch"])) for m in applied] == rows, (plugin, table)
            folder = Path(str(found["migrations_directory"]))
            on_disk = sorted(p.name for p in folder.iterdir() if p.suffix == ".js")
            pending = [m["name"] for m in found["migrations"] if m["state"] == "pending"]  # type: ignore[attr-defined]
            assert pending == [n for n in on_disk if n not in {r[0] for r in rows}]


def test_sets_of_each_database(install: Install) -> None:
    _, dbs, _ = whole(install)
    catalog = sets_by_table(dbs[install.db("catalog")])
    assert set(catalog) == {"knex_migrations", SCHEDULER_TABLE}
    assert (catalog["knex_migrations"]["state"], catalog["knex_migrations"]["counts"]) == (
        "in_sync",
        {"applied": 47, "pending": 0, "missing": 0},
    )
    assert catalog[SCHEDULER_TABLE]["state"] == "ahead"
    assert catalog[SCHEDULER_TABLE]["version"] == "0.9.0"
    assert [m["name"] for m in catalog[SCHEDULER_TABLE]["migrations"] if m["state"] == "missing"] == [  # type: ignore[attr-defined]
        "20250411000000_last_run.js"
    ]
    auth = sets_by_table(dbs[install.db("auth")])
    assert set(auth) == {"knex_migrations", KEYS_TABLE}
    assert auth["knex_migrations"]["counts"] == {"applied": 13, "pending": 0, "missing": 0}
    scaffolder = sets_by_table(dbs[install.db("scaffolder")])["knex_migrations"]
    assert (scaffolder["locked"], scaffolder["counts"]) == (True, {"applied": 1, "pending": 4, "missing": 0})
    assert scaffolder["last_batch"] == 1


def test_status_reads_nothing_into_existence(install: Install, pg: PgServer) -> None:
    def catalog_of_server() -> list[tuple[str, ...]]:
        names = [r[0] for r in psql_rows(pg, "postgres", "select datname from pg_database order by 1")]
        ours = [n for n in names if n.startswith(install.prefix)]
        found: list[tuple[str, ...]] = [("databases", *ours)]
        for name in ours:
            sql = "select table_name from information_schema.tables where table_schema = 'public' order by 1"
            found.append((name, *(r[0] for r in psql_rows(pg, name, sql))))
            for table in ("knex_migrations_lock", f"{SCHEDULER_TABLE}_lock"):
                if table in found[-1]:
                    found.append((name, table, *(r[0] for r in psql_rows(pg, name, f"select * from {table}"))))
        return found

    before = catalog_of_server()
    assert whole(install)[0] == 0
    assert knexwrap("status", "scaffolder", "--prefix", install.prefix, cwd=install.project, env=install.env).code == 0
    assert catalog_of_server() == before


def test_check_exit_codes(install: Install) -> None:
    def check(*args: str, env: dict[str, str | None] | None = None) -> int:
        return knexwrap(
            "status",
            *args,
            "--prefix",
            install.prefix,
            "--check",
            cwd=install.project,
            env={**install.env, **(env or {})},
        ).code

    assert check() == 8  # the worst: catalog's database is ahead of its files
    assert check("catalog") == 8
    assert check("scaffolder") == 9
    assert check("auth") == 0
    assert check(env={"POSTGRES_PORT": "1"}) == 5
    # app's database does not exist yet: the state "absent" and code 10 in both forms, never 7.
    assert check("app") == 10
    alone = knexwrap("status", "app", "--prefix", install.prefix, "--json", cwd=install.project, env=install.env)
    assert (alone.code, alone.json()["state"], alone.json()["counts"]["pending"]) == (0, "absent", 2)
    without_auth = {"POSTGRES_PORT": "1"}
    assert (
        knexwrap(
            "status", "app", "--prefix", install.prefix, cwd=install.project, env={**install.env, **without_auth}
        ).code
        == 5
    )


def test_check_reports_pending(install: Install, pg: PgServer) -> None:
    result = knexwrap(
        "status", "scaffolder", "--prefix", install.prefix, "--check", "--json", cwd=install.project, env=install.env
    )
    assert result.code == 9
    psql_rows(pg, install.db("scaffolder"), "update knex_migrations_lock set is_locked = 0")
    try:
        pending = knexwrap(
            "status", "scaffolder", "--prefix", install.prefix, "--check", cwd=install.project, env=install.env
        )
        assert pending.code == 10
    finally:
        psql_rows(pg, install.db("scaffolder"), "update knex_migrations_lock set is_locked = 1")


def test_unreachable_databases_are_rows_not_a_crash(install: Install) -> None:
    result = knexwrap(
        "status", "--prefix", install.prefix, "--json", cwd=install.project, env={**install.env, "POSTGRES_PORT": "1"}
    )
    assert result.code == 5  # nothing could be read: never a green result over nothing, --check or not
    states = {d["plugin"]: (d["state"], d["error"]) for d in result.json()["databases"]}
    assert states["catalog"] == ("unreachable", "connection refused by 127.0.0.1:1: is the database server running?")
    assert result.json()["notes"][0].startswith("could not list the databases of postgresql://")


def test_text_report(install: Install) -> None:
    result = knexwrap("status", "--prefix", install.prefix, cwd=install.project, env=install.env)
    assert result.code == 0
    lines = result.out.splitlines()
    env = install.env
    assert lines[0] == f"server postgresql://{env['POSTGRES_USER']}@{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}"
    headers = ["database", "set", "table", "applied", "pending", "missing", "last", "batch", "state"]
    assert lines[2].split() == headers
    assert "5 databases: 1 orphan, 1 in_sync, 1 absent, 1 locked, 1 ahead" in lines
    assert any("20250411000000_last_run.js" in line and SCHEDULER_TABLE in line for line in lines)
    assert result.err == ""  # no progress lines when stderr is not a terminal


def test_status_plugin_shows_every_set_of_its_database(install: Install) -> None:
    result = knexwrap("status", "catalog", "--prefix", install.prefix, "--json", cwd=install.project, env=install.env)
    doc = result.json()
    assert (doc["migrations_table"], doc["state"]) == ("knex_migrations", "in_sync")
    assert [(s["migrations_table"], s["state"]) for s in doc["other_sets"]] == [(SCHEDULER_TABLE, "ahead")]
    text = knexwrap("status", "catalog", "--prefix", install.prefix, cwd=install.project, env=install.env).out
    assert "other migration sets in this database:" in text
    assert f"{SCHEDULER_TABLE} (@backstage/backend-defaults 0.9.0): 2 applied, 0 pending, 1 missing" in text


def test_plugins_without_plugin_id_are_found_by_the_known_table(tmp_path: Path) -> None:
    project = make_project(tmp_path, {AUTH: "0.17.4"})
    result = knexwrap("current", "auth", "--client", "better-sqlite3", "--sqlite-dir", str(tmp_path), cwd=project)
    assert result.err == f"knexwrap: error: SQLite database {tmp_path}/auth.sqlite does not exist\n"


def test_plugins_lists_every_set_with_its_table_and_database(install: Install, pg: PgServer) -> None:
    result = knexwrap("plugins", "--prefix", install.prefix, "--json", cwd=install.project, env=install.env)
    assert result.code == 0, result.err
    rows = {(r["plugin"], r["package"], r["version"], r["migrations_table"]): r for r in result.json()["sets"]}
    server = f"postgresql://{pg.user}@{pg.host}:{pg.port}"
    assert set(rows) == {
        ("app", "@knexwrap-fixture/plugin-app-backend", "1.0.0", "knex_migrations"),
        ("auth", AUTH, "0.31.0", "knex_migrations"),
        ("catalog", CATALOG, "4.0.5", "knex_migrations"),
        ("scaffolder", SCAFFOLDER, "4.3.0", "knex_migrations"),
        ("*", DEFAULTS, "0.9.0", SCHEDULER_TABLE),
        ("*", DEFAULTS, "0.9.0", KEYS_TABLE),
    }
    assert rows[("catalog", CATALOG, "4.0.5", "knex_migrations")]["databases"] == [
        {"server": server, "database": f"{install.prefix}catalog", "schema": None}
    ]
    assert len(rows[("*", DEFAULTS, "0.9.0", SCHEDULER_TABLE)]["databases"]) == 4
    assert rows[("*", DEFAULTS, "0.9.0", SCHEDULER_TABLE)]["migrations_directory"].endswith("migrations/scheduler")


def test_doctor_finds_a_database_migrated_with_another_plugins_folder(install: Install, pg: PgServer) -> None:
    """The guide's own mistake: the catalog's migrations run against the app plugin's database."""
    create_database(pg, install.db("app"))
    try:
        ok(knex(install.project, pg, install.db("app"), "migrate:latest", migrations(install.project, CATALOG)))
        result = knexwrap("doctor", "--prefix", install.prefix, "--json", cwd=install.project, env=install.env)
        assert result.code == 17
        wrong = [f for f in result.json()["findings"] if f["problem"] == "wrong_folder"]
        assert [(f["database"], f["migrations_table"], len(f["files"]), f["fix"]) for f in wrong] == [
            (install.db("app"), "knex_migrations", 47, None)
        ]
        assert f"belong to {CATALOG}" in wrong[0]["message"]
    finally:
        drop_database(pg, install.db("app"))


def test_progress_on_a_terminal_and_json_unchanged(install: Install) -> None:
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    env = {**os.environ, **{k: v for k, v in install.env.items() if v is not None}}
    argv = [sys.executable, "-m", "knexwrap", "status", "--prefix", install.prefix]
    done = subprocess.run(argv, cwd=install.project, env=env, stdout=subprocess.PIPE, stderr=slave, timeout=60)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert done.returncode == 0
    # A transient count rewritten in place (one database after another, a server listing too), then erased.
    shown = seen.decode()
    assert "knexwrap: read 1 database…" in shown and shown.endswith("\r\x1b[K") and "\n" not in shown
    quiet = subprocess.run([*argv, "--json"], cwd=install.project, env=env, capture_output=True, timeout=60)
    assert quiet.stderr == b""
    validate(json.loads(quiet.stdout))
