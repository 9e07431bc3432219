"""Every command against the real knex CLI and a real PostgreSQL, checked inside the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import PLUGINS, knexwrap, write_migration
from servers import PgServer, pg_env, psql_rows

APP = ["20211229105307_init.js", "20240113144027_assets-namespace.js"]


def rows(pg: PgServer, db: str, table: str = "knex_migrations") -> list[tuple[str, ...]]:
    return psql_rows(pg, db, f"select name, batch from {table} order by id")


def columns(pg: PgServer, db: str, table: str) -> set[str]:
    sql = f"select column_name from information_schema.columns where table_name = '{table}'"
    return {r[0] for r in psql_rows(pg, db, sql)}


def test_manual_rollback_walkthrough(pg: PgServer, pg_database: str) -> None:
    """Backstage's "Manual Rollback using Knex" guide, done with knexwrap on the app plugin."""
    env, db = pg_env(pg), ["--database", pg_database]
    assert knexwrap("latest", "app", *db, "--yes", env=env).code == 0
    where = f"app (@knexwrap-fixture/plugin-app-backend) in postgresql://{pg.user}@{pg.host}:{pg.port}/{pg_database}"

    before = knexwrap("status", "app", *db, env=env)
    assert before.code == 0
    assert before.out == (
        f"{where}, table knex_migrations\n\n"
        "migration                           state\n"
        "----------------------------------  -------\n"
        "20211229105307_init.js              applied\n"
        "20240113144027_assets-namespace.js  applied\n\n"
        "2 applied, 0 pending, 0 missing; current version 20240113144027\n"
    )
    assert knexwrap("status", "app", *db, "--json", env=env).json()["counts"] == {
        "applied": 2,
        "pending": 0,
        "missing": 0,
    }

    down = knexwrap("down", "app", "20240113144027_assets-namespace.js", *db, "--yes", env=env)
    assert down.code == 0
    # A revert backs the database up first (tests/test_backup.py): its size line, then where the backup went.
    assert down.err.startswith(
        f"About to revert 1 migration of {where}, table knex_migrations:\n  20240113144027_assets-namespace.js\n"
        "backup: "
    )
    assert f"knexwrap: backup of postgresql://{pg.user}@{pg.host}:{pg.port}/{pg_database} written to " in down.err
    assert rows(pg, pg_database) == [(APP[0], "1")]
    assert "namespace" not in columns(pg, pg_database, "static_assets_cache")

    after = knexwrap("status", "app", *db, "--json", env=env).json()
    assert [(m["name"], m["state"], m["batch"]) for m in after["migrations"]] == [
        (APP[0], "applied", 1),
        (APP[1], "pending", None),
    ]
    assert after["counts"] == {"applied": 1, "pending": 1, "missing": 0}

    current = knexwrap("current", "app", *db, env=env)
    assert current.out == f"{where}, table knex_migrations\ncurrent version: 20211229105307\n"
    assert knexwrap("current", "app", *db, "--json", env=env).json()["current_version"] == "20211229105307"


def test_database_name_comes_from_the_plugin_id(pg: PgServer) -> None:
    """No --database: backstage_plugin_<id>, and a missing one is said as such, never created."""
    result = knexwrap("current", "app", "--prefix", "kw_absent_prefix_", env=pg_env(pg))
    assert result.code == 7
    assert result.err == 'knexwrap: error: database "kw_absent_prefix_app" does not exist\n'
    # status says it as a state, like the whole-install status, with --check 10 (not 7).
    status = knexwrap("status", "app", "--prefix", "kw_absent_prefix_", "--json", env=pg_env(pg))
    assert (status.code, status.json()["database"], status.json()["state"]) == (0, "kw_absent_prefix_app", "absent")
    assert knexwrap("status", "app", "--prefix", "kw_absent_prefix_", "--check", env=pg_env(pg)).code == 10
    assert not psql_rows(pg, "postgres", "select 1 from pg_database where datname = 'kw_absent_prefix_app'")


def test_latest_up_down_rollback_unlock_change_the_database(pg: PgServer, pg_database: str) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    assert knexwrap("up", "catalog", *db, "--yes", env=env).code == 0
    assert rows(pg, pg_database) == [("20240101000000_init.js", "1")]
    assert knexwrap("latest", "catalog", *db, "--yes", env=env).code == 0
    assert [r[1] for r in rows(pg, pg_database)] == ["1", "2", "2", "2"]
    rolled = knexwrap("rollback", "catalog", *db, "--yes", "--json", env=env).json()
    assert rolled["done"] == [
        "20240401000000_search.js",
        "20240301000000_refresh_state.js",
        "20240201000000_locations.js",
    ]
    assert rows(pg, pg_database) == [("20240101000000_init.js", "1")]
    tables = {r[0] for r in psql_rows(pg, pg_database, "select tablename from pg_tables where schemaname = 'public'")}
    assert "locations" not in tables and "entities" in tables
    psql_rows(pg, pg_database, "update knex_migrations_lock set is_locked = 1")
    locked = knexwrap("latest", "catalog", *db, "--yes", env=env)
    assert locked.code == 9
    assert rows(pg, pg_database) == [("20240101000000_init.js", "1")]
    assert knexwrap("unlock", "catalog", *db, "--yes", env=env).code == 0
    assert psql_rows(pg, pg_database, "select is_locked from knex_migrations_lock") == [("0",)]
    assert knexwrap("down", "catalog", *db, "--yes", env=env).code == 0
    assert rows(pg, pg_database) == []


def test_database_ahead_of_its_files(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """The downgrade case: status names the missing files instead of failing; changes refuse."""
    env, db = pg_env(pg), ["--database", pg_database]
    newer = tmp_path / "newer"
    for name in ("20240101000000_a.js", "20240102000000_b.js"):
        write_migration(newer, name, "await knex.raw('select 1');")
    assert knexwrap("latest", str(newer), *db, "--yes", env=env).code == 0
    older = tmp_path / "older"
    write_migration(older, "20240101000000_a.js", "await knex.raw('select 1');")
    status = knexwrap("status", str(older), *db, "--json", env=env)
    assert status.code == 0
    assert [(m["name"], m["state"]) for m in status.json()["migrations"]] == [
        ("20240101000000_a.js", "applied"),
        ("20240102000000_b.js", "missing"),
    ]
    assert status.json()["state"] == "ahead"
    refused = knexwrap("latest", str(older), *db, "--yes", env=env)
    assert refused.code == 8
    assert "20240102000000_b.js recorded but missing from the folder" in refused.err
    assert len(rows(pg, pg_database)) == 2


def test_a_failing_migration_is_reported_with_its_file_and_reason(
    pg: PgServer, pg_database: str, tmp_path: Path
) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    write_migration(tmp_path, "20240101000000_ok.js", "await knex.schema.createTable('kept', t => t.increments());")
    write_migration(tmp_path, "20240102000000_bad.js", "await knex.raw('select * from no_such_table');")
    result = knexwrap("latest", str(tmp_path), *db, "--yes", env=env)
    assert result.code == 12
    assert result.err.splitlines()[-1] == (
        'knexwrap: error: migration "20240102000000_bad.js" failed: select * from no_such_table - '
        'relation "no_such_table" does not exist; applied before it stopped: none'
    )
    # knex ran the batch in one transaction: nothing of it stays.
    assert rows(pg, pg_database) == []


def test_a_non_transactional_failure_reports_what_stayed(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    write_migration(tmp_path, "20240101000000_ok.js", "await knex.raw('select 1');")
    (tmp_path / "20240101000000_ok.js").write_text(
        (tmp_path / "20240101000000_ok.js").read_text() + "exports.config = { transaction: false };\n"
    )
    write_migration(tmp_path, "20240102000000_bad.js", "throw new Error('boom: fixture failure');")
    (tmp_path / "20240102000000_bad.js").write_text(
        (tmp_path / "20240102000000_bad.js").read_text() + "exports.config = { transaction: false };\n"
    )
    dry = knexwrap("latest", str(tmp_path), *db, "--dry-run", "--json", env=env)
    assert dry.json()["warnings"] == [
        "20240101000000_ok.js runs without a transaction: a failure can leave it half done",
        "20240102000000_bad.js runs without a transaction: a failure can leave it half done",
    ]
    result = knexwrap("latest", str(tmp_path), *db, "--yes", "--json", env=env)
    assert result.code == 12
    assert result.json()["error"]["code"] == "migration_failed"
    assert result.json()["error"]["message"] == (
        'migration "20240102000000_bad.js" failed: boom: fixture failure; '
        "applied before it stopped: 20240101000000_ok.js"
    )
    assert rows(pg, pg_database) == [("20240101000000_ok.js", "1")]


def test_a_migration_longer_than_the_timeout_is_not_cut(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """--timeout bounds connecting and reading: a 4 s migration under --timeout 2 finishes and is recorded."""
    env, db = pg_env(pg), ["--database", pg_database]
    write_migration(tmp_path, "20240101000000_slow.js", "await knex.raw('select pg_sleep(4)');")
    result = knexwrap("latest", str(tmp_path), *db, "--yes", "--timeout", "2", env=env)
    assert result.code == 0, result.err
    assert rows(pg, pg_database) == [("20240101000000_slow.js", "1")]


def test_change_timeout_stops_knex(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    write_migration(tmp_path, "20240101000000_slow.js", "await new Promise(r => setTimeout(r, 20000));")
    result = knexwrap("latest", str(tmp_path), *db, "--yes", "--change-timeout", "3", env=env)
    assert result.code == 13
    assert result.err.splitlines()[-1].startswith(
        "knexwrap: error: knex did not finish within 3 s and was stopped (raise it with --change-timeout)"
    )
    assert "applied before it stopped: none" in result.err
    assert rows(pg, pg_database) == []


def test_unrecognised_knex_output_is_shown_as_printed(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    (tmp_path / "20240101000000_broken.js").write_text("exports.up = async function up(knex) {\n")
    result = knexwrap("latest", str(tmp_path), *db, "--yes", env=env)
    assert result.code == 1
    error_line = next(line for line in result.err.splitlines() if line.startswith("knexwrap: error:"))
    assert error_line.startswith("knexwrap: error: knex exited with code 1: ")
    assert "SyntaxError: Unexpected end of input" in result.err  # knex's own words, not dropped


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"POSTGRES_PORT": "1"},
            5,
            "knexwrap: error: connection refused by 127.0.0.1:1: is the database server running?",
        ),
        (
            {"POSTGRES_HOST": "no-such-host.invalid"},
            5,
            "knexwrap: error: database host no-such-host.invalid not found",
        ),
        (
            {"POSTGRES_USER": "kw_no_such_role"},
            6,
            'knexwrap: error: the database user "kw_no_such_role" does not exist on the server',
        ),
        (
            {"POSTGRES_HOST": None},
            3,
            "knexwrap: error: POSTGRES_HOST is not set (set it in the environment or .env, or pass --host)",
        ),
        (
            {"POSTGRES_USER": None},
            3,
            "knexwrap: error: POSTGRES_USER is not set (set it in the environment or .env, or pass --user)",
        ),
        (
            {"POSTGRES_PORT": "54x"},
            3,
            "knexwrap: error: POSTGRES_PORT must be a port number from 1 to 65535, not '54x'",
        ),
    ],
)
def test_connection_errors(
    pg: PgServer, pg_database: str, change: dict[str, str | None], code: int, message: str
) -> None:
    result = knexwrap("status", "catalog", "--database", pg_database, env={**pg_env(pg), **change})
    assert (result.code, result.err) == (code, message + "\n")
    as_json = knexwrap("status", "catalog", "--database", pg_database, "--json", env={**pg_env(pg), **change})
    assert as_json.code == code
    assert as_json.json()["error"]["message"] == message.removeprefix("knexwrap: error: ")


def test_no_such_migration(pg: PgServer, pg_database: str) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    not_run = knexwrap("down", "catalog", "20240401000000_search.js", *db, "--yes", env=env)
    assert (not_run.code, not_run.err) == (
        11,
        'knexwrap: error: migration "20240401000000_search.js" has not been run: nothing to revert\n',
    )
    not_found = knexwrap("up", "catalog", "20990101000000_nope", *db, "--yes", "--json", env=env)
    assert not_found.code == 11
    assert not_found.json()["error"] == {
        "code": "migration_not_found",
        "message": f"no such migration 20990101000000_nope in {PLUGINS / 'catalog' / 'migrations'}; "
        "no migration name is close to it",
        "exit_code": 11,
        "closest": [],
    }
