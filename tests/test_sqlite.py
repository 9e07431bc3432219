"""Every command against the real knex CLI and real SQLite files: Backstage's connection.directory layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers import CATALOG, PLUGINS, PROJECT, knexwrap, sqlite_rows, sqlite_tables


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> Path:
    return tmp_path


def opts(folder: Path) -> list[str]:
    return ["--client", "better-sqlite3", "--sqlite-dir", str(folder)]


def applied(db: Path) -> list[tuple[str, int]]:
    return sqlite_rows(db, "select name, batch from knex_migrations order by id")


def test_status_of_a_database_that_does_not_exist_creates_nothing(sqlite_dir: Path) -> None:
    # status reports it as the state "absent" (as the whole-install status does), not as an error.
    result = knexwrap("status", "catalog", *opts(sqlite_dir))
    assert (result.code, result.err) == (0, "")
    assert "0 applied, 4 pending, 0 missing; current version none" in result.out.splitlines()
    assert result.out.splitlines()[-1].startswith("absent: the database does not exist yet")
    current = knexwrap("current", "catalog", *opts(sqlite_dir))
    assert current.code == 7
    assert current.err == f"knexwrap: error: SQLite database {sqlite_dir}/catalog.sqlite does not exist\n"
    assert list(sqlite_dir.iterdir()) == []


def test_latest_applies_every_file_and_says_which(sqlite_dir: Path) -> None:
    result = knexwrap("latest", "catalog", *opts(sqlite_dir), "--yes")
    db = sqlite_dir / "catalog.sqlite"
    assert result.code == 0, result.err
    assert applied(db) == [(name, 1) for name in CATALOG]
    assert {"entities", "locations", "refresh_state", "search"} <= sqlite_tables(db)
    assert result.err.startswith("About to apply 4 migrations of catalog (@knexwrap-fixture/plugin-catalog-backend)")
    assert result.out == (
        f"catalog (@knexwrap-fixture/plugin-catalog-backend) in {db}, table knex_migrations\n"
        "applied 4 migrations:\n"
        "migration                        batch\n"
        "-------------------------------  -----\n"
        "20240101000000_init.js               1\n"
        "20240201000000_locations.js          1\n"
        "20240301000000_refresh_state.js      1\n"
        "20240401000000_search.js             1\n"
    )


def journaled(name: str) -> dict[str, object]:
    sha = hashlib.sha256((PLUGINS / "catalog" / "migrations" / name).read_bytes()).hexdigest()
    return {"applied_sha256": sha, "applied_sha256_from": "journal", "file_sha256": sha, "changed": False}


def test_status_text_and_json_after_two_ups(sqlite_dir: Path) -> None:
    for _ in range(2):
        assert knexwrap("up", "catalog", *opts(sqlite_dir), "--yes").code == 0
    db = sqlite_dir / "catalog.sqlite"
    assert applied(db) == [(CATALOG[0], 1), (CATALOG[1], 2)]
    text = knexwrap("status", "catalog", *opts(sqlite_dir))
    assert text.code == 0
    assert text.out == (
        f"catalog (@knexwrap-fixture/plugin-catalog-backend) in {db}, table knex_migrations\n"
        "\n"
        "migration                        state\n"
        "-------------------------------  -------\n"
        "20240101000000_init.js           applied\n"
        "20240201000000_locations.js      applied\n"
        "20240301000000_refresh_state.js  pending\n"
        "20240401000000_search.js         pending\n"
        "\n"
        "2 applied, 2 pending, 0 missing; current version 20240201000000\n"
    )
    doc = knexwrap("status", "catalog", *opts(sqlite_dir), "--json").json()
    times = [m.pop("migration_time") for m in doc["migrations"]]
    assert all(t.endswith("Z") for t in times[:2]) and times[2:] == [None, None]
    assert doc.pop("last_run") == times[1]
    assert doc == {
        "schema_version": 1,
        "command": "status",
        "plugin": "catalog",
        "package": "@knexwrap-fixture/plugin-catalog-backend",
        "version": "1.0.0",
        "client": "better-sqlite3",
        "server": None,
        "database": str(db),
        "schema": None,
        "migrations_table": "knex_migrations",
        "migrations_directory": str(PLUGINS / "catalog" / "migrations"),
        "skip_migrations": False,
        "root": str(PROJECT),
        "knex_version": "3.3.0",
        "state": "behind",
        "table_exists": True,
        "current_version": "20240201000000",
        "locked": False,
        "lock_rows": 1,
        "last_batch": 2,
        "counts": {"applied": 2, "pending": 2, "missing": 0},
        "migrations": [
            # knexwrap applied them: its journal holds the content that ran, the installed file's (not changed).
            {"name": CATALOG[0], "state": "applied", "batch": 1, **journaled(CATALOG[0])},
            {"name": CATALOG[1], "state": "applied", "batch": 2, **journaled(CATALOG[1])},
            {"name": CATALOG[2], "state": "pending", "batch": None},
            {"name": CATALOG[3], "state": "pending", "batch": None},
        ],
        "rows_of_other_sets": [],
        "other_sets": [],
    }


def test_status_never_creates_tables(sqlite_dir: Path) -> None:
    db = sqlite_dir / "catalog.sqlite"
    __import__("sqlite3").connect(db).close()  # an empty database file, as a fresh backend leaves it
    result = knexwrap("status", "catalog", *opts(sqlite_dir), "--json")
    assert result.code == 0
    assert (result.json()["table_exists"], result.json()["state"], result.json()["counts"]["pending"]) == (
        False,
        "behind",
        4,
    )
    assert sqlite_tables(db) == set()


def test_verbose_status_shows_batches(sqlite_dir: Path) -> None:
    knexwrap("up", "catalog", *opts(sqlite_dir), "--yes")
    out = knexwrap("status", "catalog", *opts(sqlite_dir), "--verbose").out
    assert "migration                        state    batch  migration_time" in out
    assert "20240101000000_init.js           applied      1  20" in out


def test_rollback_reverts_exactly_the_last_batch(sqlite_dir: Path) -> None:
    db = sqlite_dir / "catalog.sqlite"
    knexwrap("up", "catalog", CATALOG[0], *opts(sqlite_dir), "--yes")
    knexwrap("latest", "catalog", *opts(sqlite_dir), "--yes")
    dry = knexwrap("rollback", "catalog", *opts(sqlite_dir), "--dry-run", "--json").json()
    assert dry["planned"] == [CATALOG[3], CATALOG[2], CATALOG[1]]
    assert (dry["dry_run"], dry["done"]) == (True, [])
    assert len(applied(db)) == 4
    result = knexwrap("rollback", "catalog", *opts(sqlite_dir), "--yes", "--json")
    assert result.code == 0
    assert result.json()["done"] == [CATALOG[3], CATALOG[2], CATALOG[1]]
    assert applied(db) == [(CATALOG[0], 1)]
    assert "locations" not in sqlite_tables(db)
    everything = knexwrap("rollback", "catalog", "--all", *opts(sqlite_dir), "--yes", "--json")
    assert everything.json()["done"] == [CATALOG[0]]
    assert applied(db) == []
    assert "entities" not in sqlite_tables(db)


def test_down_by_name_without_extension(sqlite_dir: Path) -> None:
    db = sqlite_dir / "catalog.sqlite"
    knexwrap("latest", "catalog", *opts(sqlite_dir), "--yes")
    result = knexwrap("down", "catalog", "20240201000000_locations", *opts(sqlite_dir), "--yes", "--json")
    assert result.code == 0, result.err
    assert result.json()["done"] == [CATALOG[1]]
    assert [name for name, _ in applied(db)] == [CATALOG[0], CATALOG[2], CATALOG[3]]
    assert "locations" not in sqlite_tables(db)


def test_declining_the_question_changes_nothing(sqlite_dir: Path) -> None:
    db = sqlite_dir / "catalog.sqlite"
    knexwrap("latest", "catalog", *opts(sqlite_dir), "--yes")
    result = knexwrap("rollback", "catalog", *opts(sqlite_dir), input="n\n")
    assert result.code == 14
    assert result.err.endswith("Go ahead? [y/N]: n\nknexwrap: error: cancelled: nothing was changed\n")
    assert len(applied(db)) == 4
    no_terminal = knexwrap("rollback", "catalog", *opts(sqlite_dir), input="")
    assert no_terminal.code == 14
    assert no_terminal.err.splitlines()[-1] == (
        "knexwrap: error: there is no terminal to ask on (stdin is not a terminal and gave no answer): nothing was "
        "changed; pass --yes to go ahead without asking"
    )
    assert len(applied(db)) == 4


def test_answering_yes_carries_it_out(sqlite_dir: Path) -> None:
    db = sqlite_dir / "catalog.sqlite"
    knexwrap("latest", "catalog", *opts(sqlite_dir), "--yes")
    result = knexwrap("down", "catalog", *opts(sqlite_dir), input="y\n")
    assert result.code == 0
    assert [name for name, _ in applied(db)] == CATALOG[:3]


def test_unlock_releases_a_stale_lock(sqlite_dir: Path) -> None:
    db = sqlite_dir / "catalog.sqlite"
    knexwrap("latest", "catalog", *opts(sqlite_dir), "--yes")
    assert knexwrap("unlock", "catalog", *opts(sqlite_dir), "--yes").out.endswith("nothing to release\n")
    with __import__("sqlite3").connect(db) as conn:
        conn.execute("update knex_migrations_lock set is_locked = 1")
    locked = knexwrap("rollback", "catalog", *opts(sqlite_dir), "--yes")
    assert locked.code == 9
    assert "knexwrap unlock" in locked.err
    released = knexwrap("unlock", "catalog", *opts(sqlite_dir), "--yes")
    assert released.code == 0
    assert released.out.endswith("released the migration lock (knex_migrations_lock)\n")
    assert sqlite_rows(db, "select is_locked from knex_migrations_lock") == [(0,)]


def test_hyphenated_plugin_id_and_package_name(sqlite_dir: Path) -> None:
    by_id = knexwrap("latest", "user-settings", *opts(sqlite_dir), "--yes")
    assert by_id.code == 0
    assert applied(sqlite_dir / "user-settings.sqlite") == [("20220330000000_init.js", 1)]
    by_package = knexwrap("current", "@knexwrap-fixture/plugin-user-settings-backend", *opts(sqlite_dir), "--json")
    assert by_package.json()["current_version"] == "20220330000000"
