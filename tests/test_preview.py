"""--sql against real servers: the SQL of a change, with the live database proved unchanged and no scratch left.

The live database is compared before/after by its catalog (tables, columns) and a digest of every table's
rows; the server's database list is compared too, so a scratch database left behind fails the test.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from backstage import APP as APP_BACKEND
from backstage import CATALOG, make_project
from helpers import PROJECT, knexwrap, write_migration
from servers import MariaServer, PgServer, mysql_rows, pg_env, psql_rows, unique_name

from knexwrap.upgrade.scratch import SCRATCH_PREFIX

APP = ["20211229105307_init.js", "20240113144027_assets-namespace.js"]
DROP_NAMESPACE_PG = 'alter table "static_assets_cache" drop column "namespace"'
LAST_CATALOG = "20261013000000_final_entity_generations.js"


def _ours(name: str, pid: int | None) -> bool:
    """A scratch database of knexwrap run in process PID (default: this one, where CliRunner runs it): other
    sessions on the shared servers make and drop scratch databases of their own at the same time."""
    return name.startswith(f"{SCRATCH_PREFIX}{os.getpid() if pid is None else pid}_")


def pg_databases(pg: PgServer, pid: int | None = None) -> set[str]:
    """knexwrap's scratch databases of process PID on the server (scratch.py names them with the pid)."""
    sql = f"select datname from pg_database where datname like '{SCRATCH_PREFIX}%'"
    return {r[0] for r in psql_rows(pg, "postgres", sql) if _ours(r[0], pid)}


def maria_databases(m: MariaServer, pid: int | None = None) -> list[tuple[str, ...]]:
    return [r for r in mysql_rows(m, None, f"show databases like '{SCRATCH_PREFIX}%'") if _ours(r[0], pid)]


def pg_snapshot(pg: PgServer, db: str) -> dict[str, Any]:
    """Every column (with type) and a digest of every table's rows: any change to the live database shows."""
    cols = psql_rows(
        pg,
        db,
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'public' order by 1, 2",
    )
    tables = sorted({c[0] for c in cols})
    rows = {
        t: psql_rows(
            pg, db, f"select count(*), md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from \"{t}\" x"
        )
        for t in tables
    }
    indexes = psql_rows(pg, db, "select indexname from pg_indexes where schemaname = 'public' order by 1")
    return {"columns": cols, "rows": rows, "indexes": indexes}


def maria_snapshot(m: MariaServer, db: str) -> dict[str, Any]:
    cols = mysql_rows(
        m,
        None,
        "select table_name, column_name, column_type from information_schema.columns "
        f"where table_schema = '{db}' order by 1, 2",
    )
    rows = {t: mysql_rows(m, db, f"select count(*) from `{t}`") for t in sorted({c[0] for c in cols})}
    return {"columns": cols, "rows": rows}


def statements(document: dict[str, Any], kind: str = "migration") -> list[str]:
    [entry] = document["sql"]
    return [s["sql"] for m in entry["migrations"] for s in m["statements"] if s["kind"] == kind]


@pytest.fixture
def app_pg(pg: PgServer, pg_database: str) -> list[str]:
    """The fixture app plugin fully applied, with rows in the table whose column the revert drops."""
    args = ["--database", pg_database]
    assert knexwrap("latest", "app", *args, "--yes", env=pg_env(pg)).code == 0
    insert = "insert into static_assets_cache (path, content, namespace) values ('a', 'x', 'n'), ('b', 'y', 'm')"
    psql_rows(pg, pg_database, insert)
    return args


@pytest.fixture(scope="module")
def app_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real @backstage/plugin-app-backend: its assets-namespace down deletes rows, then drops a column."""
    return make_project(tmp_path_factory.mktemp("app"), {APP_BACKEND: "0.5.20"})


REAL_DELETE = {"sql": 'delete from "static_assets_cache" where not "namespace" = $1', "bindings": ["default"]}
REAL_DOWN_PG = [
    REAL_DELETE["sql"],
    'alter table "static_assets_cache" drop constraint "static_assets_cache_pkey"',
    'alter table "static_assets_cache" drop column "namespace"',
    'alter table "static_assets_cache" add constraint "static_assets_cache_pkey" primary key ("path")',
]


def test_pg_sql_of_reverting_real_assets_namespace(pg: PgServer, pg_database: str, app_project: Path) -> None:
    args, env = ["app", "--database", pg_database], pg_env(pg)
    assert knexwrap("latest", *args, "--yes", cwd=app_project, env=env).code == 0
    rows = "('a', 'x', 'default'), ('b', 'y', 'other'), ('c', 'z', 'other')"
    psql_rows(pg, pg_database, f"insert into static_assets_cache (path, content, namespace) values {rows}")
    before, databases = pg_snapshot(pg, pg_database), pg_databases(pg)
    result = knexwrap("down", *args, APP[1], "--sql", "--dry-run", "--json", cwd=app_project, env=env)
    assert result.code == 0, result.err
    document = result.json()
    [entry] = document["sql"]
    assert (document["command"], entry["action"], entry["method"]) == ("down", "revert", "schema-only copy")
    assert entry["package"] == APP_BACKEND
    [migration] = entry["migrations"]
    assert (migration["name"], migration["direction"], migration["error"]) == (APP[1], "down", None)
    assert ".whereNot('namespace', 'default');" in migration["source"]
    assert statements(document) == REAL_DOWN_PG
    assert {"sql": REAL_DELETE["sql"], "bindings": ["default"], "kind": "migration"} in migration["statements"]
    assert 'delete from "knex_migrations" where "name" = $1' in statements(document, "bookkeeping")
    assert migration["drops"] == [
        {"table": "static_assets_cache", "column": "namespace", "live_rows": 3, "live_values": 3}
    ]
    assert pg_snapshot(pg, pg_database) == before
    assert pg_databases(pg) == databases

    text = knexwrap("down", *args, "--sql", "--dry-run", cwd=app_project, env=env)
    assert text.code == 0
    assert f"{APP[1]} (down)\n  source:\n    async function down(knex) {{" in text.out
    assert (
        "    1. BEGIN;\n"
        f'    2. {REAL_DELETE["sql"]}  -- bindings: ["default"]\n'
        f"    3. {REAL_DOWN_PG[1]}\n    4. {REAL_DOWN_PG[2]}\n    5. {REAL_DOWN_PG[3]}\n"
        "    6. COMMIT;\n"
        "  drops column static_assets_cache.namespace: the live table has 3 rows, 3 of them with a value\n"
    ) in text.out
    assert pg_snapshot(pg, pg_database) == before
    assert pg_databases(pg) == databases


def test_pg_preview_then_question_declined_changes_nothing(pg: PgServer, pg_database: str, app_pg: list[str]) -> None:
    before, databases = pg_snapshot(pg, pg_database), pg_databases(pg)
    result = knexwrap("rollback", "app", *app_pg, "--sql", env=pg_env(pg), input="n\n")
    assert result.code == 14
    assert "SQL to revert 2 migrations of app" in result.err
    assert 'drop table "static_assets_cache"' in result.err
    assert "About to revert 2 migrations" in result.err
    assert pg_snapshot(pg, pg_database) == before
    assert pg_databases(pg) == databases

    applied = knexwrap("down", "app", *app_pg, "--sql", "--yes", env=pg_env(pg))
    assert applied.code == 0, applied.err
    assert DROP_NAMESPACE_PG in applied.err
    assert psql_rows(pg, pg_database, "select name from knex_migrations") == [(APP[0],)]


def test_pg_apply_preview_of_latest(pg: PgServer, pg_database: str) -> None:
    databases = pg_databases(pg)
    result = knexwrap("latest", "app", "--database", pg_database, "--sql", "--dry-run", "--json", env=pg_env(pg))
    assert result.code == 0, result.err
    sql = statements(result.json())
    assert sql[0].startswith('create table "static_assets_cache"')
    assert 'alter table "static_assets_cache" add column "namespace" varchar(255) not null default \'default\'' in sql
    assert psql_rows(pg, pg_database, "select count(*) from pg_tables where schemaname = 'public'") == [("0",)]
    assert pg_databases(pg) == databases


def test_pg_failing_down_drops_the_scratch_database(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write_migration(folder, "20240101000000_a.js", "await knex.schema.createTable('a', t => t.increments())")
    write_migration(
        folder,
        "20240102000000_b.js",
        "await knex.schema.table('a', t => t.string('b'))",
        "for (const r of await knex('a').select('id')) { await knex('a').where(r).update({ b: 'x' }); } "
        "await knex.schema.table('a', t => t.dropColumn('b')); throw new Error('down refuses')",
    )
    args = [str(folder), "--database", pg_database]
    assert knexwrap("latest", *args, "--yes", env=pg_env(pg)).code == 0
    before, databases = pg_snapshot(pg, pg_database), pg_databases(pg)
    result = knexwrap("down", *args, "--sql", "--dry-run", env=pg_env(pg))
    assert result.code == 12
    assert '  2. select "id" from "a"\n    3. alter table "a" drop column "b"\n' in result.out
    assert "  note: reads data: the copy holds no rows, so statements that depend on" in result.out
    assert "  FAILS: down refuses" in result.out
    assert "20240102000000_b.js failed in the preview (down refuses)" in result.err
    assert pg_snapshot(pg, pg_database) == before
    assert pg_databases(pg) == databases


def test_pg_role_without_createdb_is_offered_live(pg: PgServer, pg_database: str) -> None:
    role = unique_name("kw_nocreate")
    psql_rows(pg, "postgres", f'create role "{role}" login nocreatedb')
    try:
        psql_rows(pg, "postgres", f'alter database "{pg_database}" owner to "{role}"')
        env = {**pg_env(pg), "POSTGRES_USER": role}
        args = ["--database", pg_database]
        assert knexwrap("latest", "app", *args, "--yes", env=env).code == 0
        databases = pg_databases(pg)
        refused = knexwrap("down", "app", *args, "--sql", "--dry-run", env=env)
        assert refused.code == 18
        assert f"{role} may not create the scratch database" in refused.err
        assert "--sql=live previews it on the live database" in refused.err
        before = pg_snapshot(pg, pg_database)
        declined = knexwrap("down", "app", *args, "--sql=live", "--dry-run", env=env, input="n\n")
        assert declined.code == 14
        live = knexwrap("down", "app", *args, "--sql=live", "--dry-run", "--json", env=env, input="y\n")
        assert live.code == 0, live.err
        assert live.json()["sql"][0]["method"] == "live, rolled back"
        assert statements(live.json()) == [DROP_NAMESPACE_PG]
        assert pg_snapshot(pg, pg_database) == before
        assert pg_databases(pg) == databases
    finally:
        psql_rows(pg, "postgres", f'alter database "{pg_database}" owner to postgres')
        psql_rows(pg, pg_database, f'reassign owned by "{role}" to postgres')
        psql_rows(pg, pg_database, f'drop owned by "{role}"')
        psql_rows(pg, "postgres", f'drop role "{role}"')


def test_sqlite_sql_of_reverting_real_assets_namespace(tmp_path: Path, app_project: Path) -> None:
    args = ["app", "--client", "better-sqlite3", "--sqlite-dir", str(tmp_path)]
    assert knexwrap("latest", *args, "--yes", cwd=app_project).code == 0
    database = tmp_path / "app.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("insert into static_assets_cache (path, content, namespace) values ('a', 'x', 'other')")
    digest = hashlib.sha256(database.read_bytes()).hexdigest()
    result = knexwrap("down", *args, "--sql", "--dry-run", "--json", cwd=app_project)
    assert result.code == 0, result.err
    [entry] = result.json()["sql"]
    assert entry["method"] == "copy of the file"
    sql = statements(result.json())
    assert sql[0] == "delete from `static_assets_cache` where not `namespace` = ?"
    assert 'DROP TABLE "static_assets_cache"' in sql
    assert any(s.startswith("CREATE TABLE `_knex_temp_alter") for s in sql)
    assert entry["migrations"][0]["drops"] == [
        {"table": "static_assets_cache", "column": "namespace", "live_rows": 1, "live_values": 1}
    ]
    assert hashlib.sha256(database.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite"]


def test_mariadb_sql_of_reverting_real_assets_namespace(mariadb: MariaServer, app_project: Path) -> None:
    db = unique_name("kw_preview")
    mysql_rows(mariadb, None, f"create database `{db}`")
    env = {"KNEXWRAP_CLIENT": "mysql2"}
    args = ["app", "--host", mariadb.host, "--port", str(mariadb.port), "--user", mariadb.user, "--database", db]
    try:
        assert knexwrap("latest", *args, "--yes", cwd=app_project, env=env).code == 0
        mysql_rows(mariadb, db, "insert into static_assets_cache (path, content, namespace) values ('a', 'x', 'o')")
        before, databases = maria_snapshot(mariadb, db), maria_databases(mariadb)
        result = knexwrap("down", *args, "--sql", "--dry-run", "--json", cwd=app_project, env=env)
        assert result.code == 0, result.err
        [entry] = result.json()["sql"]
        assert statements(result.json()) == [
            "delete from `static_assets_cache` where not `namespace` = ?",
            "drop index static_assets_cache_path_idx on static_assets_cache;",
            "alter table `static_assets_cache` drop `namespace`",
            "create unique index static_assets_cache_path_idx on static_assets_cache(path(254));",
        ]
        assert entry["migrations"][0]["drops"][0]["live_rows"] == 1
        assert any("MySQL commits each DDL statement at once" in n for n in entry["notes"])
        assert knexwrap("down", *args, "--sql=live", "--dry-run", "--yes", cwd=app_project, env=env).code == 18
        assert maria_snapshot(mariadb, db) == before
        assert maria_databases(mariadb) == databases
    finally:
        mysql_rows(mariadb, None, f"drop database if exists `{db}`")


@pytest.fixture(scope="module")
def catalog_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("catalog"), {CATALOG: "4.0.5"})


def test_sqlite_sql_of_reverting_a_real_catalog_migration(tmp_path: Path, catalog_project: Path) -> None:
    args = [
        "catalog",
        "--client",
        "better-sqlite3",
        "--sqlite-dir",
        str(tmp_path),
        "--project-dir",
        str(catalog_project),
    ]
    assert knexwrap("latest", *args, "--yes").code == 0
    digest = hashlib.sha256((tmp_path / "catalog.sqlite").read_bytes()).hexdigest()
    result = knexwrap("down", *args, "--sql", "--dry-run", "--json")
    assert result.code == 0, result.err
    sql = statements(result.json())
    assert "drop table if exists `catalog_generation_counter`" in sql
    assert hashlib.sha256((tmp_path / "catalog.sqlite").read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.sqlite"]


def test_mariadb_sql_of_reverting_a_real_catalog_migration(mariadb: MariaServer, catalog_project: Path) -> None:
    db = unique_name("kw_preview_catalog")
    mysql_rows(mariadb, None, f"create database `{db}`")
    env = {"KNEXWRAP_CLIENT": "mysql2"}
    args = ["catalog", "--host", mariadb.host, "--port", str(mariadb.port), "--user", mariadb.user, "--database", db]
    args += ["--project-dir", str(catalog_project)]
    try:
        latest = knexwrap("latest", *args, "--yes", env=env)
        assert latest.code == 0, latest.err
        before, databases = maria_snapshot(mariadb, db), maria_databases(mariadb)
        result = knexwrap("down", *args, "--sql", "--dry-run", "--json", env=env)
        assert result.code == 0, result.err
        sql = statements(result.json())
        assert "alter table `final_entities` drop `generation`" in sql
        assert maria_snapshot(mariadb, db) == before
        assert maria_databases(mariadb) == databases
    finally:
        mysql_rows(mariadb, None, f"drop database if exists `{db}`")


def test_pg_plan_sql_shows_every_revert_of_a_downgrade(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """catalog 1.24.0 upgraded to 4.0.5: `plan --sql` shows the SQL of the 17 reverts, newest first; `down --sql`
    the SQL of reverting the newest real catalog migration."""
    old = make_project(tmp_path / "old", {CATALOG: "1.24.0"})
    new = make_project(tmp_path / "new", {CATALOG: "4.0.5"})
    args = ["--prefix", pg_database + "_"]
    env = pg_env(pg)
    psql_rows(pg, "postgres", f'alter database "{pg_database}" rename to "{pg_database}_catalog"')
    try:
        assert knexwrap("latest", "catalog", *args, "--yes", cwd=old, env=env).code == 0
        assert knexwrap("latest", "catalog", *args, "--yes", cwd=new, env=env).code == 0
        before, databases = pg_snapshot(pg, f"{pg_database}_catalog"), pg_databases(pg)
        result = knexwrap("plan", "--to", str(old), *args, "--sql", "--json", cwd=new, env=env)
        assert result.code == 0, result.err
        document = result.json()
        assert document["command"] == "plan"
        [entry] = document["sql"]
        [planned] = [s for s in document["sets"] if s["revert"]]
        assert [m["name"] for m in entry["migrations"]] == planned["revert"]
        assert len(planned["revert"]) == 17 and planned["revert"][0] == LAST_CATALOG
        assert all(m["error"] is None for m in entry["migrations"])
        assert pg_snapshot(pg, f"{pg_database}_catalog") == before
        assert pg_databases(pg) == databases
        # The newest real catalog migration on its own: no transaction, DROP INDEX CONCURRENTLY, a column and a table.
        result = knexwrap("down", "catalog", *args, "--sql", "--dry-run", "--json", cwd=new, env=env)
        assert result.code == 0, result.err
        [migration] = result.json()["sql"][0]["migrations"]
        assert (migration["name"], migration["transaction"]) == (LAST_CATALOG, False)
        sql = statements(result.json())
        assert 'DROP INDEX CONCURRENTLY IF EXISTS "final_entities_generation_idx"' in sql
        assert 'alter table "final_entities" drop column "generation"' in sql
        assert 'drop table if exists "catalog_generation_counter"' in sql
        drops = {(d["table"], d["column"]) for d in migration["drops"]}
        assert drops == {("final_entities", "generation"), ("catalog_generation_counter", None)}
        assert any("without a transaction" in n for n in migration["notes"])
        live = knexwrap("down", "catalog", *args, "--sql=live", "--dry-run", "--yes", cwd=new, env=env)
        assert live.code == 18 and "runs without a transaction" in live.err
        text = knexwrap("downgrade", "--to", str(old), *args, "--sql", "--dry-run", cwd=new, env=env)
        assert text.code == 0, text.err
        assert "SQL to revert 17 migrations of catalog" in text.out
        assert f"{LAST_CATALOG} (down)" in text.out
        assert pg_snapshot(pg, f"{pg_database}_catalog") == before
    finally:
        psql_rows(pg, "postgres", f'alter database "{pg_database}_catalog" rename to "{pg_database}"')


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_pg_interrupt_drops_the_scratch_database(
    pg: PgServer, pg_database: str, tmp_path: Path, signum: signal.Signals
) -> None:
    """Ctrl-C (or a SIGTERM) while the plan runs on the copy: the scratch database is dropped on the way out."""
    folder = tmp_path / "migrations"
    write_migration(folder, "20240101000000_a.js", "await knex.schema.createTable('a', t => t.increments())", "")
    write_migration(folder, "20240102000000_slow.js", "", "await knex.raw('select pg_sleep(60)')")
    args = [str(folder), "--database", pg_database]
    assert knexwrap("latest", *args, "--yes", env=pg_env(pg)).code == 0
    before, databases = pg_snapshot(pg, pg_database), pg_databases(pg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
    env.update({k: v for k, v in pg_env(pg).items() if v is not None})
    command = [sys.executable, "-m", "knexwrap", "down", *args, "--sql", "--dry-run"]
    running = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _sleeping_on_a_copy(pg) and time.monotonic() < deadline and running.poll() is None:
            time.sleep(0.2)
        assert _sleeping_on_a_copy(pg), running.communicate(timeout=5)
        running.send_signal(signum)
        _, err = running.communicate(timeout=60)
    finally:
        running.kill()
    # click turns the interrupt into its Abort, which knexwrap reports as "cancelled" (14); 130 if it reaches main.
    assert running.returncode in (14, 130), err
    assert err.endswith(("knexwrap: error: cancelled: nothing was changed\n", "knexwrap: error: interrupted\n"))
    assert pg_databases(pg, running.pid) == set()  # the scratch database of that knexwrap process is gone
    assert pg_databases(pg) == databases
    assert pg_snapshot(pg, pg_database) == before


def _sleeping_on_a_copy(pg: PgServer) -> bool:
    sql = f"select 1 from pg_stat_activity where datname like '{SCRATCH_PREFIX}%' and query like '%pg_sleep%'"
    return bool(psql_rows(pg, "postgres", sql))


def test_sqlite_preview_of_a_database_not_created_yet_creates_nothing(tmp_path: Path) -> None:
    result = knexwrap(
        "latest", "app", "--client", "better-sqlite3", "--sqlite-dir", str(tmp_path), "--sql", "--dry-run"
    )
    assert result.code == 0, result.err
    assert "2. create table `static_assets_cache`" in result.out
    assert list(tmp_path.iterdir()) == []
