"""Backstage's stored migration sources as files for a downgrade (issue 12 item 2): a recorded migration that
no installed or archived package has is reverted with the source Backstage's backstage_migration_sources_<pluginId>
holds, when its checksum verifies; a bad checksum is never used; the archive wins when it has the file.

Real knex, real PostgreSQL and SQLite; the sources table is created and filled as Backstage's MigrationStorage
does (test_drift.STORAGE_JS); the plugin package is the test's own."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backstage import make_project
from helpers import knexwrap, sqlite_rows
from servers import PgServer, create_database, drop_database, pg_env, psql_rows, unique_name
from test_archive_trust import EXTRA, FIRST, extra
from test_downgrade_more import NOTES, NOTES_FILES, plugin_package
from test_drift import store_sources

from knexwrap import errors
from knexwrap.config import connection as conn
from knexwrap.install import sets
from knexwrap.state import whole
from knexwrap.upgrade import downgrade
from knexwrap.upgrade import plan as planning

STORED = extra("stored")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Db:
    """One plugin database of the notes plugin, on PostgreSQL or SQLite."""

    opts: list[str]
    env: dict[str, str | None]
    config: dict[str, Any]
    query: Callable[[str], list[tuple[Any, ...]]]
    execute: Callable[[str], None]


def sqlite_db(tmp_path: Path) -> Db:
    path = tmp_path / "sqlite" / "notes.sqlite"
    path.parent.mkdir()

    def run_sql(sql: str) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(sql)

    config = {"client": "better-sqlite3", "connection": {"filename": str(path)}, "useNullAsDefault": True}
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(path.parent)]
    return Db(opts, {}, config, lambda sql: sqlite_rows(path, sql), run_sql)


@pytest.fixture(params=["pg", "better-sqlite3"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "better-sqlite3":
        yield sqlite_db(tmp_path)
        return
    pg: PgServer = request.getfixturevalue("pg")
    prefix = unique_name("kw_sources") + "_"
    name = f"{prefix}notes"
    create_database(pg, name)

    def pg_sql(sql: str) -> None:
        psql_rows(pg, name, sql)

    try:
        yield Db(
            ["--prefix", prefix],
            dict(pg_env(pg)),
            {"client": "pg", "connection": pg.url(name)},
            lambda sql: psql_rows(pg, name, sql),
            pg_sql,
        )
    finally:
        drop_database(pg, name)


def run(project: Path, db: Db, *args: str) -> Any:
    sets.discover_all.cache_clear()  # the tests swap packages under one project path
    return knexwrap(*args, *db.opts, cwd=project, env=db.env)


def backend_applied(project: Path, db: Db, files: dict[str, str]) -> Path:
    """notes at 0.1.0 with FILES, applied by knexwrap (which archives them)."""
    plugin_package(project, NOTES, "notes", "0.1.0", files)
    applied = run(project, db, "latest", "notes", "--yes")
    assert applied.code == 0, applied.err
    return project


def extra_by_a_backend(db: Db) -> None:
    """EXTRA as a newer backend applied it: its table and its row, with files knexwrap never saw."""
    db.execute("create table extra (v text)")
    db.execute(f"insert into knex_migrations (name, batch, migration_time) values ('{EXTRA}', 2, current_timestamp)")


def where(one: dict[str, Any]) -> str:
    """The database of a plan's set as its notes name it (connection.target())."""
    return f"{one['server']}/{one['database']}" if one["server"] else str(one["database"])


def names(db: Db) -> list[str]:
    return [str(r[0]) for r in db.query("select name from knex_migrations order by id")]


def which(db: Db) -> list[str]:
    return [str(r[0]) for r in db.query("select v from which")]


def test_a_file_only_the_sources_table_has_is_reverted_with_it(db: Db, tmp_path: Path) -> None:
    project = backend_applied(make_project(tmp_path / "backstage", {}), db, NOTES_FILES)
    extra_by_a_backend(db)
    store_sources(project, db.config, [(FIRST[:-3], NOTES_FILES[FIRST], None), (EXTRA[:-3], STORED, None)])

    plan = run(project, db, "plan", "--to", str(project), "--json")
    assert plan.code == 0, plan.err
    [one] = plan.json()["sets"]
    assert (one["revert"], one["files_from"], one["missing_files"]) == ([EXTRA], "backstage_migration_sources", [])
    assert one["stored_sources"] == [{"name": EXTRA, "sha256": sha(STORED)}]
    said = f"{where(one)} knex_migrations: {EXTRA} from Backstage's stored migration sources (sha256 {sha(STORED)[:12]}"
    assert said + ", checksum verified)" in plan.json()["notes"]
    text = run(project, db, "plan", "--to", str(project))
    assert (text.code, text.out.count(f"\nnote: {said}")) == (0, 1)

    done = run(project, db, "downgrade", "--to", str(project), "--yes", "--json")
    assert done.code == 0, done.err
    assert [(s["name"], s["state"]) for s in done.json()["steps"]] == [(EXTRA, "reverted")]
    assert which(db) == ["stored"]  # the stored down() ran: it dropped extra and left this trace
    assert names(db) == [FIRST]
    journal = (project / ".knexwrap" / "journal.jsonl").read_text().splitlines()
    [ran] = json.loads(journal[-1])["ran"]
    assert (ran["name"], ran["status"], ran["sha256"]) == (EXTRA, "reverted", sha(STORED))


def test_a_stored_source_whose_checksum_does_not_verify_is_never_used(db: Db, tmp_path: Path) -> None:
    project = backend_applied(make_project(tmp_path / "backstage", {}), db, NOTES_FILES)
    extra_by_a_backend(db)
    store_sources(project, db.config, [(EXTRA[:-3], STORED, "0" * 64)])

    plan = run(project, db, "plan", "--to", str(project), "--json")
    assert plan.code == 0, plan.err
    [one] = plan.json()["sets"]
    assert (one["files_from"], one["missing_files"], one["stored_sources"]) == ("none", [EXTRA], [])
    at = f"{where(one)} knex_migrations"
    assert plan.json()["notes"][-2:] == [
        f"{at}: Backstage's stored source of {EXTRA} does not hash to its checksum: not used",
        f"{at}: no source has {EXTRA} (neither install nor archive)",
    ]
    refused = run(project, db, "downgrade", "--to", str(project), "--yes")
    assert refused.code == 3 and f"has no copy of {EXTRA}" in refused.err
    assert names(db) == [FIRST, EXTRA]  # nothing was changed
    assert [str(r[0]) for r in db.query("select count(*) from extra")] == ["0"]  # its table is still there


def test_the_archive_wins_when_it_has_the_file(db: Db, tmp_path: Path) -> None:
    project = backend_applied(make_project(tmp_path / "backstage", {}), db, {**NOTES_FILES, EXTRA: extra("archived")})
    plugin_package(project, NOTES, "notes", "0.1.0", NOTES_FILES)  # the code swapped back: EXTRA is archived only
    store_sources(project, db.config, [(EXTRA[:-3], STORED, None)])

    [one] = run(project, db, "plan", "--to", str(project), "--json").json()["sets"]
    assert (one["revert"], one["files_from"], one["stored_sources"]) == ([EXTRA], "archive", [])
    done = run(project, db, "downgrade", "--to", str(project), "--yes")
    assert done.code == 0, done.err
    assert which(db) == ["archived"]
    assert names(db) == [FIRST]


def test_a_stored_source_changed_after_the_plan_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """Plan-is-the-run: the table is read again right before knex runs; a source that is no longer the one the
    plan showed (here: rewritten with a checksum of its own that verifies) stops the downgrade, nothing changed."""
    db, data = sqlite_db(tmp_path), tmp_path / "sqlite"
    path = data / "notes.sqlite"
    project = backend_applied(make_project(tmp_path / "backstage", {}), db, NOTES_FILES)
    extra_by_a_backend(db)
    store_sources(project, db.config, [(EXTRA[:-3], STORED, None)])
    sets.discover_all.cache_clear()
    p = whole.plan(conn.Options(client="better-sqlite3", sqlite_dir=str(data)), str(project))
    planned = planning.plan(p, to=str(project), timeout=30)
    assert [s.files_from for s in planned.changes] == ["backstage_migration_sources"]

    other = extra("other")
    with sqlite3.connect(path) as conn_:
        conn_.execute(
            "update backstage_migration_sources_notes set source_content = ?, checksum = ?", (other, sha(other))
        )
    with pytest.raises(errors.StateChanged, match=f"stored source of {EXTRA} .* is gone or changed since the plan"):
        downgrade.execute(planned, p, timeout=30)
    assert names(db) == [FIRST, EXTRA]
    assert not (project / ".knexwrap" / "backups").exists() or not any((project / ".knexwrap" / "backups").iterdir())


def test_stored_sources_are_not_used_in_an_es_module_package(tmp_path: Path) -> None:
    """Backstage runs a stored source as CommonJS: a `.js` file in an ES module package's folder would be
    loaded as an ES module, so the plan does not use it and says why."""
    db = sqlite_db(tmp_path)
    project = make_project(tmp_path / "backstage", {})
    esm = {FIRST: "export async function up(knex) { await knex.schema.createTable('notes', t => t.text('v')); }\n"}
    esm[FIRST] += "export async function down(knex) { await knex.schema.dropTable('notes'); }\n"
    folder = plugin_package(project, NOTES, "notes", "0.1.0", esm)
    manifest = folder.parent / "package.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "type": "module"}))
    applied = run(project, db, "latest", "notes", "--yes")
    assert applied.code == 0, applied.err
    extra_by_a_backend(db)
    store_sources(project, db.config, [(EXTRA[:-3], STORED, None)])

    plan = run(project, db, "plan", "--to", str(project), "--json")
    [one] = plan.json()["sets"]
    assert (one["files_from"], one["missing_files"], one["stored_sources"]) == ("none", [EXTRA], [])
    assert [n for n in plan.json()["notes"] if EXTRA in n or "Backstage" in n] == [
        f"{where(one)} knex_migrations: {NOTES} is an ES module package: Backstage's stored CommonJS sources "
        "cannot run in its folder: not used"
    ]
    assert run(project, db, "downgrade", "--to", str(project), "--yes").code == 3
    assert names(db) == [FIRST, EXTRA]
