"""A trusted archive, through the CLI with the real knex on SQLite: it only adds (a workspace plugin at 0.1.0 that
loses or changes a file keeps the old one archived), two contents of one name at one version run the one the
journal records as applied, else the one installed last, a plan says where files come from and which no source
has, a changed copy is refused by name, a damaged entry blocks only what needs it, a half-built run folder is
rebuilt."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from backstage import make_project
from helpers import knexwrap, sqlite_rows
from test_downgrade_more import NOTES, NOTES_FILES, plugin_package

from knexwrap.install import sets
from knexwrap.upgrade import archive

FIRST = "20240101000000_notes.js"
EXTRA = "20240201000000_extra.js"


def extra(label: str) -> str:
    """A migration whose down leaves a trace of which content ran."""
    up = "await knex.schema.createTable('extra', t => { t.text('v'); });"
    down = (
        "await knex.schema.dropTable('extra');\n"
        "  if (!(await knex.schema.hasTable('which'))) await knex.schema.createTable('which', t => t.text('v'));\n"
        f"  await knex('which').insert({{ v: '{label}' }});"
    )
    body = f"exports.up = async function up(knex) {{\n  {up}\n}};\n"
    return body + f"exports.down = async function down(knex) {{\n  {down}\n}};\n"


def run(project: Path, *args: str) -> tuple[int, str, str]:
    sets.discover_all.cache_clear()
    data = project.parent / "sqlite"
    data.mkdir(exist_ok=True)
    result = knexwrap(*args, "--client", "better-sqlite3", "--sqlite-dir", str(data), cwd=project, env={})
    return result.code, result.out, result.err


def workspace(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    """A local workspace plugin at 0.1.0 with FILES, applied by knexwrap (which archives them)."""
    project = make_project(tmp_path / "backstage", {})
    plugin_package(project, NOTES, "notes", "0.1.0", files)
    code, _, err = run(project, "latest", "notes", "--yes")
    assert code == 0, err
    return project, project.parent / "sqlite" / "notes.sqlite"


def which(db: Path) -> list[str]:
    return [r[0] for r in sqlite_rows(db, "select v from which")]


def test_a_file_the_package_lost_at_the_same_version_stays_archived(tmp_path: Path) -> None:
    project, db = workspace(tmp_path, {**NOTES_FILES, EXTRA: extra("one")})
    plugin_package(project, NOTES, "notes", "0.1.0", NOTES_FILES)  # an older checkout, same version
    code, out, err = run(project, "doctor", "--json")
    assert code == 17, err
    [finding] = json.loads(out)["findings"]
    assert f"{EXTRA} from {NOTES}@0.1.0 (archived)" in finding["message"] and finding["fix"] is not None
    code, out, err = run(project, "downgrade", "--to", str(project), "--yes", "--json")
    assert code == 0, err
    assert [(s["name"], s["state"]) for s in json.loads(out)["steps"]] == [(EXTRA, "reverted")]
    assert which(db) == ["one"]


def test_two_contents_at_one_version_run_the_applied_one_and_say_so(tmp_path: Path) -> None:
    project, db = workspace(tmp_path, {**NOTES_FILES, EXTRA: extra("applied")})
    plugin_package(project, NOTES, "notes", "0.1.0", {**NOTES_FILES, EXTRA: extra("edited")})
    code, out, _ = run(project, "doctor", "--json")  # the edited content is archived too, and flagged
    [finding] = json.loads(out)["findings"]
    assert (code, finding["problem"], finding["files"]) == (17, "changed", [EXTRA])
    plugin_package(project, NOTES, "notes", "0.1.0", NOTES_FILES)
    code, out, err = run(project, "plan", "--to", str(project))
    assert code == 0, err
    assert f"{EXTRA}: 2 archived contents, running sha256 " in out and "(the journal records it as applied)" in out
    code, _, err = run(project, "downgrade", "--to", str(project), "--yes")
    assert code == 0, err
    assert which(db) == ["applied"]

    # Without the journal's word: the one installed last.
    with sqlite3.connect(db) as conn:
        conn.execute("create table extra (v text)")
        conn.execute("insert into knex_migrations (name, batch, migration_time) values (?, 2, 0)", (EXTRA,))
    (project / ".knexwrap" / "journal.jsonl").unlink()
    code, out, err = run(project, "plan", "--to", str(project))
    assert "(the one installed last)" in out, err
    assert run(project, "downgrade", "--to", str(project), "--yes")[0] == 0
    assert which(db) == ["applied", "edited"]


def test_plan_names_files_no_source_has(tmp_path: Path) -> None:
    project, db = workspace(tmp_path, NOTES_FILES)
    with sqlite3.connect(db) as conn:  # applied by a backend whose files knexwrap never saw
        conn.execute("insert into knex_migrations (name, batch, migration_time) values (?, 2, 0)", (EXTRA,))
    code, out, err = run(project, "plan", "--to", str(project), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [(s["revert"], s["files_from"], s["missing_files"]) for s in doc["sets"]] == [([EXTRA], "none", [EXTRA])]
    assert f"{db} knex_migrations: no source has {EXTRA} (neither install nor archive)" in doc["notes"]
    code, _, err = run(project, "downgrade", "--to", str(project), "--yes")
    assert code == 3 and f"has no copy of {EXTRA}" in err


def test_a_changed_archived_copy_is_refused_by_name_and_nothing_runs(tmp_path: Path) -> None:
    project, db = workspace(tmp_path, {**NOTES_FILES, EXTRA: extra("one")})
    plugin_package(project, NOTES, "notes", "0.1.0", NOTES_FILES)
    [copy] = archive.lookup(archive.default_root(project), "knex_migrations", EXTRA)
    copy.path.write_text(extra("evil"))
    code, _, err = run(project, "downgrade", "--to", str(project), "--yes")
    assert code == 3
    # Refused before the question: nothing shown to say yes to, nothing backed up, nothing run.
    assert err.startswith(f"knexwrap: error: the archived copy of {EXTRA} ({copy.path}) is missing or changed")
    assert list((project / ".knexwrap" / "backups").iterdir()) == []
    assert [r[0] for r in sqlite_rows(db, "select name from knex_migrations order by id")] == [*NOTES_FILES, EXTRA]


def test_a_damaged_entry_of_another_package_and_a_half_built_run_folder_block_nothing(tmp_path: Path) -> None:
    project, _ = workspace(tmp_path, {**NOTES_FILES, EXTRA: extra("one")})
    plugin_package(project, NOTES, "notes", "0.1.0", NOTES_FILES)
    root = archive.default_root(project)
    (root / "sets" / "knex_migrations" / "@backstage+plugin-other-backend@1.0.0.json").write_text("{damaged")
    half = project / ".knexwrap" / "run" / "knex_migrations" / NOTES.replace("/", "+")
    half.mkdir(parents=True)
    (half / FIRST).write_text("// cut short")
    (half / f".{EXTRA}.123.partial").write_text("// cut short")
    code, out, err = run(project, "downgrade", "--to", str(project), "--yes", "--json")
    assert code == 0, err
    assert [(s["name"], s["state"]) for s in json.loads(out)["steps"]] == [(EXTRA, "reverted")]
    assert sorted(p.name for p in half.iterdir()) == sorted([FIRST, EXTRA, "package.json"])
