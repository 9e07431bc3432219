"""More downgrades on real packages, real knex, real PostgreSQL and SQLite: after the code swap, auth without a
plugin id, the scheduler in several databases, a snapshot as the target, a down migration that fails part way,
SQLite, pg_dump missing, and the Makefile's upgrade-day targets."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backstage import AUTH, CATALOG, DEFAULTS, SCAFFOLDER, SCHEDULER_TABLE, knex, make_project, ok, swap
from helpers import ROOT, Result, fresh, knexwrap, sqlite_rows, verified, where
from servers import PgServer, create_database, drop_database, pg_env, psql_rows, unique_name

from knexwrap.install import sets
from knexwrap.upgrade import archive, backup

CORRUPT = "The migration directory is corrupt, the following files are missing: "
Env = dict[str, "str | None"]


def run(*args: str, cwd: Path, env: Env, input: str | None = None) -> Result:
    """knexwrap in-process; each real run is a fresh process that finds the packages anew, so drop the cache
    of what node_modules held (the tests swap packages under one project path)."""
    fresh()
    return knexwrap(*args, cwd=cwd, env=env, input=input)


def folder(project: Path, package: str, sub: str = "") -> Path:
    return project / "node_modules" / package / "migrations" / sub


def names(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.suffix == ".js")


def applied(pg: PgServer, db: str, table: str = "knex_migrations") -> list[str]:
    return [r[0] for r in psql_rows(pg, db, f"select name from {table} order by id")]


@pytest.fixture
def databases(pg: PgServer) -> Iterator[Callable[[str], str]]:
    """Creates databases on `pg` by name; every one is dropped after the test."""
    made: list[str] = []

    def create(name: str) -> str:
        create_database(pg, name)
        made.append(name)
        return name

    yield create
    for name in made:
        drop_database(pg, name)


def pg_state(pg: PgServer, db: str) -> dict[str, list[tuple[str, ...]]]:
    """Every table of the public schema: its columns, its indexes and its rows (as text), in two queries."""
    listed = (
        "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'"
    )
    tables = [r[0] for r in psql_rows(pg, db, listed + " order by 1")]
    parts = [
        "select table_name::text, 'column', concat_ws(' ', lpad(ordinal_position::text, 4, '0'), column_name, "
        "data_type, is_nullable, column_default) from information_schema.columns "
        f"where table_schema = 'public' and table_name in ({listed})",
        "select tablename::text, 'index', indexdef from pg_indexes where schemaname = 'public'",
        *(f"select '{t}', 'row', t::text from \"{t}\" t" for t in tables),
    ]
    state: dict[str, list[tuple[str, ...]]] = {t: [] for t in tables}
    for table, kind, value in psql_rows(pg, db, " union all ".join(parts) + " order by 1, 2, 3"):
        state[table].append((kind, value))
    return state


def sqlite_state(path: Path) -> dict[str, object]:
    """Every table and index of a SQLite file: its SQL and its rows (sorted)."""
    schema = sqlite_rows(path, "select type, name, coalesce(sql, '') from sqlite_master order by 1, 2")
    rows = {
        name: sorted(sqlite_rows(path, f'select * from "{name}"'), key=repr)
        for kind, name, _ in schema
        if kind == "table"
    }
    return {"schema": schema, "rows": rows}


# ------------------------------------------------------------------------ 1. after the code swap


def test_after_the_code_swap_doctor_names_the_fix_and_the_downgrade_reverts_from_the_archive(
    pg: PgServer, tmp_path: Path, databases: Callable[[str], str]
) -> None:
    """catalog 1.24.0, upgraded to 4.0.5 (archived by a knexwrap command while installed), code swapped back to
    1.24.0: knex calls the folder corrupt; doctor says why and how; the downgrade it names fixes it."""
    project = make_project(tmp_path / "backstage", {CATALOG: "1.24.0"})
    env, prefix = pg_env(pg), unique_name("kw_swap") + "_"
    db = databases(f"{prefix}catalog")
    installed = folder(project, CATALOG)
    old = names(installed)
    ok(knex(project, pg, db, "migrate:latest", installed))  # the 1.24.0 backend starts
    psql_rows(pg, db, "create table operator_notes (id int primary key, note text)")
    psql_rows(pg, db, "insert into operator_notes values (1, 'kept'), (2, 'also kept')")

    swap(project, CATALOG, "4.0.5")
    # A knexwrap command while 4.0.5 is installed archives its files: this one applies them, too.
    upgrade = run("latest", "catalog", "--prefix", prefix, "--yes", cwd=project, env=env)
    assert upgrade.code == 0, upgrade.err
    new = [n for n in names(installed) if n not in old]
    assert len(new) == 17 and applied(pg, db) == old + new
    kept = archive.lookup(archive.default_root(project), "knex_migrations", new[-1])
    assert [(f.index.package, f.index.version) for f in kept] == [(CATALOG, "4.0.5")]

    swap(project, CATALOG, "1.24.0")
    refused = knex(project, pg, db, "migrate:list", installed)
    assert refused.returncode == 1 and CORRUPT + ", ".join(new) in refused.stderr

    doctor = run("doctor", "--prefix", prefix, cwd=project, env=env)
    assert doctor.code == 17, doctor.err
    where = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{db}"
    detail = "; ".join(f"{n} from {CATALOG}@4.0.5 (archived)" for n in new)
    assert doctor.out == (
        f"ahead: {where} knex_migrations\n"
        f"  the database is ahead of the installed {CATALOG} 1.24.0: {detail}\n"
        f"  fix: knexwrap downgrade --to {project} --prefix {prefix}\n"
        "1 problem in 1 database x migration set pair\n"
    )
    finding = run("doctor", "--prefix", prefix, "--json", cwd=project, env=env).json()["findings"]
    assert [(f["problem"], f["files"], f["fix"]) for f in finding] == [
        ("ahead", new, f"knexwrap downgrade --to {project} --prefix {prefix}")
    ]

    plan = run("plan", "--to", str(project), "--prefix", prefix, "--json", cwd=project, env=env).json()
    assert [(s["migrations_table"], s["revert"], s["files_from"]) for s in plan["sets"]] == [
        ("knex_migrations", new[::-1], "archive")
    ]

    fix = run("downgrade", "--to", str(project), "--prefix", prefix, "--yes", "--json", cwd=project, env=env)
    assert fix.code == 0, fix.err
    doc = fix.json()
    assert [(s["name"], s["state"]) for s in doc["steps"]] == [(n, "reverted") for n in new[::-1]]
    assert doc["failure"] is None
    assert verified(doc) == [f"{where} knex_migrations: 30 applied, 0 pending"]
    assert applied(pg, db) == old

    # The raw knex CLI with the 1.24.0 folder, as the older backend runs it: clean, nothing pending.
    listing = ok(knex(project, pg, db, "migrate:list", installed))
    assert "Found 30 Completed Migration file/files." in listing and "No Pending Migration files Found." in listing
    assert psql_rows(pg, db, "select id, note from operator_notes order by id") == [("1", "kept"), ("2", "also kept")]
    assert run("doctor", "--prefix", prefix, cwd=project, env=env).code == 0
    # 1.24.0's own files still load from the project: this one requires('uuid').
    bootstrap = "20200809202832_add_bootstrap_location.js"
    assert "require('uuid')" in (installed / bootstrap).read_text()
    for command in ("down", "up"):
        again = run(command, "catalog", bootstrap, "--prefix", prefix, "--yes", cwd=project, env=env)
        assert again.code == 0, again.err
    assert applied(pg, db) == [n for n in old if n != bootstrap] + [bootstrap]


# ------------------------------------------------------------- 2. auth-backend without a plugin id


def test_auth_back_to_a_release_without_a_plugin_id(
    pg: PgServer, tmp_path: Path, databases: Callable[[str], str]
) -> None:
    """auth-backend 0.17.4 declares no backstage.pluginId: its set is still the "auth" database's."""
    old = make_project(tmp_path / "old", {AUTH: "0.17.4"})
    new = make_project(tmp_path / "new", {AUTH: "0.31.0"})
    assert "pluginId" not in json.dumps(json.loads((old / "node_modules" / AUTH / "package.json").read_text()))
    env, prefix = pg_env(pg), unique_name("kw_auth") + "_"
    db = databases(f"{prefix}auth")
    ok(knex(old, pg, db, "migrate:latest", folder(old, AUTH)))
    ok(knex(new, pg, db, "migrate:latest", folder(new, AUTH)))
    newer = [n for n in names(folder(new, AUTH)) if n not in names(folder(old, AUTH))]
    assert len(newer) == 9 and "20230428155633_sessions.js" in newer
    tables = "select tablename from pg_tables where schemaname = 'public'"
    assert ("sessions",) in psql_rows(pg, db, tables)

    plan = run("plan", "--to", str(old), "--prefix", prefix, "--json", cwd=new, env=env)
    assert plan.code == 0, plan.err
    assert [
        (s["plugin"], s["migrations_table"], s["version_now"], s["version_target"], s["revert"])
        for s in plan.json()["sets"]
    ] == [("auth", "knex_migrations", "0.31.0", "0.17.4", newer[::-1])]
    result = run("downgrade", "--to", str(old), "--prefix", prefix, "--yes", "--json", cwd=new, env=env)
    assert result.code == 0, result.err
    doc = result.json()
    assert [(s["name"], s["state"]) for s in doc["steps"]] == [(n, "reverted") for n in newer[::-1]]
    assert verified(doc) == [f"postgresql://{pg.user}@{pg.host}:{pg.port}/{db} knex_migrations: 4 applied, 0 pending"]
    assert applied(pg, db) == names(folder(old, AUTH))
    assert ("sessions",) not in psql_rows(pg, db, tables)
    listing = ok(knex(old, pg, db, "migrate:list", folder(old, AUTH)))
    assert "Found 4 Completed Migration file/files." in listing and "No Pending Migration files Found." in listing


# ------------------------------------------------- 3. the scheduler set, in several plugin databases


def test_one_downgrade_reverts_the_scheduler_set_in_every_database(
    pg: PgServer, tmp_path: Path, databases: Callable[[str], str]
) -> None:
    """backend-defaults 0.10.0 -> 0.9.0: the catalog and scaffolder databases each hold the scheduler's table."""
    packages = {CATALOG: "4.0.5", SCAFFOLDER: "4.3.0"}
    old = make_project(tmp_path / "old", {**packages, DEFAULTS: "0.9.0"})
    new = make_project(tmp_path / "new", {**packages, DEFAULTS: "0.10.0"})
    env, prefix = pg_env(pg), unique_name("kw_sched") + "_"
    dbs = {plugin: databases(f"{prefix}{plugin}") for plugin in ("catalog", "scaffolder")}
    for plugin, package in (("catalog", CATALOG), ("scaffolder", SCAFFOLDER)):
        ok(knex(old, pg, dbs[plugin], "migrate:latest", folder(old, package)))
        ok(knex(old, pg, dbs[plugin], "migrate:latest", folder(old, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
        ok(knex(new, pg, dbs[plugin], "migrate:latest", folder(new, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
    last_run = "20250411000000_last_run.js"
    columns = (
        "select column_name from information_schema.columns "
        "where table_name = 'backstage_backend_tasks__tasks' and column_name like 'last_run%' order by 1"
    )
    for db in dbs.values():
        assert applied(pg, db, SCHEDULER_TABLE)[-1] == last_run
        assert psql_rows(pg, db, columns) == [("last_run_ended_at",), ("last_run_error_json",)]
    plugin_rows = {db: applied(pg, db) for db in dbs.values()}

    result = run("downgrade", "--to", str(old), "--prefix", prefix, "--yes", "--json", cwd=new, env=env)
    assert result.code == 0, result.err
    doc = result.json()
    url = f"postgresql://{pg.user}@{pg.host}:{pg.port}/"
    assert [(where(s), s["migrations_table"], s["name"], s["state"]) for s in doc["steps"]] == [
        (url + dbs[plugin], SCHEDULER_TABLE, last_run, "reverted") for plugin in ("catalog", "scaffolder")
    ]
    assert [Path(b).name.rsplit("-", 1)[0] for b in doc["backups"]] == [dbs["catalog"], dbs["scaffolder"]]
    assert verified(doc) == [
        f"{url}{dbs[plugin]} {SCHEDULER_TABLE}: 2 applied, 0 pending" for plugin in ("catalog", "scaffolder")
    ]
    for db in dbs.values():
        assert applied(pg, db, SCHEDULER_TABLE) == names(folder(old, DEFAULTS, "scheduler"))
        assert psql_rows(pg, db, columns) == []
        assert applied(pg, db) == plugin_rows[db]  # the plugins' own sets: the same versions, untouched
    assert run("status", "--prefix", prefix, "--check", cwd=old, env=env).code == 0


# ------------------------------------------------------------------------- 4. a snapshot as the target

# knex writes JS Dates (millisecond precision); the snapshot holds them as toISOString() gives them.
ISO = """to_char(migration_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


def recorded(pg: PgServer, db: str, table: str) -> list[dict[str, object]]:
    found = psql_rows(pg, db, f"select name, batch, {ISO} from {table} order by id")
    return [{"name": n, "batch": int(b), "migration_time": t} for n, b, t in found]


def test_back_to_exactly_what_the_snapshot_recorded(
    pg: PgServer, tmp_path: Path, databases: Callable[[str], str]
) -> None:
    project = make_project(tmp_path / "backstage", {CATALOG: "1.24.0", DEFAULTS: "0.9.0"})
    env, prefix = pg_env(pg), unique_name("kw_snapdown") + "_"
    db = databases(f"{prefix}catalog")
    ok(knex(project, pg, db, "migrate:latest", folder(project, CATALOG)))
    ok(knex(project, pg, db, "migrate:up", folder(project, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
    ok(knex(project, pg, db, "migrate:up", folder(project, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
    before = {t: recorded(pg, db, t) for t in ("knex_migrations", SCHEDULER_TABLE)}
    snap = tmp_path / "before-upgrade.json"
    taken = run("snapshot", "--out", str(snap), "--prefix", prefix, cwd=project, env=env)
    assert taken.code == 0, taken.err
    doc = json.loads(snap.read_text())
    [catalog_db] = [d for d in doc["databases"] if d["plugin"] == "catalog"]
    assert {s["table"]: s["applied"] for s in catalog_db["sets"]} == before  # the snapshot file's own format

    swap(project, CATALOG, "4.0.5")
    swap(project, DEFAULTS, "0.10.0")
    ok(knex(project, pg, db, "migrate:latest", folder(project, CATALOG)))  # the new backend starts
    ok(knex(project, pg, db, "migrate:latest", folder(project, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
    assert len(applied(pg, db)) == 47 and len(applied(pg, db, SCHEDULER_TABLE)) == 3

    plan = run("plan", "--to", str(snap), "--prefix", prefix, "--json", cwd=project, env=env)
    assert plan.code == 0, plan.err
    newer = [n for n in names(folder(project, CATALOG)) if n not in {r["name"] for r in before["knex_migrations"]}]
    assert [
        (s["migrations_table"], s["version_now"], s["version_target"], s["revert"], s["files_from"])
        for s in plan.json()["sets"]
    ] == [
        ("knex_migrations", "4.0.5", "1.24.0", newer[::-1], "install"),
        (SCHEDULER_TABLE, "0.10.0", "0.9.0", ["20250411000000_last_run.js"], "install"),
    ]
    assert plan.json()["to"] == {"kind": "snapshot", "path": str(snap), "taken_at": doc["taken_at"]}

    result = run("downgrade", "--to", str(snap), "--prefix", prefix, "--yes", "--json", cwd=project, env=env)
    assert result.code == 0, result.err
    assert [(s["migrations_table"], s["name"]) for s in result.json()["steps"]] == [
        *(("knex_migrations", n) for n in newer[::-1]),
        (SCHEDULER_TABLE, "20250411000000_last_run.js"),
    ]
    # Verified like a downgrade to a folder: the real knex lists each set with the snapshot's own files.
    url = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{db}"
    assert verified(result.json()) == [
        f"{url} {t}: {len(before[t])} applied, 0 pending" for t in ("knex_migrations", SCHEDULER_TABLE)
    ]
    # Row for row what the snapshot recorded: names, batches and the times they first ran.
    assert {t: recorded(pg, db, t) for t in before} == before
    # The code goes back too: the older install is in sync.
    swap(project, CATALOG, "1.24.0")
    swap(project, DEFAULTS, "0.9.0")
    assert run("status", "--prefix", prefix, "--check", cwd=project, env=env).code == 0


# --------------------------------------------------------- 5. a down migration that fails part way

FLAKY = "@knexwrap-test/plugin-flaky-backend"
NOTES = "@knexwrap-test/plugin-notes-backend"


def migration(up: str, down: str, *, transaction: bool = True) -> str:
    body = f"exports.up = async function up(knex) {{\n  {up}\n}};\n"
    body += f"exports.down = async function down(knex) {{\n  {down}\n}};\n"
    return body if transaction else body + "exports.config = { transaction: false };\n"


def plugin_package(project: Path, name: str, plugin_id: str, version: str, files: dict[str, str]) -> Path:
    """A backend plugin of the test's own in the project's node_modules, found by its backstage.pluginId."""
    package = project / "node_modules" / name
    shutil.rmtree(package, ignore_errors=True)
    (package / "migrations").mkdir(parents=True)
    meta = {"name": name, "version": version, "backstage": {"role": "backend-plugin", "pluginId": plugin_id}}
    (package / "package.json").write_text(json.dumps(meta, indent=2) + "\n")
    for file, body in files.items():
        (package / "migrations" / file).write_text(body)
    return package / "migrations"


FLAKY_FILES = {
    "20240101000000_items.js": migration(
        "await knex.schema.createTable('items', t => { t.increments('id'); t.text('name').notNullable(); });\n"
        "  await knex('items').insert([{ name: 'first' }, { name: 'second' }]);",
        "await knex.schema.dropTable('items');",
    ),
    "20240102000000_tags.js": migration(
        "await knex.schema.createTable('tags', t => { t.text('tag').primary(); });\n"
        "  await knex('tags').insert([{ tag: 'red' }, { tag: 'blue' }]);",
        "await knex.schema.dropTable('tags');",
    ),
}
FLAKY_NEWER = {
    "20240103000000_item_notes.js": migration(
        "await knex.schema.alterTable('items', t => { t.text('note'); });\n"
        "  await knex('items').update({ note: 'noted' });",
        "await knex.schema.alterTable('items', t => { t.dropColumn('note'); });",
    ),
    # Its down drops a table, then fails: outside a transaction the drop stays done.
    "20240104000000_items_archive.js": migration(
        "await knex.schema.createTable('items_archive', t => { t.integer('id'); t.text('name'); });\n"
        "  await knex.raw('insert into items_archive select id, name from items');",
        "await knex.schema.dropTable('items_archive');\n"
        "  await knex.raw('insert into items select * from items_archive_log');",
        transaction=False,
    ),
    "20240105000000_audit.js": migration(
        "await knex.schema.createTable('audit', t => { t.increments('id'); t.text('what'); });\n"
        "  await knex('audit').insert({ what: 'upgraded' });",
        "await knex.schema.dropTable('audit');",
    ),
}
NOTES_FILES = {
    "20240101000000_notes.js": migration(
        "await knex.schema.createTable('notes', t => { t.increments('id'); t.text('body'); });\n"
        "  await knex('notes').insert([{ body: 'one' }, { body: 'two' }]);",
        "await knex.schema.dropTable('notes');",
    ),
}
NOTES_NEWER = {
    "20240201000000_pinned.js": migration(
        "await knex.schema.alterTable('notes', t => { t.boolean('pinned').defaultTo(false); });",
        "await knex.schema.alterTable('notes', t => { t.dropColumn('pinned'); });",
    ),
}


def test_a_down_migration_failing_part_way_is_reported_exactly_and_the_backup_restores(
    pg: PgServer, tmp_path: Path, databases: Callable[[str], str]
) -> None:
    old = make_project(tmp_path / "old", {DEFAULTS: "0.9.0"})
    new = make_project(tmp_path / "new", {DEFAULTS: "0.10.0"})
    plugin_package(old, FLAKY, "flaky", "1.0.0", FLAKY_FILES)
    plugin_package(old, NOTES, "notes", "1.0.0", NOTES_FILES)
    flaky = plugin_package(new, FLAKY, "flaky", "2.0.0", {**FLAKY_FILES, **FLAKY_NEWER})
    notes = plugin_package(new, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})
    env, prefix = pg_env(pg), unique_name("kw_fail") + "_"
    dbs = {plugin: databases(f"{prefix}{plugin}") for plugin in ("flaky", "notes")}
    ok(knex(new, pg, dbs["flaky"], "migrate:latest", flaky))
    ok(knex(new, pg, dbs["flaky"], "migrate:latest", folder(new, DEFAULTS, "scheduler"), SCHEDULER_TABLE))
    ok(knex(new, pg, dbs["notes"], "migrate:latest", notes))
    psql_rows(pg, dbs["flaky"], "create table operator_notes (id int primary key, note text)")
    psql_rows(pg, dbs["flaky"], "insert into operator_notes values (1, 'kept')")
    before = {plugin: pg_state(pg, db) for plugin, db in dbs.items()}

    plan = run("downgrade", "--to", str(old), "--prefix", prefix, "--dry-run", cwd=new, env=env)
    assert plan.code == 0, plan.err
    assert f"warning: {url(pg, dbs['flaky'])} 20240104000000_items_archive.js runs without a transaction" in plan.out

    result = run("downgrade", "--to", str(old), "--prefix", prefix, "--yes", "--json", cwd=new, env=env)
    assert result.code == 12, result.err
    doc = result.json()
    message = (
        'migration "20240104000000_items_archive.js" failed: insert into items select * from items_archive_log - '
        'relation "items_archive_log" does not exist'
    )
    flaky_url, notes_url = url(pg, dbs["flaky"]), url(pg, dbs["notes"])
    assert [(where(s), s["migrations_table"], s["name"], s["state"], s["message"]) for s in doc["steps"]] == [
        (flaky_url, "knex_migrations", "20240105000000_audit.js", "reverted", None),
        (flaky_url, "knex_migrations", "20240104000000_items_archive.js", "failed", message),
        (flaky_url, "knex_migrations", "20240103000000_item_notes.js", "not_run", None),
        (flaky_url, SCHEDULER_TABLE, "20250411000000_last_run.js", "not_run", None),
        (notes_url, "knex_migrations", "20240201000000_pinned.js", "not_run", None),
    ]
    assert doc["failure"] == {"code": "migration_failed", "message": message, "exit_code": 12}
    assert verified(doc) == []
    assert result.err.endswith(f"knexwrap: error: {message}\n")

    # Exactly that happened, nothing else: audit reverted, the failed down's first step done, the rest as it was.
    after = pg_state(pg, dbs["flaky"])
    assert set(before["flaky"]) - set(after) == {"audit", "items_archive"}
    for table in ("items", "tags", "operator_notes", SCHEDULER_TABLE, "backstage_backend_tasks__tasks"):
        assert after[table] == before["flaky"][table], table
    assert applied(pg, dbs["flaky"]) == [
        *FLAKY_FILES,
        "20240103000000_item_notes.js",
        "20240104000000_items_archive.js",
    ]
    assert psql_rows(pg, dbs["flaky"], "select is_locked from knex_migrations_lock") == [("0",)]
    assert pg_state(pg, dbs["notes"]) == before["notes"]

    # Each database's backup, restored into a fresh database, is that database as it was before the downgrade.
    assert [Path(b).parent for b in doc["backups"]] == [new / ".knexwrap" / "backups"] * 2
    for plugin, dump in zip(("flaky", "notes"), doc["backups"], strict=True):
        assert Path(dump).name.startswith(f"{dbs[plugin]}-") and dump.endswith(".dump")
        fresh = databases(unique_name("kw_restored"))
        restore = subprocess.run(
            ["pg_restore", "--no-owner", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", fresh, dump],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
            check=False,
        )
        assert restore.returncode == 0, restore.stderr
        assert pg_state(pg, fresh) == before[plugin], plugin


def url(pg: PgServer, db: str) -> str:
    return f"postgresql://{pg.user}@{pg.host}:{pg.port}/{db}"


# ----------------------------------------------------------------------------------------- 6. SQLite


def test_sqlite_catalog_upgrade_and_downgrade_with_a_copy_of_the_file(tmp_path: Path) -> None:
    """catalog 1.24.0 -> 4.0.5 -> code back at 1.24.0 on better-sqlite3 files (Backstage's connection.directory)."""
    project = make_project(tmp_path / "backstage", {CATALOG: "1.24.0"})
    data = tmp_path / "sqlite"
    data.mkdir()
    sqlite = ["--client", "better-sqlite3", "--sqlite-dir", str(data)]
    db = data / "catalog.sqlite"
    installed = folder(project, CATALOG)
    old = names(installed)
    assert run("latest", "catalog", *sqlite, "--yes", cwd=project, env={}).code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("create table operator_notes (id integer primary key, note text)")
        conn.execute("insert into operator_notes values (1, 'kept'), (2, 'also kept')")
    swap(project, CATALOG, "4.0.5")
    upgrade = run("latest", "catalog", *sqlite, "--yes", cwd=project, env={})
    assert upgrade.code == 0, upgrade.err
    new = [n for n in names(installed) if n not in old]
    assert [r[0] for r in sqlite_rows(db, "select name from knex_migrations order by id")] == old + new

    swap(project, CATALOG, "1.24.0")
    doctor = run("doctor", *sqlite, "--json", cwd=project, env={})
    assert doctor.code == 17, doctor.err
    assert [(where(f), f["files"], f["fix"]) for f in doctor.json()["findings"]] == [
        (str(db), new, f"knexwrap downgrade --to {project} {' '.join(sqlite)}")
    ]
    before = sqlite_state(db)
    result = run("downgrade", "--to", str(project), *sqlite, "--yes", "--json", cwd=project, env={})
    assert result.code == 0, result.err
    doc = result.json()
    assert [(where(s), s["name"], s["state"]) for s in doc["steps"]] == [(str(db), n, "reverted") for n in new[::-1]]
    assert verified(doc) == [f"{db} knex_migrations: 30 applied, 0 pending"]
    assert [r[0] for r in sqlite_rows(db, "select name from knex_migrations order by id")] == old
    assert sqlite_rows(db, "select id, note from operator_notes order by id") == [(1, "kept"), (2, "also kept")]
    # The backup is a copy of the file as it was before the first change.
    [backup] = doc["backups"]
    assert Path(backup).parent == project / ".knexwrap" / "backups" and Path(backup).name.startswith("catalog-")
    assert backup.endswith(".sqlite") and sqlite_state(Path(backup)) == before
    assert sqlite_state(db) != before
    assert run("doctor", *sqlite, cwd=project, env={}).code == 0
    assert run("status", *sqlite, "--check", cwd=project, env={}).code == 0


# -------------------------------------------------------------------------------- 7. pg_dump missing


def test_without_pg_dump_a_clear_refusal_then_no_backup_works(
    pg: PgServer, tmp_path: Path, databases: Callable[[str], str]
) -> None:
    old = make_project(tmp_path / "old", {})
    new = make_project(tmp_path / "new", {})
    plugin_package(old, NOTES, "notes", "1.0.0", NOTES_FILES)
    notes = plugin_package(new, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})
    env, prefix = pg_env(pg), unique_name("kw_nodump") + "_"
    db = databases(f"{prefix}notes")
    ok(knex(new, pg, db, "migrate:latest", notes))
    before = pg_state(pg, db)
    # A PATH with node (knexwrap runs knex with it) and nothing else: no pg_dump.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = shutil.which("node")
    assert node is not None
    (bin_dir / "node").symlink_to(node)
    args = ["downgrade", "--to", str(old), "--prefix", prefix, "--yes"]

    refused = run(*args, cwd=new, env={**env, "PATH": str(bin_dir)})
    assert refused.code == 15, refused.err
    # Refused before the plan is even shown for confirmation: nothing to answer, nothing changed.
    assert refused.err == (
        "knexwrap: error: pg_dump is not installed or not on PATH (knexwrap backs up each PostgreSQL database "
        "before it reverts anything; or pass --no-backup)\n"
    )
    assert pg_state(pg, db) == before
    assert not (new / ".knexwrap" / "backups").exists() or not any((new / ".knexwrap" / "backups").iterdir())
    as_json = run(*args, "--json", cwd=new, env={**env, "PATH": str(bin_dir)})
    assert as_json.code == 15 and as_json.json()["error"]["code"] == "backup_failed"

    result = run(*args, "--no-backup", "--json", cwd=new, env={**env, "PATH": str(bin_dir)})
    assert result.code == 0, result.err
    doc = result.json()
    assert (doc["backups"], [(s["name"], s["state"]) for s in doc["steps"]]) == (
        [],
        [("20240201000000_pinned.js", "reverted")],
    )
    assert applied(pg, db) == list(NOTES_FILES)


# ------------------------------------------------------------------------- 8. the Makefile's targets


def make(
    target: str, *variables: str, env: dict[str, str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    # -o: the venv counts as built; these are the upgrade-day recipes, `make test` covers building it.
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", target, *variables]
    return subprocess.run(cmd, env=env, input=input, capture_output=True, text=True, timeout=300, check=False)


def test_makefile_pre_upgrade_post_upgrade_and_downgrade(
    pg: PgServer, tmp_path: Path, databases: Callable[[str], str]
) -> None:
    project = make_project(tmp_path / "backstage", {})
    notes = plugin_package(project, NOTES, "notes", "1.0.0", NOTES_FILES)
    prefix = unique_name("kw_make") + "_"
    db = databases(f"{prefix}notes")
    ok(knex(project, pg, db, "migrate:latest", notes))
    before = recorded(pg, db, "knex_migrations")
    dropped = ("PG", "POSTGRES_", "KNEXWRAP_", "MAKE", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(POSTGRES_HOST=pg.host, POSTGRES_PORT=str(pg.port), POSTGRES_USER=pg.user)
    where = [f"BACKSTAGE={project}", f"KNEXWRAP_ARGS=--prefix {prefix}"]

    pre = make("pre-upgrade", *where, env=env)
    assert pre.returncode == 0, pre.stderr
    [snap] = (project / ".knexwrap" / "snapshots").iterdir()
    assert f"snapshot of 1 database and 1 migration set written to {snap}" in pre.stdout

    plugin_package(project, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})  # yarn install
    pending = make("post-upgrade", *where, env=env)
    assert pending.returncode != 0 and "Error 10" in pending.stderr  # status --check: the new migration is pending
    ok(knex(project, pg, db, "migrate:latest", notes))  # the upgraded backend starts
    post = make("post-upgrade", *where, env=env)
    assert post.returncode == 0, post.stderr
    index = archive.default_root(project) / "sets" / "knex_migrations" / f"{NOTES.replace('/', '+')}@2.0.0.json"
    assert list(json.loads(index.read_text())["files"]) == [*NOTES_FILES, *NOTES_NEWER]

    usage = make("downgrade", *where, env=env)
    assert usage.returncode == 2 and "usage: make downgrade TO=" in usage.stderr
    down = make("downgrade", *where, f"TO={snap.relative_to(project)}", env=env, input="y\n")
    assert down.returncode == 0, down.stderr
    assert "20240201000000_pinned.js" in down.stdout and "Go ahead?" in down.stderr
    assert recorded(pg, db, "knex_migrations") == before
    kept = sorted(p.name.split(".", 1)[1] for p in (project / ".knexwrap" / "backups").iterdir())
    assert kept == ["dump", "dump.json"]  # the backup and its manifest


# ------------------------------------------------- the archive refresh: commands that change, plan, diagnose


@pytest.mark.parametrize(
    "command",
    [
        ["plan", "--to", "{project}"],
        ["downgrade", "--to", "{project}", "--dry-run"],
        ["doctor"],
        ["latest", "notes", "--dry-run"],
    ],
    ids=lambda c: c[0],
)
def test_commands_that_plan_change_or_diagnose_archive_the_installed_files(
    pg: PgServer, tmp_path: Path, databases: Callable[[str], str], command: list[str]
) -> None:
    """While the newer files are installed, such a command keeps them: later the code may be swapped back."""
    project = make_project(tmp_path / "backstage", {})
    plugin_package(project, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})
    prefix = unique_name("kw_refresh") + "_"
    databases(f"{prefix}notes")
    assert archive.unarchived(project, sets.discover_all(project)) != []
    args = [a.format(project=project) for a in command]
    result = run(*args, "--prefix", prefix, cwd=project, env=pg_env(pg))
    assert result.code == 0, result.err
    fresh()
    assert archive.unarchived(project, sets.discover_all(project)) == []
    assert [
        f.index.version
        for f in archive.lookup(archive.default_root(project), "knex_migrations", "20240201000000_pinned")
    ] == ["2.0.0"]


# -------------------------------------------------------- backups taken within one second are both kept


def test_a_second_downgrade_in_the_same_second_keeps_the_first_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backups are named to the second: a retry right after a run must not overwrite the first run's backup."""
    newest = {
        **NOTES_NEWER,
        "20240301000000_archived.js": migration(
            "await knex.schema.createTable('a', t => { t.integer('id'); });", "await knex.schema.dropTable('a');"
        ),
    }
    projects = {}
    for version, files in (
        ("1.0.0", NOTES_FILES),
        ("2.0.0", {**NOTES_FILES, **NOTES_NEWER}),
        ("3.0.0", {**NOTES_FILES, **newest}),
    ):
        projects[version] = make_project(tmp_path / version, {})
        plugin_package(projects[version], NOTES, "notes", version, files)
    data = tmp_path / "sqlite"
    data.mkdir()
    sqlite = ["--client", "better-sqlite3", "--sqlite-dir", str(data)]
    assert run("latest", "notes", *sqlite, "--yes", cwd=projects["3.0.0"], env={}).code == 0
    one_second = time.gmtime()
    monkeypatch.setattr(backup, "time", types.SimpleNamespace(strftime=time.strftime, gmtime=lambda: one_second))
    backups = []
    for target in ("2.0.0", "1.0.0"):
        result = run(
            "downgrade", "--to", str(projects[target]), *sqlite, "--yes", "--json", cwd=projects["3.0.0"], env={}
        )
        assert result.code == 0, result.err
        backups += result.json()["backups"]
    assert len(set(backups)) == 2
    assert [len(sqlite_rows(Path(b), "select name from knex_migrations")) for b in backups] == [3, 2]
