"""A downgrade interrupted by a real SIGTERM while a step without a transaction runs (issue 9).

Before issue 9 the downgrade's failure report came from what knex printed, not from the database: a step that
did revert was called failed, and nothing said whether the lock was held. Now the step running is let finish,
no further step starts, and the report (exit 143) comes from re-reading the database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from backstage import make_project
from helpers import CLEAN_ENV, fresh, knexwrap
from servers import PgServer, create_database, drop_database, psql_rows, unique_name
from test_downgrade_more import migration, plugin_package

SLOWPKG = "@knexwrap-test/plugin-slow-backend"
BASE, QUICK, SLOW = "20240101000000_base.js", "20240102000000_quick.js", "20240103000000_slow.js"
FILES = {
    BASE: migration(
        "await knex.schema.createTable('base', t => t.increments());", "await knex.schema.dropTable('base');"
    ),
    QUICK: migration(
        "await knex.schema.createTable('quick', t => t.increments());", "await knex.schema.dropTable('quick');"
    ),
    # Its down takes a few seconds outside a transaction: an interrupt lets it finish.
    SLOW: migration(
        "await knex.schema.createTable('slow', t => t.increments());",
        "await knex.raw('select pg_sleep(4)');\n  await knex.schema.dropTable('slow');",
        transaction=False,
    ),
}


def test_sigterm_during_a_downgrade_step_lets_it_finish_and_reports_from_the_database(
    pg: PgServer, tmp_path: Path
) -> None:
    old, new = make_project(tmp_path / "old", {}), make_project(tmp_path / "new", {})
    plugin_package(old, SLOWPKG, "slow", "1.0.0", {BASE: FILES[BASE]})
    plugin_package(new, SLOWPKG, "slow", "2.0.0", FILES)
    prefix = unique_name("kw_dint") + "_"
    db = f"{prefix}slow"
    env = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
    create_database(pg, db)
    try:
        fresh()
        assert knexwrap("latest", "slow", "--prefix", prefix, "--yes", cwd=new, env=env).code == 0
        environment = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV} | env
        process = subprocess.Popen(
            [sys.executable, "-m", "knexwrap", "downgrade", "--to", str(old), "--prefix", prefix, "--yes", "--json"],
            cwd=new,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        sleeping = "select count(*) from pg_stat_activity where query like '%pg_sleep(4)%' and pid <> pg_backend_pid()"
        deadline = time.monotonic() + 120
        while psql_rows(pg, db, sleeping) == [("0",)]:
            assert time.monotonic() < deadline and process.poll() is None, "the slow down() never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 143, err
        # The step running was let finish and is reported reverted (read back from the database), QUICK never ran.
        rows = [r[0] for r in psql_rows(pg, db, "select name from knex_migrations order by id")]
        assert rows == [BASE, QUICK]
        assert psql_rows(pg, db, "select count(*) from information_schema.tables where table_name = 'slow'") == [("0",)]
        assert psql_rows(pg, db, "select count(*) from knex_migrations_lock where is_locked = 1") == [("0",)]
        assert err.splitlines()[-1] == f"knexwrap: error: interrupted by SIGTERM during {SLOW}", err
        # The report is the database's: the step that ran to its end is reverted, never "failed".
        steps = [(step["name"], step["status"]) for step in json.loads(out)["steps"]]
        assert steps == [(SLOW, "reverted"), (QUICK, "not run")]
    finally:
        drop_database(pg, db)
