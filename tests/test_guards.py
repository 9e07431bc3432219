"""Guards on every change verb: a running backend refuses a revert (unless --force), warns an apply; where no
check is possible the plan says so; on MySQL/MariaDB the plan warns that each DDL statement commits on its own."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import CATALOG, knexwrap, write_migration
from races import pg_fingerprint
from servers import MariaServer, PgServer, _psql_binary, mysql_rows, pg_env, psql_rows, unique_name


@pytest.fixture
def backend(pg: PgServer, pg_database: str) -> Iterator[None]:
    """A session named the way Backstage's backend names the catalog's connections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGAPPNAME"] = "backstage_plugin_catalog"
    sleep = ["-c", "select pg_sleep(120)"]
    session = subprocess.Popen(
        [_psql_binary(), "-X", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", pg_database, *sleep],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    named = "select count(*) from pg_stat_activity where application_name = 'backstage_plugin_catalog'"
    deadline = time.monotonic() + 20
    while psql_rows(pg, pg_database, named) == [("0",)]:
        assert time.monotonic() < deadline, "the backend session never connected"
        time.sleep(0.1)
    try:
        yield
    finally:
        session.kill()
        session.wait()


@pytest.mark.usefixtures("backend")
def test_a_running_backend_refuses_down_and_rollback(pg: PgServer, pg_database: str) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    assert knexwrap("up", "catalog", *db, "--yes", env=env).code == 0  # apply verbs go on, with a warning
    latest = knexwrap("latest", "catalog", *db, "--yes", env=env)
    assert latest.code == 0
    assert "warning: backstage_plugin_catalog from " in latest.err
    assert "a Backstage backend is running beside this change" in latest.err
    before = pg_fingerprint(pg, pg_database)
    dry = knexwrap("down", "catalog", *db, "--dry-run", "--json", env=env)  # shows the plan and the refusal
    assert (dry.code, dry.json()["planned"]) == (0, CATALOG[3:])
    assert any("the run itself would be refused (exit 16)" in w for w in dry.json()["warnings"])
    for verb in (["down", "catalog"], ["rollback", "catalog"]):
        refused = knexwrap(*verb, *db, "--yes", env=env)
        assert refused.code == 16, refused.err
        assert refused.err.startswith("knexwrap: error: backstage_plugin_catalog from ")
        assert refused.err.rstrip().endswith("nothing was changed (--force to go on)")
        assert pg_fingerprint(pg, pg_database) == before
    forced = knexwrap("down", "catalog", *db, "--yes", "--force", env=env)
    assert forced.code == 0
    assert [r[0] for r in psql_rows(pg, pg_database, "select name from knex_migrations order by id")] == CATALOG[:3]


def test_sqlite_plan_says_no_backend_check_is_possible(tmp_path: Path) -> None:
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path)]
    assert knexwrap("latest", "catalog", *opts, "--yes").code == 0
    result = knexwrap("rollback", "catalog", *opts, "--yes")
    assert result.code == 0
    assert (
        "warning: knexwrap cannot see whether a Backstage backend uses this SQLite database: stop it first"
        in result.err
    )


def test_mariadb_plan_warns_that_ddl_commits_on_its_own(mariadb: MariaServer) -> None:
    name = unique_name("kw_maria")
    mysql_rows(mariadb, None, f"create database `{name}`")
    try:
        where = ["--client", "mysql2", "--host", mariadb.host, "--port", str(mariadb.port), "--user", mariadb.user]
        result = knexwrap("latest", "app", *where, "--database", name, "--dry-run")
        assert result.code == 0, result.err
        plan = knexwrap("latest", "app", *where, "--database", name, input="n\n")
        assert plan.code == 14
        assert (
            "warning: MySQL/MariaDB commits each DDL statement on its own: a migration that fails part way leaves "
            "what it created or dropped behind, whatever its transaction"
        ) in plan.err
        assert mysql_rows(mariadb, name, "show tables") == []
    finally:
        mysql_rows(mariadb, None, f"drop database `{name}`")


def test_lock_timeout_stops_a_migration_waiting_for_a_lock(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """--lock-timeout: an ALTER TABLE waiting behind another session's lock gives up instead of queueing for ever."""
    psql_rows(pg, pg_database, "create table busy (id int)")
    folder = tmp_path / "migrations"
    write_migration(folder, "20240101000000_alter.js", "await knex.schema.alterTable('busy', t => t.integer('x'));")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    hold = ["-c", "begin; lock table busy in access exclusive mode; select pg_sleep(30); commit;"]
    holder = subprocess.Popen(
        [_psql_binary(), "-X", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", pg_database, *hold],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        waiting = "select count(*) from pg_locks where relation = 'busy'::regclass and granted"
        deadline = time.monotonic() + 20
        while psql_rows(pg, pg_database, waiting) == [("0",)]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        started = time.monotonic()
        result = knexwrap(
            "latest", str(folder), "--database", pg_database, "--yes", "--lock-timeout", "1", env=pg_env(pg)
        )
        assert time.monotonic() - started < 15
    finally:
        holder.kill()
        holder.wait()
    assert result.code == 12, result.err
    assert "canceling statement due to lock timeout" in result.err
    assert "applied before it stopped: none" in result.err
    assert psql_rows(pg, pg_database, "select count(*) from knex_migrations") == [("0",)]


def test_a_mariadb_migration_failing_after_ddl_names_the_table_left_behind(
    mariadb: MariaServer, tmp_path: Path
) -> None:
    name = unique_name("kw_maria")
    mysql_rows(mariadb, None, f"create database `{name}`")
    folder = tmp_path / "migrations"
    write_migration(
        folder,
        "20240101000000_half.js",
        "await knex.schema.createTable('left_behind', t => t.increments()); throw new Error('boom after DDL');",
    )
    try:
        where = ["--client", "mysql2", "--host", mariadb.host, "--port", str(mariadb.port), "--user", mariadb.user]
        result = knexwrap("latest", str(folder), *where, "--database", name, "--yes")
        assert result.code == 12, result.err
        assert result.err.splitlines()[-1] == (
            'knexwrap: error: migration "20240101000000_half.js" failed: boom after DDL; applied before it stopped: '
            "none; left behind by the failed migration: table left_behind created (MySQL/MariaDB commits each DDL "
            "statement on its own): undo it by hand before running again"
        )
        assert ("left_behind",) in mysql_rows(mariadb, name, "show tables")  # the database says so, too
    finally:
        mysql_rows(mariadb, None, f"drop database `{name}`")
