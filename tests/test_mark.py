"""`knexwrap mark PLUGIN NAME --applied | --reverted` on real PostgreSQL, MariaDB and SQLite with the real knex:
the row knex would write (or its removal), nothing of the migration run, a verified backup of the rows before,
the lock, the plan-is-the-run check, and doctor's proposal after a real half-done migration."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from backstage import make_project
from helpers import CATALOG, PLUGINS, knexwrap, sqlite_rows, sqlite_tables
from races import paused
from servers import (
    MariaServer,
    PgServer,
    create_database,
    drop_database,
    mysql_rows,
    pg_env,
    psql_rows,
    unique_name,
)
from test_appconfig_e2e import PG_TEMPLATE, pg_env_file
from test_appconfig_e2e import make_project as e2e_project
from test_completion import complete
from test_downgrade_more import migration, plugin_package

Rows = list[tuple[str, int, bool]]  # name, batch, migration_time set


@dataclass
class Db:
    """One real database the catalog fixture migrates into, and how the test looks inside it."""

    kind: str
    opts: list[str]
    env: dict[str, str | None]
    sql: Callable[[str], list[tuple[str, ...]]]
    tables: Callable[[], set[str]]

    def rows(self) -> Rows:
        found = self.sql("select name, batch, migration_time from knex_migrations order by id")
        return [(str(n), int(b), t not in (None, "", "NULL")) for n, b, t in found]

    def run(self, *args: str) -> tuple[int, str, str]:
        result = knexwrap(*args, *self.opts, env=self.env)
        return result.code, result.out, result.err


@pytest.fixture(params=["sqlite", "pg", "mariadb"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    state = ["--state-dir", str(tmp_path / "state")]
    if request.param == "sqlite":
        (tmp_path / "db").mkdir()
        file = tmp_path / "db" / "catalog.sqlite"
        yield Db(
            "sqlite",
            ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db"), *state],
            {},
            lambda q: [tuple(map(str, r)) for r in sqlite_rows(file, q)],
            lambda: sqlite_tables(file),
        )
    elif request.param == "pg":
        pg: PgServer = request.getfixturevalue("pg")
        name = unique_name("kw_mark")
        create_database(pg, name)
        listed = "select table_name from information_schema.tables where table_schema = 'public'"
        yield Db(
            "pg",
            ["--database", name, *state],
            pg_env(pg),
            lambda q: psql_rows(pg, name, q),
            lambda: {r[0] for r in psql_rows(pg, name, listed)},
        )
        drop_database(pg, name)
    else:
        maria: MariaServer = request.getfixturevalue("mariadb")
        name = unique_name("kw_mark")
        mysql_rows(maria, None, f"create database `{name}`")
        where = ["--client", "mysql2", "--host", maria.host, "--port", str(maria.port), "--user", maria.user]
        yield Db(
            "mariadb",
            [*where, "--database", name, *state],
            {},
            lambda q: mysql_rows(maria, name, q),
            lambda: {r[0] for r in mysql_rows(maria, name, "show tables")},
        )
        mysql_rows(maria, None, f"drop database `{name}`")


def backup_holds(db: Db, path: Path, names: list[str]) -> bool:
    """The backup reads back and holds exactly the rows NAMES of knex_migrations (PostgreSQL: pg_restore's SQL)."""
    manifest = json.loads(Path(f"{path}.json").read_text())
    if db.kind == "sqlite":
        return [r[0] for r in sqlite_rows(path, "select name from knex_migrations order by id")] == names
    assert manifest["tables"] == ["knex_migrations"]
    if db.kind == "pg":
        text = subprocess.run(["pg_restore", "--data-only", "-f", "-", str(path)], capture_output=True, text=True)
        copied = text.stdout.split("COPY public.knex_migrations", 1)[1].split("\\.", 1)[0]
        return [line.split("\t")[1] for line in copied.strip().splitlines()[1:]] == names
    inserted = re.findall(r"INSERT INTO `knex_migrations` VALUES\s*(.*?);\n", path.read_text(), re.DOTALL)
    return re.findall(r"\(\d+,'([^']*)',", "".join(inserted)) == names


def test_mark_applied_then_reverted_writes_and_removes_the_row_knex_would(db: Db) -> None:
    assert db.run("up", "catalog", "--yes")[0] == 0  # batch 1: init
    before = db.rows()
    own_tables = db.tables()
    code, out, err = db.run("mark", "catalog", "20240201000000_locations", "--applied", "--yes", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["action"], doc["name"], doc["batch"], doc["done"], doc["dry_run"]) == (
        "applied",
        CATALOG[1],
        2,
        True,
        False,
    )
    assert db.rows() == [*before, (CATALOG[1], 2, True)]
    if db.kind == "sqlite":  # knex binds a Date as its milliseconds there: the same kind of value as knex's own row
        assert db.sql("select typeof(migration_time) from knex_migrations") == [("integer",), ("integer",)]
    assert db.tables() == own_tables and "locations" not in own_tables  # the migration itself never ran
    [taken] = doc["backups"]
    assert backup_holds(db, Path(taken), [CATALOG[0]])
    assert "About to record as applied (without running it)" in err and f"  {CATALOG[1]}  batch 2" in err
    status = knexwrap("status", "catalog", *db.opts, "--json", env=db.env).json()
    assert [(m["name"], m["state"], m["batch"]) for m in status["migrations"]][:2] == [
        (CATALOG[0], "applied", 1),
        (CATALOG[1], "applied", 2),
    ]
    assert status["migrations"][1]["migration_time"] == doc["migration_time"]

    code, out, err = db.run("mark", "catalog", CATALOG[1], "--reverted", "--yes", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["action"], doc["batch"], doc["done"]) == ("reverted", 2, True)
    assert db.rows() == before and db.tables() == own_tables
    assert backup_holds(db, Path(doc["backups"][0]), [CATALOG[0], CATALOG[1]])


def test_dry_run_shows_the_row_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db"), "--state-dir", str(tmp_path / "s")]
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    file = tmp_path / "db" / "catalog.sqlite"
    before = sqlite_rows(file, "select * from knex_migrations")
    journal = (tmp_path / "s" / "journal.jsonl").read_text()
    result = knexwrap("mark", "catalog", CATALOG[2], "--applied", *opts, "--dry-run")
    assert result.code == 0, result.err
    assert result.out.splitlines()[1:] == [
        f"would record as applied (without running it): {CATALOG[2]} (batch 2)",
        f"note: {CATALOG[2]} is recorded as applied without running it, in batch 2: the last batch is 1 "
        "(as knex would)",
        f"warning: {CATALOG[2]} runs in a transaction: a failed run of it left nothing behind; record it only if "
        "what it does was done by hand",
        f"backup: the whole file to {tmp_path / 's' / 'backups'}",
        "dry run: nothing was changed",
    ]
    assert sqlite_rows(file, "select * from knex_migrations") == before
    assert list((tmp_path / "s" / "backups").iterdir()) == []
    assert (tmp_path / "s" / "journal.jsonl").read_text() == journal
    done = knexwrap("mark", "catalog", CATALOG[2], "--applied", *opts, "--yes")
    assert done.code == 0, done.err
    [taken] = [p for p in (tmp_path / "s" / "backups").iterdir() if p.suffix == ".sqlite"]
    header = f"catalog (@knexwrap-fixture/plugin-catalog-backend) in {file}, table knex_migrations"
    assert done.err.splitlines() == [
        f"About to record as applied (without running it), in {header}:",
        f"  {CATALOG[2]}  batch 2",
        *result.out.splitlines()[2:-1],  # the note, the warning and where the backup goes, as the dry run said
        f"knexwrap: backup of knex_migrations in {file}: {taken}",
    ]
    listed = knexwrap("status", "catalog", *opts, "--json").json()["migrations"]
    [time] = [m["migration_time"] for m in listed if m["name"] == CATALOG[2]]
    assert done.out == f"{header}\nrecorded as applied (not run): {CATALOG[2]} (batch 2, {time})\nbackup: {taken}\n"
    empty = knexwrap("mark", "catalog", CATALOG[1], "--reverted", *opts, "--dry-run", "--json")
    assert empty.code == 11 and empty.json()["error"]["code"] == "migration_not_run"


def test_first_row_of_an_empty_table_is_batch_1_and_no_answer_cancels(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db"), "--state-dir", str(tmp_path / "s")]
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    assert knexwrap("down", "catalog", *opts, "--yes", "--no-backup").code == 0  # the table exists, empty
    plan = knexwrap("mark", "catalog", CATALOG[0], "--applied", *opts, "--no-backup")
    assert plan.code == 14 and "there is no terminal to ask on" in plan.err
    assert "batch 1: the table has no rows yet" in plan.err and "backup: none (--no-backup)" in plan.err
    file = tmp_path / "db" / "catalog.sqlite"
    assert sqlite_rows(file, "select count(*) from knex_migrations") == [(0,)]
    done = knexwrap("mark", "catalog", CATALOG[0], "--applied", *opts, "--no-backup", "--yes", "--json")
    assert done.code == 0 and done.json()["batch"] == 1 and done.json()["backups"] == []
    assert sqlite_rows(file, "select name, batch from knex_migrations") == [(CATALOG[0], 1)]
    [record] = [json.loads(line) for line in (tmp_path / "s" / "journal.jsonl").read_text().splitlines()][-1:]
    assert record["command"] == "mark" and record["outcome"] == "done" and record["backups"] == []
    [ran] = record["ran"]
    assert (ran["name"], ran["status"], ran["table"]) == (CATALOG[0], "applied", "knex_migrations")
    assert len(ran["sha256"]) == 64


def test_usage_and_unknown_names(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db"), "--state-dir", str(tmp_path / "s")]
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    both = knexwrap("mark", "catalog", CATALOG[1], "--applied", "--reverted", *opts)
    assert (both.code, both.err) == (2, "knexwrap: error: give exactly one of --applied and --reverted\n")
    assert knexwrap("mark", "catalog", CATALOG[1], *opts).code == 2
    unknown = knexwrap("mark", "catalog", "20990101000000_nope", "--applied", *opts, "--yes")
    assert unknown.code == 11
    folder = PLUGINS / "catalog" / "migrations"
    assert unknown.err == (
        f"knexwrap: error: no such migration 20990101000000_nope in {folder}; no migration name is close to it\n"
    )
    applied = knexwrap("mark", "catalog", CATALOG[0], "--applied", *opts, "--yes")
    assert applied.err == f'knexwrap: error: migration "{CATALOG[0]}" is already applied: nothing to record\n'
    not_run = knexwrap("mark", "catalog", CATALOG[3], "--reverted", *opts, "--yes", "--json")
    assert (not_run.code, not_run.json()["error"]["message"]) == (
        11,
        f'migration "{CATALOG[3]}" has not been run: no row to remove',
    )


GONE = "20990101000000_gone.js"
PLUGIN_FOLDER = PLUGINS / "catalog" / "migrations"


def test_a_row_whose_file_is_gone_can_be_removed(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db"), "--state-dir", str(tmp_path / "s")]
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    file = tmp_path / "db" / "catalog.sqlite"
    with sqlite3.connect(file) as con:
        for batch in (2, 3):  # twice: two runs of an older install recorded it (knex deletes by name)
            con.execute(f"insert into knex_migrations (name, batch, migration_time) values ('{GONE}', {batch}, 0)")
    assert knexwrap("up", "catalog", *opts, "--yes").code == 8  # the database is ahead of its files
    result = knexwrap("mark", "catalog", GONE, "--reverted", *opts, "--yes", "--json")
    assert result.code == 0, result.err
    assert (result.json()["sha256"], result.json()["batch"]) == (None, 3)
    assert result.json()["notes"] == [
        f"{GONE} is not in {PLUGIN_FOLDER}: only its row is removed",
        f"2 rows carry the name {GONE}: every one of them is removed, as knex's down would",
    ]
    assert sqlite_rows(file, "select name from knex_migrations") == [(CATALOG[0],)]


def test_knex_lock_held_refuses(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    env, opts = pg_env(pg), ["--database", pg_database, "--state-dir", str(tmp_path / "s")]
    assert knexwrap("up", "catalog", *opts, "--yes", env=env).code == 0
    psql_rows(pg, pg_database, "update knex_migrations_lock set is_locked = 1")
    result = knexwrap("mark", "catalog", CATALOG[1], "--applied", *opts, "--yes", env=env)
    assert result.code == 9 and "the migration lock of knex_migrations is held" in result.err
    assert psql_rows(pg, pg_database, "select name from knex_migrations") == [(CATALOG[0],)]


def test_knex_lock_taken_after_knexwraps_own_lock_refuses_inside_the_transaction(
    pg: PgServer, pg_database: str, tmp_path: Path
) -> None:
    """knex's lock is looked at again in the transaction that writes: a run that took it meanwhile wins."""
    env, opts = pg_env(pg), ["--database", pg_database, "--state-dir", str(tmp_path / "s")]
    assert knexwrap("up", "catalog", *opts, "--yes", env=env).code == 0
    first = paused(
        ["mark", "catalog", CATALOG[0], "--reverted", *opts, "--yes"], tmp_path / "a", env, stop_at=("locked",)
    )
    first.wait_at("locked")
    second = knexwrap("up", "catalog", *opts, "--yes", env=env)  # one change at a time: mark holds knexwrap's lock
    assert second.code == 9 and "another knexwrap change of knex_migrations" in second.err
    psql_rows(pg, pg_database, "update knex_migrations_lock set is_locked = 1")
    first.release("locked")
    code, _, err = first.finish()
    assert code == 9, err
    assert "the migration lock of knex_migrations in " in err.splitlines()[-1]
    assert psql_rows(pg, pg_database, "select name from knex_migrations") == [(CATALOG[0],)]


def test_pg_schema_mode_marks_the_plugins_own_table_and_backs_it_up(pg: PgServer, tmp_path: Path) -> None:
    prefix = unique_name("kw_mk") + "_"
    config = PG_TEMPLATE.format(prefix=prefix).replace(
        "    prefix:", "    pluginDivisionMode: schema\n    schemaPrefix: kw_\n    prefix:"
    )
    config = config.replace("      password:", f"      database: {prefix}shared\n      password:")
    project = e2e_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    database = f"{prefix}shared"
    create_database(pg, database)
    try:
        marked_in_schema(pg, database, project)
    finally:
        drop_database(pg, database)


def marked_in_schema(pg: PgServer, database: str, project: Path) -> None:
    psql_rows(pg, database, "create schema kw_catalog")
    decoy = (
        "create table public.knex_migrations (id serial primary key, name text, batch int, migration_time timestamptz)"
    )
    psql_rows(pg, database, decoy)  # the same name in public: never the plugin's table
    assert knexwrap("up", "catalog", "--yes", cwd=project).code == 0
    result = knexwrap("mark", "catalog", CATALOG[1], "--applied", "--yes", "--json", cwd=project)
    assert result.code == 0, result.err
    assert (result.json()["schema"], result.json()["batch"]) == ("kw_catalog", 2)
    assert psql_rows(pg, database, "select name, batch from kw_catalog.knex_migrations order by id") == [
        (CATALOG[0], "1"),
        (CATALOG[1], "2"),
    ]
    assert psql_rows(pg, database, "select count(*) from public.knex_migrations") == [("0",)]
    [taken] = result.json()["backups"]
    listing = subprocess.run(["pg_restore", "--list", taken], capture_output=True, text=True, check=True).stdout
    assert " TABLE DATA kw_catalog knex_migrations " in listing and " public " not in listing


def test_a_table_changed_between_plan_and_run_writes_nothing(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    env, opts = pg_env(pg), ["--database", pg_database, "--state-dir", str(tmp_path / "s")]
    assert knexwrap("up", "catalog", *opts, "--yes", env=env).code == 0
    first = paused(
        ["mark", "catalog", CATALOG[2], "--applied", *opts, "--yes"], tmp_path / "a", env, stop_at=("locked",)
    )
    first.wait_at("locked")  # knexwrap's lock is held: what changes the table now is not knexwrap
    psql_rows(pg, pg_database, f"insert into knex_migrations (name, batch) values ('{CATALOG[1]}', 2)")
    first.release("locked")
    code, _, err = first.finish()
    assert code == 19, err
    assert err.splitlines()[-1] == (
        "knexwrap: error: the migrations table knex_migrations changed since the plan was shown (applied since: "
        f"{CATALOG[1]}): no row was written or removed; look again (knexwrap status) and run the command again"
    )
    assert psql_rows(pg, pg_database, "select name, batch from knex_migrations order by id") == [
        (CATALOG[0], "1"),
        (CATALOG[1], "2"),
    ]
    record = json.loads((tmp_path / "s" / "journal.jsonl").read_text().splitlines()[-1])
    assert record["outcome"]["exit_code"] == 19 and len(record["backups"]) == 1


HALF = "20240102000000_half.js"
HALF_FILES = {
    "20240101000000_items.js": migration("await knex.schema.createTable('items', t => { t.increments('id'); });", ""),
    # Without a transaction: the first table stays when it throws.
    HALF: migration(
        "await knex.schema.createTable('half_a', t => { t.increments('id'); });\n  throw new Error('boom');",
        "await knex.schema.dropTable('half_a');",
        transaction=False,
    ),
}


def test_doctor_proposes_mark_after_a_half_done_migration(pg: PgServer, tmp_path: Path) -> None:
    project = make_project(tmp_path / "backstage", {})
    plugin_package(project, "@kw/plugin-half-backend", "half", "0.1.0", HALF_FILES)
    prefix = unique_name("kw_mk") + "_"
    env = pg_env(pg)
    opts = ["--prefix", prefix]

    def run(*args: str) -> tuple[int, str, str]:
        result = knexwrap(*args, *opts, cwd=project, env=env)
        return result.code, result.out, result.err

    database = f"{prefix}half"
    create_database(pg, database)
    try:
        code, _, err = run("latest", "half", "--yes")
        assert code == 12, err
        code, out, err = run("doctor", "--json")
        assert code == 17, err
        [finding] = [f for f in json.loads(out)["findings"] if f["problem"] == "half_done"]
        assert finding["files"] == [HALF] and finding["migrations_table"] == "knex_migrations"
        assert finding["fix"] == f"knexwrap mark half {HALF} --applied --prefix {prefix}"
        assert "Check the database by hand: only if it was finished by hand" in finding["message"]
        psql_rows(pg, database, "create table half_b (id int)")  # the operator finishes it by hand
        code, out, err = run(*finding["fix"].split()[1:], "--yes")
        assert code == 0, err
        code, out, _ = run("status", "half", "--json")
        # The batch it would have had: that of items.js, which the same `latest` applied before it stopped.
        assert [(m["name"], m["state"], m["batch"]) for m in json.loads(out)["migrations"]] == [
            ("20240101000000_items.js", "applied", 1),
            (HALF, "applied", 1),
        ]
        code, out, _ = run("doctor", "--json")
        assert code == 0 and json.loads(out)["findings"] == []
    finally:
        drop_database(pg, database)


def test_completion_of_mark() -> None:
    assert complete("knexwrap ma") == ["mark"]
    assert complete("knexwrap mark catalog 2024030") == ["20240301000000_refresh_state.js"]
    assert complete("knexwrap mark catalog x --re") == ["--reverted"]


def test_doctor_proposes_mark_reverted_after_a_half_done_down(tmp_path: Path) -> None:
    """SQLite: a down without a transaction drops its first table, then throws; its row stays."""
    undo = "20240103000000_undo.js"
    files = {
        undo: migration(
            "await knex.schema.createTable('u_a', t => t.increments()); "
            "await knex.schema.createTable('u_b', t => t.increments());",
            "await knex.schema.dropTable('u_a');\n  throw new Error('boom');",
            transaction=False,
        )
    }
    project = make_project(tmp_path / "backstage", {})
    plugin_package(project, "@kw/plugin-undo-backend", "undo", "0.1.0", files)
    (tmp_path / "db").mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db")]

    def run(*args: str) -> tuple[int, str, str]:
        result = knexwrap(*args, *opts, cwd=project, env={})
        return result.code, result.out, result.err

    assert run("latest", "undo", "--yes")[0] == 0
    code, _, err = run("down", "undo", undo, "--yes", "--no-backup")
    assert code == 12, err
    code, out, _ = run("doctor", "--json")
    assert code == 17
    [finding] = json.loads(out)["findings"]
    assert (finding["problem"], finding["files"]) == ("half_done", [undo])
    assert finding["fix"] == f"knexwrap mark undo {undo} --reverted {' '.join(opts)}"
    code, out, err = run("doctor")
    assert f"  fix: {finding['fix']}" in out.splitlines()
    db = tmp_path / "db" / "undo.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("drop table u_b")  # the operator finishes the down by hand
    assert run(*finding["fix"].split()[1:], "--yes")[0] == 0
    assert sqlite_rows(db, "select count(*) from knex_migrations") == [(0,)]
    assert run("doctor")[0] == 0


def test_migrations_table_name_marks_that_table_only(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db"), "--migrations-table-name", "kw_other"]
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    result = knexwrap("mark", "catalog", CATALOG[1], "--applied", *opts, "--yes", "--json")
    assert result.code == 0, result.err
    assert result.json()["migrations_table"] == "kw_other"
    file = tmp_path / "db" / "catalog.sqlite"
    assert sqlite_rows(file, "select name, batch from kw_other order by id") == [(CATALOG[0], 1), (CATALOG[1], 2)]
    assert "knex_migrations" not in sqlite_tables(file)


def test_pg_role_marks_the_table_knex_finds_under_set_role(pg: PgServer, tmp_path: Path) -> None:
    """backend.database.role: with SET ROLE the search path's "$user" is the role's own schema, where knex keeps
    its table; mark writes there and backs up that table."""
    prefix, role = unique_name("kw_mk") + "_", unique_name("kw_role")
    config = PG_TEMPLATE.format(prefix=prefix) + f"    plugin:\n      catalog:\n        role: {role}\n"
    project = e2e_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    database = f"{prefix}catalog"
    psql_rows(pg, "postgres", f"create role {role} nologin")
    create_database(pg, database)
    try:
        psql_rows(pg, database, f"create schema {role} authorization {role}")
        assert knexwrap("up", "catalog", "--yes", cwd=project).code == 0
        result = knexwrap("mark", "catalog", CATALOG[1], "--applied", "--yes", "--json", cwd=project)
        assert result.code == 0, result.err
        rows = psql_rows(pg, database, f"select name, batch from {role}.knex_migrations order by id")
        assert rows == [(CATALOG[0], "1"), (CATALOG[1], "2")]
        [taken] = result.json()["backups"]
        listing = subprocess.run(["pg_restore", "--list", taken], capture_output=True, text=True, check=True).stdout
        assert f" TABLE DATA {role} knex_migrations " in listing
    finally:
        drop_database(pg, database)
        psql_rows(pg, "postgres", f"drop role if exists {role}")


def test_mariadb_a_transactional_migration_that_failed_is_half_done_and_mark_says_why(
    mariadb: MariaServer, tmp_path: Path
) -> None:
    """Review finding: on MariaDB each DDL statement commits on its own, so a migration "in a transaction" that
    created a table and then threw left it behind: doctor proposes mark, whose plan does not claim otherwise."""
    tx = "20240102000000_tx.js"
    files = {
        "20240101000000_items.js": HALF_FILES["20240101000000_items.js"],
        tx: migration(
            "await knex.schema.createTable('tx_a', t => { t.increments('id'); });\n  throw new Error('boom');",
            "await knex.schema.dropTable('tx_a');",
        ),
    }
    project = make_project(tmp_path / "backstage", {})
    plugin_package(project, "@kw/plugin-tx-backend", "tx", "0.1.0", files)
    prefix = unique_name("kw_mk") + "_"
    where = ["--client", "mysql2", "--host", mariadb.host, "--port", str(mariadb.port), "--user", mariadb.user]
    opts = [*where, "--prefix", prefix]
    mysql_rows(mariadb, None, f"create database `{prefix}tx`")
    try:
        failed = knexwrap("latest", "tx", *opts, "--yes", cwd=project, env={})
        assert failed.code == 12, failed.err
        doctor = knexwrap("doctor", *opts, "--json", cwd=project, env={})
        assert doctor.code == 17, doctor.err
        [finding] = [f for f in doctor.json()["findings"] if f["problem"] == "half_done"]
        assert finding["files"] == [tx]
        assert "ran on MySQL/MariaDB, where DDL commits on its own, and failed part way (up" in finding["message"]
        planned = knexwrap("mark", "tx", tx, "--applied", *opts, "--dry-run", "--json", cwd=project, env={})
        assert planned.code == 0, planned.err
        assert planned.json()["warnings"] == [
            f"MySQL/MariaDB commits each DDL statement on its own: a failed run of {tx} may have left tables "
            "behind, whatever its transaction; record it only if all that it does was done by hand"
        ]
        assert planned.json()["batch"] == 1  # that of items.js, applied by the same run before it stopped
    finally:
        mysql_rows(mariadb, None, f"drop database if exists `{prefix}tx`")
