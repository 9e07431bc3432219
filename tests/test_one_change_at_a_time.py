"""One change at a time per migration set: knexwrap's own lock, and knex's lock checked, never waited on.

Races are deterministic: run A stops at its "locked" pause point (tests/races.py) while run B tries.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import time
from pathlib import Path

from helpers import CATALOG, PROJECT, knexwrap, sqlite_rows, write_migration
from races import paused, pg_fingerprint, sqlite_fingerprint
from servers import PgServer, pg_env, psql_rows


def test_two_changes_on_postgres_exactly_one_proceeds(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    first = paused(["latest", "catalog", *db, "--yes"], tmp_path / "a", env, stop_at=("locked",))
    first.wait_at("locked")
    before = pg_fingerprint(pg, pg_database)
    started = time.monotonic()
    second = knexwrap("latest", "catalog", *db, "--yes", env=env)
    assert time.monotonic() - started < 10  # refused at once, not after waiting
    assert second.code == 9
    assert second.err.splitlines()[-1].startswith(
        f"knexwrap: error: another knexwrap change of knex_migrations in postgresql://{pg.user}@{pg.host}:"
        f"{pg.port}/{pg_database} is running, held by knexwrap lock "
    )
    assert f"pid {first.process.pid} from {pg.host} (since " in second.err
    assert pg_fingerprint(pg, pg_database) == before
    first.release("locked")
    code, _, err = first.finish()
    assert code == 0, err
    assert [r[0] for r in psql_rows(pg, pg_database, "select name from knex_migrations order by id")] == CATALOG
    # The lock went with the change: the next one takes it.
    assert knexwrap("rollback", "catalog", *db, "--yes", env=env).code == 0


def test_two_changes_on_sqlite_exactly_one_proceeds(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(folder)]
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    database = folder / "catalog.sqlite"
    first = paused(["latest", "catalog", *opts, "--yes"], tmp_path / "a", {}, stop_at=("locked",))
    first.wait_at("locked")
    before = sqlite_fingerprint(database)
    second = knexwrap("latest", "catalog", *opts, "--yes")
    assert second.code == 9
    assert second.err.splitlines()[-1] == (
        f"knexwrap: error: another knexwrap change of knex_migrations in {database} is running, held by knexwrap "
        f"latest catalog (pid {first.process.pid} on {socket.gethostname()}, since "
        + second.err.split(", since ", 1)[1].split(")", 1)[0]
        + "): nothing was changed"
    )
    assert sqlite_fingerprint(database) == before
    first.release("locked")
    code, _, err = first.finish()
    assert code == 0, err
    assert [r[0] for r in sqlite_rows(database, "select name from knex_migrations order by id")] == CATALOG


def test_a_knex_run_holding_its_lock_refuses_at_once(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """A raw knex migration in its transaction holds knex's lock row: knexwrap says so instead of waiting on it."""
    folder = tmp_path / "migrations"
    write_migration(folder, "20240101000000_slow.js", "await knex.raw('select pg_sleep(6)');")
    url = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg_database}"
    dirs = ["--migrations-directory", str(folder)]
    raw = subprocess.Popen(
        [str(PROJECT / "node_modules/.bin/knex"), "migrate:latest", "--client", "pg", "--connection", url, *dirs],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        sleeping = "select count(*) from pg_stat_activity where query like '%pg_sleep(6)%' and pid <> pg_backend_pid()"
        while psql_rows(pg, pg_database, sleeping) == [("0",)]:
            assert time.monotonic() < deadline, "the raw knex run never started its migration"
            time.sleep(0.1)
        write_migration(folder, "20240102000000_next.js", "await knex.raw('select 1');")
        started = time.monotonic()
        result = knexwrap("latest", str(folder), "--database", pg_database, "--yes", env=pg_env(pg))
        assert time.monotonic() - started < 5
        assert result.code == 9
        assert "is taking knex's lock of knex_migrations" in result.err
        assert "knexwrap does not wait on it: nothing was changed" in result.err
    finally:
        raw.communicate(timeout=30)
    names = [r[0] for r in psql_rows(pg, pg_database, "select name from knex_migrations order by id")]
    assert names == ["20240101000000_slow.js"]  # the raw run's file only: knexwrap added nothing


def test_a_busy_sqlite_file_is_not_called_knex_lock(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(folder)]
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    database = folder / "catalog.sqlite"
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process writing (a backend mid-transaction)
    try:
        before = sqlite_fingerprint(database)
        result = knexwrap("latest", "catalog", *opts, "--yes")
        assert result.code == 9
        assert result.err.splitlines()[-1] == (
            f"knexwrap: error: the SQLite file {database} is busy: another process is writing to it (database is "
            "locked); this is not knex's migration lock (do not unlock): stop that process or wait for it, then "
            "run again"
        )
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert sqlite_fingerprint(database) == before


def test_duplicate_lock_rows_are_diagnosed_and_cleared(pg: PgServer, pg_database: str) -> None:
    """Two first runs raced and left two free rows (knex #3538): knex says "locked" for ever; knexwrap says why."""
    env, db = pg_env(pg), ["--database", pg_database]
    assert knexwrap("up", "catalog", *db, "--yes", env=env).code == 0
    psql_rows(pg, pg_database, "insert into knex_migrations_lock (is_locked) values (0)")
    status = knexwrap("status", "catalog", *db, "--json", env=env).json()
    assert (status["state"], status["locked"], status["lock_rows"]) == ("locked", True, 2)
    text = knexwrap("status", "catalog", *db, env=env)
    assert "lock: 2 rows in knex_migrations_lock (two first runs raced): knex says locked for ever" in text.out
    before = pg_fingerprint(pg, pg_database)
    refused = knexwrap("latest", "catalog", *db, "--yes", env=env)
    assert refused.code == 9
    assert pg_fingerprint(pg, pg_database) == before
    unlocked = knexwrap("unlock", "catalog", *db, "--yes", env=env)
    assert unlocked.code == 0, unlocked.err
    assert psql_rows(pg, pg_database, "select count(*), sum(is_locked) from knex_migrations_lock") == [("1", "0")]
    assert knexwrap("latest", "catalog", *db, "--yes", env=env).code == 0
