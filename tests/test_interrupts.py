"""Real signals to a real knexwrap process during slow real migrations (pg_sleep), and Ctrl-C at the question.

Before issue 9, Ctrl-C during a change said "cancelled: nothing was changed" and exited 14 while migrations
were applied, the knex child went on and finished after the message, and the lock could stay held.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import CLEAN_ENV, PROJECT, knexwrap, write_migration
from races import children_of, paused, pg_fingerprint
from servers import PgServer, pg_env, psql_rows

OK, SLOW, AFTER = "20240101000000_ok.js", "20240102000000_slow.js", "20240103000000_after.js"


def three_files(folder: Path, seconds: int, *, transaction: bool) -> None:
    write_migration(folder, OK, "await knex.schema.createTable('ok_table', t => t.increments());")
    write_migration(folder, SLOW, f"await knex.raw('select pg_sleep({seconds})');")
    if not transaction:
        with (folder / SLOW).open("a") as source:
            source.write("exports.config = { transaction: false };\n")
    write_migration(folder, AFTER, "await knex.schema.createTable('after_table', t => t.increments());")


def wait_for_sleep(pg: PgServer, db: str, seconds: int) -> None:
    """Until knex's session runs the slow statement."""
    sql = (
        f"select count(*) from pg_stat_activity where query like '%pg_sleep({seconds})%' and datname = '{db}' "
        "and pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 60
    while psql_rows(pg, db, sql) == [("0",)]:
        assert time.monotonic() < deadline, "the slow migration never started"
        time.sleep(0.1)


def names(pg: PgServer, db: str) -> list[str]:
    return [r[0] for r in psql_rows(pg, db, "select name from knex_migrations order by id")]


def test_sigint_cancels_a_transactional_migration_on_the_server(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    three_files(folder, 60, transaction=True)
    run = paused(["latest", str(folder), "--database", pg_database, "--yes"], tmp_path / "p", pg_env(pg), stop_at=())
    wait_for_sleep(pg, pg_database, 60)
    knex = children_of(run.process.pid)
    assert knex, "knex runs as knexwrap's child"
    tagged = (
        "select application_name from pg_stat_activity where query like '%pg_sleep(60)%' "
        "and datname = current_database() and pid <> pg_backend_pid()"
    )
    assert psql_rows(pg, pg_database, tagged) == [(f"knexwrap_{run.process.pid}",)]  # what is cancelled, only
    run.signal(signal.SIGINT)
    code, _, err = run.finish(seconds=30)  # far less than the 60 s the statement would take
    assert code == 130, err
    assert f"knexwrap: SIGINT: cancelling {SLOW} on the server; its transaction rolls back" in err
    assert err.splitlines()[-1] == (
        f"knexwrap: error: interrupted by SIGINT: applied: none; {SLOW} cancelled on the server and rolled back; "
        f"rolled back with it: {OK}; not run: {AFTER}; the migration lock is free"
    )
    assert names(pg, pg_database) == []  # one transaction for the batch: ok.js rolled back with it
    still = "select count(*) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()"
    assert psql_rows(pg, pg_database, still) == [("0",)]
    assert psql_rows(pg, pg_database, "select count(*) from knex_migrations_lock where is_locked = 1") == [("0",)]
    assert not [pid for pid in knex if Path(f"/proc/{pid}").exists()], "the knex child outlived knexwrap"


def test_sigterm_lets_a_migration_without_transaction_finish(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    three_files(folder, 3, transaction=False)
    run = paused(["latest", str(folder), "--database", pg_database, "--yes"], tmp_path / "p", pg_env(pg), stop_at=())
    wait_for_sleep(pg, pg_database, 3)
    knex = children_of(run.process.pid)
    run.signal(signal.SIGTERM)
    code, _, err = run.finish(seconds=60)
    assert code == 143, err
    assert (
        f"knexwrap: SIGTERM: {SLOW} runs without a transaction: letting it finish, then stopping; interrupt again "
        "to stop at once (it may be left half done)"
    ) in err
    assert err.splitlines()[-1] == (
        f"knexwrap: error: interrupted by SIGTERM: applied: {OK}, {SLOW}; {SLOW} was let finish; not run: {AFTER}; "
        "the migration lock is free"
    )
    assert names(pg, pg_database) == [OK, SLOW]
    tables = psql_rows(
        pg, pg_database, "select count(*) from information_schema.tables where table_name = 'after_table'"
    )
    assert tables == [("0",)]
    assert not [pid for pid in knex if Path(f"/proc/{pid}").exists()]


def test_ctrl_c_at_the_question_cancels_and_changes_nothing(pg: PgServer, pg_database: str) -> None:
    """At a terminal, Ctrl-C while "Go ahead?" waits: cancelled (14), and nothing was changed, which is true."""
    env, db = pg_env(pg), ["--database", pg_database]
    assert knexwrap("up", "catalog", *db, "--yes", env=env).code == 0
    before = pg_fingerprint(pg, pg_database)
    controller, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    environment.update({k: v for k, v in env.items() if v is not None})
    process = subprocess.Popen(
        [sys.executable, "-m", "knexwrap", "latest", "catalog", *db],
        cwd=PROJECT,
        env=environment,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(terminal)
    try:
        deadline = time.monotonic() + 60
        asked = ""
        while "Go ahead?" not in asked:
            assert time.monotonic() < deadline and process.poll() is None, "knexwrap never asked"
            asked += _available(process)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        os.close(controller)
    assert process.returncode == 14
    assert (asked + err).splitlines()[-1] == "knexwrap: error: cancelled at the question (Ctrl-C): nothing was changed"
    assert pg_fingerprint(pg, pg_database) == before


def _available(process: subprocess.Popen[str]) -> str:
    """What knexwrap wrote on stderr since the last call (the question ends without a newline)."""
    assert process.stderr is not None
    text = ""
    while select.select([process.stderr], [], [], 0.1)[0]:
        chunk = os.read(process.stderr.fileno(), 4096).decode()
        if not chunk:
            break
        text += chunk
    return text
