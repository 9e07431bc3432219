"""Drift (issue 12 item 2): a recorded migration whose installed file is not the content that was applied is
flagged `changed` by status, plan and doctor; the hash of what was applied comes from knexwrap's journal,
Backstage's backstage_migration_sources_<pluginId> table, or the archive (the content installed then).

Real knex (the fixture's), real SQLite files and PostgreSQL; the plugin packages are the test's own."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from backstage import make_project, ok
from helpers import knexwrap
from servers import PgServer, create_database, drop_database, pg_env, psql_rows, unique_name
from test_downgrade_more import migration, plugin_package

PKG = "@kw-drift/plugin-notes-backend"
NOTES = "20240101000000_notes.js"
TAGS = "20240201000000_tags.js"
V0 = migration(
    "await knex.schema.createTable('notes', t => { t.text('legacy'); });", "await knex.schema.dropTable('notes');"
)
V1 = migration(
    "await knex.schema.createTable('notes', t => { t.text('id'); });", "await knex.schema.dropTable('notes');"
)
V2 = migration(
    "await knex.schema.createTable('notes', t => { t.text('id'); t.text('body'); });",
    "await knex.schema.dropTable('notes');",
)
TAGS_V2 = migration(
    "await knex.schema.createTable('tags', t => { t.text('tag'); });", "await knex.schema.dropTable('tags');"
)
CHANGED = " its down() may not undo what its up() did"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sqlite_knex(project: Path, data: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """The backend's apply: `knex migrate:latest` on the plugin's SQLite file, no knexwrap involved."""
    cmd = ["node", str(project / "node_modules" / ".bin" / "knex"), "migrate:latest", "--client", "better-sqlite3"]
    cmd += ["--connection", str(data / "notes.sqlite"), "--migrations-directory", str(folder)]
    return subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "backstage", {})


def sqlite(tmp_path: Path) -> list[str]:
    (tmp_path / "sqlite").mkdir(exist_ok=True)
    return ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "sqlite")]


def header(data: Path) -> str:
    return f"notes ({PKG}) in {data / 'notes.sqlite'}, table knex_migrations\n\n"


def flagged(name: str, installed: str, applied: str, source: str) -> str:
    return (
        f"changed: {name}: the installed file (sha256 {sha(installed)[:12]}) is not the one applied "
        f"(sha256 {sha(applied)[:12]}, from {source}):{CHANGED}"
    )


def test_two_pinned_versions_status_plan_and_doctor_flag_the_changed_file(project: Path, tmp_path: Path) -> None:
    """notes 1.0.0 archived, then applied by the backend; 2.0.0 changes that file and adds one (applied by the
    backend before knexwrap saw it: unknown, no flag). A plan back flags the change, and a target whose file is
    neither the installed one nor the applied one."""
    opts, data = sqlite(tmp_path), tmp_path / "sqlite"
    folder = plugin_package(project, PKG, "notes", "1.0.0", {NOTES: V1})
    assert knexwrap("archive", cwd=project).code == 0
    ok(sqlite_knex(project, data, folder))
    plugin_package(project, PKG, "notes", "2.0.0", {NOTES: V2, TAGS: TAGS_V2})
    ok(sqlite_knex(project, data, folder))
    assert knexwrap("archive", cwd=project).code == 0

    status = knexwrap("status", "notes", *opts, cwd=project)
    assert status.code == 0, status.err
    assert status.out == header(data) + (
        "migration                state\n"
        "-----------------------  -----------------\n"
        f"{NOTES}  applied (changed)\n"
        f"{TAGS}   applied\n"
        "\n"
        "2 applied, 0 pending, 0 missing; current version 20240201000000\n"
        + flagged(NOTES, V2, V1, "the archive, the content installed then")
        + "\n"
    )
    rows = knexwrap("status", "notes", *opts, "--json", cwd=project).json()["migrations"]
    assert {k: rows[0][k] for k in ("applied_sha256", "applied_sha256_from", "file_sha256", "changed")} == {
        "applied_sha256": sha(V1),
        "applied_sha256_from": "archive",
        "file_sha256": sha(V2),
        "changed": True,
    }
    unknown = {"applied_sha256": None, "applied_sha256_from": "unknown", "changed": False}
    assert {k: rows[1][k] for k in unknown} == unknown and "file_sha256" not in rows[1]  # before the archive

    whole = knexwrap("status", *opts, cwd=project)
    assert f"notes.sqlite knex_migrations: {flagged(NOTES, V2, V1, 'the archive, the content installed then')}\n" in (
        whole.out
    )

    doctor = knexwrap("doctor", *opts, "--json", cwd=project).json()
    [finding] = doctor["findings"]
    blob = project / ".knexwrap" / "archive" / "files" / f"{sha(V1)}.js"
    assert (finding["problem"], finding["files"], finding["fix"]) == ("changed", [NOTES], None)
    assert finding["message"] == (
        f"1 recorded migration of {PKG} 2.0.0 changed since applied: {NOTES} (applied sha256 {sha(V1)[:12]} from "
        f"archive, installed {sha(V2)[:12]}; the applied content is archived as {blob}). A rollback or downgrade "
        "runs the installed file's down(), which may not undo what the applied up() did: compare the two contents "
        "before reverting"
    )

    # Back to 1.0.0, whose file is the content that was applied: changed, but the target's down() matches.
    back = make_project(tmp_path / "back", {})
    plugin_package(back, PKG, "notes", "1.0.0", {NOTES: V1})
    [planned] = knexwrap("plan", "--to", str(back), *opts, "--json", cwd=project).json()["sets"]
    assert planned["revert"] == [TAGS]
    assert planned["changed"] == [
        {"name": NOTES, "applied_sha256": sha(V1), "applied_sha256_from": "archive", "file_sha256": sha(V2)}
    ]
    assert planned["differs_in_target"] == []
    shown = knexwrap("plan", "--to", str(back), *opts, cwd=project).out
    assert f"{NOTES} changed since it was applied" not in shown  # the plan keeps it: no revert runs its down()

    # To 0.9.0, whose file is neither: its down() would not match the up() that ran either.
    old = make_project(tmp_path / "old", {})
    plugin_package(old, PKG, "notes", "0.9.0", {NOTES: V0})
    plan = knexwrap("plan", "--to", str(old), *opts, cwd=project)
    assert plan.code == 0, plan.err
    where = f"{data / 'notes.sqlite'} knex_migrations"
    assert f"warning: {where} {NOTES} changed since it was applied" not in plan.out  # kept, not reverted
    assert (
        f"warning: {where} {NOTES} differs between {PKG} 2.0.0 (sha256 {sha(V2)[:12]}) and 0.9.0 (sha256 "
        f"{sha(V0)[:12]}): once downgraded, a rollback runs the down() of 0.9.0, which may not undo the up() that ran\n"
    ) in plan.out
    [planned] = knexwrap("plan", "--to", str(old), *opts, "--json", cwd=project).json()["sets"]
    assert planned["differs_in_target"] == [{"name": NOTES, "file_sha256": sha(V2), "target_sha256": sha(V0)}]


def test_a_file_patched_in_place_is_kept_twice_and_flagged(project: Path, tmp_path: Path) -> None:
    """patch-package: the same package version, new content. archive says so and keeps both; status flags it."""
    opts, data = sqlite(tmp_path), tmp_path / "sqlite"
    folder = plugin_package(project, PKG, "notes", "1.0.0", {NOTES: V1})
    assert knexwrap("archive", cwd=project).code == 0
    ok(sqlite_knex(project, data, folder))
    (folder / NOTES).write_text(V2)

    archived = knexwrap("archive", cwd=project)
    assert archived.code == 0, archived.err
    assert archived.out == (
        f"archive {project / '.knexwrap' / 'archive'}: 1 migration set\n"
        "new: 1 file, 1 set version\n"
        f"changed in place: {PKG}@1.0.0 {NOTES} (same package version, new content; both contents kept)\n"
    )
    doc = knexwrap("archive", "--json", cwd=project).json()
    assert (doc["new_files"], doc["changed_in_place"]) == ([], [])  # said once, when it is archived
    kept = json.loads(
        (project / ".knexwrap/archive/sets/knex_migrations" / f"{PKG.replace('/', '+')}@1.0.0.json").read_text()
    )
    assert kept["seen"] == [[NOTES, sha(V1)], [NOTES, sha(V2)]] and len(kept["seen_at"]) == 2

    status = knexwrap("status", "notes", *opts, cwd=project)
    assert status.out.endswith(
        f"{NOTES}  applied (changed)\n\n1 applied, 0 pending, 0 missing; current version 20240101000000\n"
        + flagged(NOTES, V2, V1, "the archive, the content installed then")
        + "\n"
    )


def test_a_migration_knexwrap_applied_is_checked_against_its_journal(project: Path, tmp_path: Path) -> None:
    opts = sqlite(tmp_path)
    folder = plugin_package(project, PKG, "notes", "1.0.0", {NOTES: V1})
    applied = knexwrap("latest", "notes", *opts, "--yes", cwd=project)
    assert applied.code == 0, applied.err
    same = knexwrap("status", "notes", *opts, "--json", cwd=project).json()["migrations"][0]
    assert (same["applied_sha256_from"], same["changed"]) == ("journal", False)

    (folder / NOTES).write_text(V2)  # edited in place after knexwrap applied it
    status = knexwrap("status", "notes", *opts, cwd=project)
    assert status.out.endswith(
        f"{NOTES}  applied (changed)\n\n1 applied, 0 pending, 0 missing; current version 20240101000000\n"
        + flagged(NOTES, V2, V1, "knexwrap's journal")
        + "\n"
    )
    assert knexwrap("status", "notes", *opts, "--check", cwd=project).code == 0  # drift is no state of its own
    doctor = knexwrap("doctor", *opts, cwd=project)  # archives what it finds new, and says what changed in place
    warning = f"knexwrap: warning: {PKG}@1.0.0 {NOTES} changed in place (same package version): kept both contents\n"
    assert (doctor.code, doctor.err) == (17, warning)


def test_nothing_known_is_unknown_and_not_flagged(project: Path, tmp_path: Path) -> None:
    """Applied by the backend before any archive or journal: the content that ran is unknown, nothing is flagged."""
    opts, data = sqlite(tmp_path), tmp_path / "sqlite"
    folder = plugin_package(project, PKG, "notes", "1.0.0", {NOTES: V1})
    ok(sqlite_knex(project, data, folder))
    assert knexwrap("archive", cwd=project).code == 0
    (folder / NOTES).write_text(V2)
    status = knexwrap("status", "notes", *opts, cwd=project)
    assert status.out == header(data) + (
        "migration                state\n"
        "-----------------------  -------\n"
        f"{NOTES}  applied\n"
        "\n"
        "1 applied, 0 pending, 0 missing; current version 20240101000000\n"
    )
    row = knexwrap("status", "notes", *opts, "--json", cwd=project).json()["migrations"][0]
    assert set(row) == {"name", "state", "batch", "migration_time", "applied_sha256", "applied_sha256_from", "changed"}
    assert (row["applied_sha256"], row["applied_sha256_from"], row["changed"]) == (None, "unknown", False)
    assert knexwrap("doctor", *opts, "--json", cwd=project).json()["findings"] == []


# Backstage's MigrationStorage as its source creates and fills the table (createTable and storeMigration):
# the same knex schema-builder calls, through the project's own knex.
STORAGE_JS = """
const { createHash } = require('crypto');
const [config, plugin, rows] = JSON.parse(process.argv[1]);
const knex = require('knex')(config);
const table = `backstage_migration_sources_${plugin}`;
(async () => {
  await knex.schema.createTable(table, table => {
    table.increments('id').primary();
    table.string('table_name', 255).notNullable();
    table.string('migration_name', 255).notNullable();
    table.text('source_content').notNullable();
    table.string('checksum', 64).notNullable();
    table.timestamp('stored_at').notNullable().defaultTo(knex.fn.now());
    table.unique(['table_name', 'migration_name']);
  });
  for (const [name, content, checksum] of rows) {
    await knex(table).insert({
      table_name: 'knex_migrations',
      migration_name: name,
      source_content: content,
      checksum: checksum || createHash('sha256').update(content).digest('hex'),
      stored_at: knex.fn.now(),
    });
  }
  await knex.destroy();
})().catch(err => { console.error(err); process.exit(1); });
"""


def store_sources(project: Path, config: dict[str, object], rows: list[tuple[str, str, str | None]]) -> None:
    argument = json.dumps([config, "notes", rows])
    done = subprocess.run(
        ["node", "-e", STORAGE_JS, argument], cwd=project, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def pg_database(pg: PgServer) -> Iterator[tuple[str, str]]:
    prefix = unique_name("kw_drift") + "_"
    create_database(pg, f"{prefix}notes")
    yield prefix, f"{prefix}notes"
    drop_database(pg, f"{prefix}notes")


@pytest.mark.parametrize("client", ["pg", "better-sqlite3"])
def test_backstage_stored_sources_are_the_applied_content(
    client: str, project: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """backstage_migration_sources_<pluginId> as Backstage's main branch creates and fills it
    (packages/backend-defaults/src/entrypoints/database/migrations/MigrationStorage.ts, backstage/backstage
    commit 56d816604f170f166a93f00d995b45c73544ac34: ensureStorageTable, storeMigration): migration_name
    without ".js", checksum = sha256 of the source text. A row whose checksum is not its text's is not used."""
    folder = plugin_package(project, PKG, "notes", "1.0.0", {NOTES: V1, TAGS: TAGS_V2})
    if client == "pg":
        pg: PgServer = request.getfixturevalue("pg")
        prefix, db = request.getfixturevalue("pg_database")
        opts, env = ["--prefix", prefix], pg_env(pg)
        config: dict[str, object] = {"client": "pg", "connection": pg.url(db)}
        cmd = ["--client", "pg", "--connection", pg.url(db)]
    else:
        opts, env = sqlite(tmp_path), {}
        config = {"client": "better-sqlite3", "connection": {"filename": str(tmp_path / "sqlite" / "notes.sqlite")}}
        config["useNullAsDefault"] = True
        cmd = ["--client", "better-sqlite3", "--connection", str(tmp_path / "sqlite" / "notes.sqlite")]
    store_sources(project, config, [(NOTES[:-3], V1, None), (TAGS[:-3], TAGS_V2, "0" * 64)])
    knex = ["node", str(project / "node_modules/.bin/knex"), "migrate:latest", *cmd, "--migrations-directory"]
    ok(subprocess.run([*knex, str(folder)], cwd=project, capture_output=True, text=True, timeout=60, check=False))
    (folder / NOTES).write_text(V2)
    (folder / TAGS).write_text(TAGS_V2 + "// edited\n")

    status = knexwrap("status", "notes", *opts, cwd=project, env=env)
    assert status.code == 0, status.err
    assert f"{NOTES}  applied (changed)\n{TAGS}   applied\n" in status.out
    assert status.out.endswith(flagged(NOTES, V2, V1, "Backstage's stored migration sources") + "\n")
    rows = knexwrap("status", "notes", *opts, "--json", cwd=project, env=env).json()["migrations"]
    assert (rows[0]["applied_sha256_from"], rows[0]["applied_sha256"]) == ("backstage_migration_sources", sha(V1))
    assert rows[1]["applied_sha256_from"] == "unknown"  # its stored checksum is not its text's: not used
    if client == "pg":
        assert psql_rows(
            request.getfixturevalue("pg"), db, "select count(*) from backstage_migration_sources_notes"
        ) == [("2",)]


def test_an_index_written_before_first_seen_times_is_read_and_says_nothing(project: Path, tmp_path: Path) -> None:
    """An archive index of the older format (no "seen_at") still reads; its contents' times are unknown, so
    nothing is flagged from it, and status creates no state folder where there is none."""
    opts, data = sqlite(tmp_path), tmp_path / "sqlite"
    folder = plugin_package(project, PKG, "notes", "1.0.0", {NOTES: V1})
    ok(sqlite_knex(project, data, folder))
    assert knexwrap("status", "notes", *opts, cwd=project).code == 0
    assert not (project / ".knexwrap").exists()

    assert knexwrap("archive", cwd=project).code == 0
    index = project / ".knexwrap/archive/sets/knex_migrations" / f"{PKG.replace('/', '+')}@1.0.0.json"
    older = json.loads(index.read_text())
    del older["seen_at"]
    index.write_text(json.dumps(older))
    with sqlite3.connect(data / "notes.sqlite") as db:  # run again after the archive saw it
        db.execute("update knex_migrations set migration_time = ?", ("2999-01-01 00:00:00.000",))
    (folder / NOTES).write_text(V2)
    row = knexwrap("status", "notes", *opts, "--json", cwd=project).json()["migrations"][0]
    assert (row["applied_sha256"], row["applied_sha256_from"]) == (None, "unknown")


def test_a_revert_warns_of_a_file_changed_since_knexwrap_applied_it(tmp_path: Path) -> None:
    """Review finding: down and rollback (not only plan/downgrade) say that the down() they would run is not
    the one of the up() that ran."""
    from test_to import files, sqlite_db

    folder = files(tmp_path)
    _, opts = sqlite_db(tmp_path)
    where = [str(folder), *opts, "--state-dir", str(tmp_path / "state")]
    assert knexwrap("latest", *where, "--yes").code == 0  # journaled with each file's sha256
    last = sorted(p.name for p in folder.iterdir())[-1]
    before = hashlib.sha256((folder / last).read_bytes()).hexdigest()
    (folder / last).write_text((folder / last).read_text() + "\n// patched after it ran\n")
    after = hashlib.sha256((folder / last).read_bytes()).hexdigest()
    warning = (
        f"{last} changed since it was applied (sha256 {before[:12]} from knexwrap's journal, installed "
        f"{after[:12]}): reverting it runs the installed down(), which may not undo what the applied up() did"
    )
    for verb in (["down"], ["rollback"]):
        shown = knexwrap(*verb, *where, "--dry-run", "--json")
        assert shown.code == 0, shown.err
        assert warning in shown.json()["warnings"], verb
    first = sorted(p.name for p in folder.iterdir())[0]
    assert not any(first in w for w in knexwrap("down", *where, first, "--dry-run", "--json").json()["warnings"])
