"""The test servers themselves: if these fail, every database test is suspect."""

from __future__ import annotations

import subprocess
import time

import pytest
from servers import (
    SCRAM_PASSWORD,
    MariaServer,
    PgServer,
    QueryFailed,
    create_database,
    drop_database,
    mysql_rows,
    psql_rows,
    unique_name,
)


def test_unique_names_differ_and_are_valid_identifiers() -> None:
    names = {unique_name("Some-Prefix") for _ in range(100)}
    assert len(names) == 100
    assert all(name.startswith("some_prefix_") for name in names)
    assert len(unique_name("x" * 200)) <= 63


def test_create_and_drop_database(pg: PgServer) -> None:
    name = unique_name("kw_servers")
    create_database(pg, name)
    try:
        assert psql_rows(pg, name, "select current_database()") == [(name,)]
    finally:
        drop_database(pg, name)
    assert psql_rows(pg, "postgres", f"select 1 from pg_database where datname = '{name}'") == []


def _connections(pg: PgServer, name: str) -> int:
    rows = psql_rows(pg, "postgres", f"select count(*) from pg_stat_activity where datname = '{name}'")
    return int(rows[0][0])


def test_drop_database_ends_open_connections(pg: PgServer) -> None:
    name = unique_name("kw_busy")
    create_database(pg, name)
    cmd = ["psql", "-X", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", name]
    with subprocess.Popen([*cmd, "-c", "select pg_sleep(60)"], stdout=subprocess.DEVNULL) as busy:
        try:
            # Wait until the session is really in, or the test would prove nothing.
            deadline = time.monotonic() + 10
            while _connections(pg, name) == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _connections(pg, name) == 1
            drop_database(pg, name)
        finally:
            busy.kill()
    assert psql_rows(pg, "postgres", f"select 1 from pg_database where datname = '{name}'") == []


def test_pg_database_fixture_gives_a_fresh_database(pg: PgServer, pg_database: str) -> None:
    assert psql_rows(pg, pg_database, "select count(*) from pg_tables where schemaname = 'public'") == [("0",)]


def test_psql_rows_keeps_fields_and_newlines_apart(pg: PgServer) -> None:
    rows = psql_rows(pg, "postgres", "select 'a|b', E'two\\nlines', null union all select 'c', '', 'd'")
    assert rows == [("a|b", "two\nlines", ""), ("c", "", "d")]


def test_scram_cluster_accepts_the_right_password(scram_pg: PgServer) -> None:
    assert scram_pg.password == SCRAM_PASSWORD
    assert psql_rows(scram_pg, "postgres", "select current_user") == [("postgres",)]
    method = psql_rows(scram_pg, "postgres", "select auth_method from pg_hba_file_rules where type = 'host'")
    assert {row[0] for row in method} == {"scram-sha-256"}


def test_scram_cluster_rejects_a_wrong_password(scram_pg: PgServer) -> None:
    wrong = PgServer(scram_pg.host, scram_pg.port, scram_pg.user, SCRAM_PASSWORD + "x")
    with pytest.raises(QueryFailed, match="password authentication failed"):
        psql_rows(wrong, "postgres", "select 1")


def test_scram_cluster_rejects_a_missing_password(scram_pg: PgServer) -> None:
    # PGPASSWORD unset and no terminal: psql must fail rather than get in.
    nopass = PgServer(scram_pg.host, scram_pg.port, scram_pg.user, None)
    with pytest.raises(QueryFailed):
        psql_rows(nopass, "postgres", "select 1")


def test_scram_url_percent_encodes_the_password(scram_pg: PgServer) -> None:
    url = scram_pg.url("postgres")
    assert SCRAM_PASSWORD not in url
    assert url.startswith("postgresql://postgres:p%40ss%3A%20w%2Frd%231%25%3F%26@127.0.0.1:")


def test_mariadb_answers_and_creates_a_database(mariadb: MariaServer) -> None:
    name = unique_name("kw_maria")
    mysql_rows(mariadb, None, f"CREATE DATABASE `{name}`")
    try:
        assert mysql_rows(mariadb, name, "select database(), 1 + 1") == [(name, "2")]
    finally:
        mysql_rows(mariadb, None, f"DROP DATABASE IF EXISTS `{name}`")
