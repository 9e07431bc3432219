"""The plan is the run: a second run between the plan and the "y" makes knexwrap stop and change nothing.

Each race is made deterministic with knexwrap's test pause point (tests/races.py): run A shows its plan
and waits; run B changes the database; then A goes on. On the code before issue 9, A recomputed "the last
batch" / "the last file" / "the pending files" when knex ran and changed what it never showed.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import CATALOG, knexwrap, sqlite_rows
from races import paused, pg_fingerprint, sqlite_fingerprint
from servers import PgServer, pg_env, psql_rows


def pg_rows(pg: PgServer, db: str) -> list[tuple[str, ...]]:
    return psql_rows(pg, db, "select name, batch from knex_migrations order by id")


def sqlite_opts(folder: Path) -> list[str]:
    return ["--client", "better-sqlite3", "--sqlite-dir", str(folder)]


def test_rollback_confirmed_after_another_rollback_reverts_nothing(
    pg: PgServer, pg_database: str, tmp_path: Path
) -> None:
    """The reported loss: "y" to the last batch reverted the batch before it, which was never shown."""
    env, db = pg_env(pg), ["--database", pg_database]
    assert knexwrap("up", "catalog", *db, "--yes", env=env).code == 0  # batch 1: init
    assert knexwrap("latest", "catalog", *db, "--yes", env=env).code == 0  # batch 2: the other three
    first = paused(["rollback", "catalog", *db, "--yes"], tmp_path / "a", env, stop_at=("confirmed",))
    first.wait_at("confirmed")
    assert knexwrap("rollback", "catalog", *db, "--yes", env=env).code == 0  # another operator was quicker
    before = pg_fingerprint(pg, pg_database)
    first.release("confirmed")
    code, _, err = first.finish()
    assert code == 19, err
    assert "About to revert 3 migrations" in err
    assert err.splitlines()[-1] == (
        "knexwrap: error: the migrations table knex_migrations changed since the plan was shown (reverted since: "
        f"{CATALOG[1]}, {CATALOG[2]}, {CATALOG[3]}); knexwrap ran nothing it had not shown: reverted before it "
        "stopped: none; look again (knexwrap status) and run the command again"
    )
    assert pg_rows(pg, pg_database) == [(CATALOG[0], "1")]
    assert pg_fingerprint(pg, pg_database) == before
    assert knexwrap("status", "catalog", *db, "--json", env=env).json()["counts"]["applied"] == 1


def test_down_without_name_runs_the_file_shown_or_nothing(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    env, db = pg_env(pg), ["--database", pg_database]
    assert knexwrap("latest", "catalog", *db, "--yes", env=env).code == 0
    first = paused(["down", "catalog", *db, "--yes"], tmp_path / "a", env, stop_at=("confirmed",))
    first.wait_at("confirmed")
    assert knexwrap("down", "catalog", *db, "--yes", env=env).code == 0  # reverts search
    before = pg_fingerprint(pg, pg_database)
    first.release("confirmed")
    code, _, err = first.finish()
    assert code == 19, err
    assert f"reverted since: {CATALOG[3]}" in err
    assert pg_rows(pg, pg_database) == [(n, "1") for n in CATALOG[:3]]  # refresh_state was never shown: kept
    assert pg_fingerprint(pg, pg_database) == before


def test_latest_after_a_concurrent_up_applies_nothing_unshown(tmp_path: Path) -> None:
    """SQLite: the plan showed four files; another run applied the first; the confirmed run changes nothing."""
    folder = tmp_path / "db"
    folder.mkdir()
    opts = sqlite_opts(folder)
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    assert knexwrap("down", "catalog", *opts, "--yes").code == 0  # the file exists, its tables do not
    first = paused(["latest", "catalog", *opts, "--yes"], tmp_path / "a", {}, stop_at=("confirmed",))
    first.wait_at("confirmed")
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    database = folder / "catalog.sqlite"
    before = sqlite_fingerprint(database)
    first.release("confirmed")
    code, _, err = first.finish()
    assert code == 19, err
    assert f"applied since: {CATALOG[0]}" in err and "applied before it stopped: none" in err
    assert sqlite_rows(database, "select name, batch from knex_migrations order by id") == [(CATALOG[0], 1)]
    assert sqlite_fingerprint(database) == before


def test_an_unchanged_database_runs_the_plan_and_reports_it(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    opts = sqlite_opts(folder)
    first = paused(["latest", "catalog", *opts, "--yes", "--json"], tmp_path / "a", {}, stop_at=("confirmed",))
    first.wait_at("confirmed")
    first.release("confirmed")
    code, out, err = first.finish()
    assert code == 0, err
    result = json.loads(out)
    assert result["planned"] == result["done"] == CATALOG


def test_each_migration_reports_its_events_as_a_typed_stream(tmp_path: Path) -> None:
    """The events of knexwrap's knexfile, from a real knex run: checked once under knex's lock, then start/end."""
    from helpers import PROJECT

    from knexwrap.config.connection import Options
    from knexwrap.knex.events import MigrationEvent
    from knexwrap.state.plugin import open_target
    from knexwrap.upgrade import changes

    target = open_target("catalog", Options(client="better-sqlite3", sqlite_dir=str(tmp_path)), cwd=PROJECT)
    seen: list[MigrationEvent] = []
    outcome = changes.execute(target, changes.plan_latest(target), on_event=seen.append)
    assert outcome.done == tuple(CATALOG)
    expected = [("checked", CATALOG[0])]
    for name in CATALOG:
        expected += [("start", name), ("end", name)]
    assert [(e.kind, e.name) for e in seen] == expected
    assert all(e.direction == "up" and e.transaction for e in seen)
    assert [e.at_ms for e in seen] == sorted(e.at_ms for e in seen)
