"""A password with URL-hostile characters logs in, and never shows in argv, output or JSON."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import PROJECT, knexwrap, write_migration
from servers import PgServer, create_database, drop_database, psql_rows, unique_name


def scram_env(server: PgServer, password: str) -> dict[str, str | None]:
    return {
        "POSTGRES_HOST": server.host,
        "POSTGRES_PORT": str(server.port),
        "POSTGRES_USER": server.user,
        "POSTGRES_PASSWORD": password,
    }


def every_cmdline() -> list[str]:
    lines = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):  # the process ended while we looked
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return lines


def test_password_logs_in_and_never_reaches_argv(scram_pg: PgServer, tmp_path: Path) -> None:
    password = scram_pg.password
    assert password is not None and all(c in password for c in "@:/#%?& ")
    database = unique_name("kw_pw")
    create_database(scram_pg, database)
    try:
        # A slow migration keeps knex alive long enough to look at every process's arguments.
        write_migration(tmp_path, "20240101000000_slow.js", "await new Promise(r => setTimeout(r, 2500));")
        env = {**os.environ, **{k: v for k, v in scram_env(scram_pg, password).items() if v is not None}}
        argv = [
            sys.executable,
            "-m",
            "knexwrap",
            "latest",
            str(tmp_path),
            "--database",
            database,
            "--yes",
            "--json",
        ]
        child = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen: list[str] = []
        while child.poll() is None:
            seen.extend(every_cmdline())
            time.sleep(0.05)
        out, err = child.communicate()
        assert child.returncode == 0, err.decode()
        assert any("migrate:latest" in line for line in seen), "never saw knex running"
        assert not [line for line in seen if password in line]
        assert password not in out.decode() + err.decode()
        assert psql_rows(scram_pg, database, "select name from knex_migrations") == [("20240101000000_slow.js",)]
    finally:
        drop_database(scram_pg, database)


def test_wrong_password_is_refused_without_echoing_it(scram_pg: PgServer) -> None:
    wrong = "wr0ng p@ss/word"
    result = knexwrap("status", "catalog", "--database", "postgres", env=scram_env(scram_pg, wrong))
    assert result.code == 6
    assert result.err == f'knexwrap: error: authentication failed for user "{scram_pg.user}"\n'
    as_json = knexwrap("status", "catalog", "--database", "postgres", "--json", env=scram_env(scram_pg, wrong))
    assert as_json.code == 6
    assert wrong not in as_json.out + as_json.err
    assert as_json.json()["error"]["code"] == "auth_failed"


def test_right_password_reads_status(scram_pg: PgServer) -> None:
    password = scram_pg.password
    assert password is not None
    result = knexwrap("current", "catalog", "--database", "postgres", "--json", env=scram_env(scram_pg, password))
    assert result.code == 0, result.err
    assert result.json()["current_version"] is None
    assert password not in result.out
