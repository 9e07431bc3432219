"""The migration-file archive on real Backstage packages, and reverting from it with the real knex."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from backstage import CATALOG, DEFAULTS, SCHEDULER_TABLE, TASKS, fetch, knex, make_project, ok, package_dir, swap
from helpers import fresh
from servers import PgServer, psql_rows

from knexwrap.errors import ConfigError
from knexwrap.install import sets
from knexwrap.upgrade import archive, runfolder

CORRUPT = "The migration directory is corrupt, the following files are missing: "
TABLE = "knex_migrations"
KEY = (TABLE, CATALOG)
# catalog 1.24.0 and 4.0.5 ship these under the same name with different contents.
CHANGED = (
    "20200527114117_location_update_log_latest_view.js",
    "20200702153613_entities.js",
    "20200721115244_location_update_log_latest_deduplicate.js",
    "20200809202832_add_bootstrap_location.js",
    "20201005122705_add_entity_full_name.js",
    "20210302150147_refresh_state.js",
    "20220116144621_remove_legacy.js",
)


def installed(project: Path) -> tuple[sets.MigrationSet, ...]:
    # discover_all caches per project path; the tests swap packages under the same path.
    fresh()
    return sets.discover_all(project)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".js")


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def catalog_files(version: str) -> Path:
    return fetch(CATALOG, version) / "migrations"


def applied(pg: PgServer, db: str) -> list[str]:
    return [r[0] for r in psql_rows(pg, db, f"select name from {TABLE} order by id")]


def knex_down(project: Path, pg: PgServer, db: str, name: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """`node <project>/node_modules/.bin/knex migrate:down NAME`, as backstage.knex runs knex."""
    cmd = ["node", str(project / "node_modules" / ".bin" / "knex"), "migrate:down", name, "--client", "pg"]
    cmd += ["--connection", pg.url(db), "--migrations-directory", str(folder)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "FORCE_COLOR"}
    return subprocess.run(cmd, cwd=project, env={**env, "NO_COLOR": "1"}, capture_output=True, text=True, check=False)


@pytest.fixture
def both(tmp_path: Path) -> Path:
    """A project that had catalog 1.24.0, was upgraded to 4.0.5 and archived at each step."""
    project = make_project(tmp_path / "project", {CATALOG: "1.24.0"})
    archive.archive(project, installed(project))
    swap(project, CATALOG, "4.0.5")
    archive.archive(project, installed(project))
    return project


def test_two_versions_of_one_name_both_survive(tmp_path: Path) -> None:
    project = make_project(tmp_path, {CATALOG: "1.24.0"})
    first = archive.archive(project, installed(project))
    assert (first.root, len(first.new_files), first.new_indexes) == (
        project / ".knexwrap" / "archive",
        30,
        (f"{CATALOG}@1.24.0 {TABLE}",),
    )
    swap(project, CATALOG, "4.0.5")
    second = archive.archive(project, installed(project))
    new = names(catalog_files("4.0.5"))[30:]
    assert sorted(second.new_files) == sorted(f"{CATALOG}@4.0.5 {n}" for n in (*CHANGED, *new))
    assert len(list((first.root / "files").iterdir())) == 30 + 24

    for name in CHANGED:
        found = archive.lookup(first.root, TABLE, name)
        assert [(f.index.version, f.index.package, f.index.folder) for f in found] == [
            ("4.0.5", CATALOG, f"node_modules/{CATALOG}/migrations"),
            ("1.24.0", CATALOG, f"node_modules/{CATALOG}/migrations"),
        ]
        assert [f.path.read_bytes() for f in found] == [
            (catalog_files(v) / name).read_bytes() for v in ("4.0.5", "1.24.0")
        ]
    assert [f.index.version for f in archive.lookup(first.root, TABLE, "20200511113813_init")] == ["4.0.5", "1.24.0"]
    newest = archive.lookup(first.root, TABLE, "20261013000000_final_entity_generations.js")
    assert [f.index.version for f in newest] == ["4.0.5"]
    assert archive.lookup(first.root, "no_such_table", "20200511113813_init.js") == []


def test_index_lists_each_name_and_hash(both: Path) -> None:
    path = both / ".knexwrap" / "archive" / "sets" / TABLE / "@backstage+plugin-catalog-backend@1.24.0.json"
    doc = json.loads(path.read_text())
    assert {k: v for k, v in doc.items() if k not in ("files", "seen", "seen_at")} == {
        "format": 1,
        "table": TABLE,
        "package": CATALOG,
        "version": "1.24.0",
        "plugin_id": "catalog",
        "folder": f"node_modules/{CATALOG}/migrations",
        "module_type": "commonjs",
    }
    assert list(doc["files"]) == names(catalog_files("1.24.0"))
    assert doc["seen"] == [[name, sha] for name, sha in doc["files"].items()]  # every content seen, in order
    assert len(doc["seen_at"]) == len(doc["seen"]) and all(t.endswith("+00:00") for t in doc["seen_at"])
    blob = path.parents[2] / "files" / f"{doc['files']['20200511113813_init.js']}.js"
    assert blob.read_bytes() == (catalog_files("1.24.0") / "20200511113813_init.js").read_bytes()


def test_archiving_again_changes_nothing(both: Path) -> None:
    root = archive.default_root(both)
    before = tree(root)
    again = archive.archive(both, installed(both))
    assert (again.new_files, again.new_indexes, again.skipped) == ((), (), ())
    assert [(i.package, i.version) for i in again.indexes] == [(CATALOG, "4.0.5")]
    assert tree(root) == before


def test_unarchived_finds_sets_whose_files_are_not_all_kept(tmp_path: Path) -> None:
    project = make_project(tmp_path, {CATALOG: "1.24.0"})
    found = installed(project)
    assert archive.unarchived(project, found) == list(found)
    archive.archive(project, found)
    assert archive.unarchived(project, found) == []

    swap(project, CATALOG, "4.0.5")
    assert [s.version for s in archive.unarchived(project, installed(project))] == ["4.0.5"]
    archive.archive(project, installed(project))
    # A patched file (patch-package) is new content under a known name: archived again.
    patched = package_dir(project, CATALOG) / "migrations" / "20200511113813_init.js"
    patched.write_text(patched.read_text() + "\n// patched\n")
    assert [s.version for s in archive.unarchived(project, installed(project))] == ["4.0.5"]
    result = archive.archive(project, installed(project))
    assert (result.new_files, result.new_indexes) == (
        (f"{CATALOG}@4.0.5 20200511113813_init.js",),
        (f"{CATALOG}@4.0.5 {TABLE}",),
    )


def test_a_set_moving_home_keeps_its_identical_files_once(tmp_path: Path) -> None:
    """backend-tasks 0.6.1's scheduler files are byte-identical to backend-defaults': one copy each."""
    project = make_project(tmp_path, {TASKS: "0.6.1"})
    root = archive.archive(project, installed(project)).root
    swap(project, DEFAULTS, "0.10.0")
    result = archive.archive(project, installed(project))
    assert sorted(result.new_files) == [
        f"{DEFAULTS}@0.10.0 20240327104803_public_keys.js",
        f"{DEFAULTS}@0.10.0 20250411000000_last_run.js",
    ]
    init = archive.lookup(root, SCHEDULER_TABLE, "20210928160613_init.js")
    assert [(f.index.package, f.index.version, f.index.plugin_id) for f in init] == [
        (DEFAULTS, "0.10.0", "*"),
        (TASKS, "0.6.1", "*"),
    ]
    assert init[0].path == init[1].path
    assert init[0].index.folder == f"node_modules/{DEFAULTS}/migrations/scheduler"

    # Back at backend-tasks alone, a database records 0.10.0's last_run: the set's other home has it.
    key = (SCHEDULER_TABLE, TASKS)
    recorded = [*names(fetch(TASKS, "0.6.1") / "migrations"), "20250411000000_last_run.js"]
    folder = runfolder.materialize(root, key, recorded, runfolder.run_folder(project, key))
    assert names(folder) == recorded
    with pytest.raises(ConfigError, match=f"nothing of {DEFAULTS} \\(table knex_migrations\\)"):
        runfolder.materialize(root, ("knex_migrations", DEFAULTS), [], runfolder.run_folder(project, key))


def test_sets_without_a_version_are_skipped_not_guessed(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20240101000000_x.js").write_text("exports.up = async () => {};\n")
    bare = sets.MigrationSet(plugin_id=None, package=None, version=None, directory=str(folder))
    result = archive.archive(tmp_path, [bare])
    assert result.indexes == ()
    assert result.skipped == (f"{folder}: no usable package, version and table to archive it under ('')",)
    assert archive.unarchived(tmp_path, [bare]) == []


def test_a_malformed_index_is_a_config_error_naming_it(both: Path) -> None:
    root = archive.default_root(both)
    path = root / "sets" / TABLE / "@backstage+plugin-catalog-backend@1.24.0.json"
    for text, problem in [
        ('{"format": 1, "files": []}', '"files" must map file names to sha256 hashes'),
        ('{"format": 1, "files": {"../x.js": "' + "0" * 64 + '"}}', '"files" must map file names to sha256 hashes'),
        ('{"format": 1, "files": {"x.js": "../../x"}}', '"files" must map file names to sha256 hashes'),
        ('{"format": 1, "files": {}}', "table, package, version, plugin_id, folder, module_type must be strings"),
        ('{"format": 2}', "not a format 1 knexwrap archive index"),
        ("{not json", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError) as failure:
            archive.lookup(root, TABLE, "20200511113813_init.js")
        assert failure.value.message == f"archive index {path}: {problem}"
    # The installed version's own index is rewritten from its files; an older one cannot be.
    current = path.with_name("@backstage+plugin-catalog-backend@4.0.5.json")
    current.write_text("[]")
    assert archive.unarchived(both, installed(both)) == list(installed(both))
    assert archive.archive(both, installed(both)).new_indexes == (f"{CATALOG}@4.0.5 {TABLE}",)
    assert json.loads(current.read_text())["version"] == "4.0.5"
    # Building a folder reads every version's index: the broken one stops it, named.
    with pytest.raises(ConfigError, match=r"^archive index .*1\.24\.0\.json: Expecting"):
        runfolder.materialize(root, KEY, [], runfolder.run_folder(both, KEY))


def test_materialize_builds_the_newest_complete_folder(both: Path) -> None:
    root = archive.default_root(both)
    dest = runfolder.run_folder(both, KEY)
    assert dest == both / ".knexwrap" / "run" / TABLE / "@backstage+plugin-catalog-backend"
    assert runfolder.materialize(root, KEY, names(catalog_files("4.0.5")), dest) == dest
    assert names(dest) == names(catalog_files("4.0.5"))
    assert all((dest / n).read_bytes() == (catalog_files("4.0.5") / n).read_bytes() for n in names(dest))
    assert json.loads((dest / "package.json").read_text())["type"] == "commonjs"
    # Built again over its own earlier output: replaced, not refused.
    runfolder.materialize(root, KEY, [], dest)
    assert names(dest) == names(catalog_files("4.0.5"))


def test_materialize_says_what_it_cannot_provide(both: Path, tmp_path: Path) -> None:
    root = archive.default_root(both)
    dest = runfolder.run_folder(both, KEY)
    with pytest.raises(ConfigError, match=r"has no copy of 20990101000000_future\.js \(@backstage/plugin-catalog"):
        runfolder.materialize(root, KEY, ["20200511113813_init.js", "20990101000000_future.js"], dest)
    with pytest.raises(ConfigError, match="nothing of @backstage/plugin-auth-backend"):
        runfolder.materialize(root, (TABLE, "@backstage/plugin-auth-backend"), [], dest)
    with pytest.raises(ConfigError, match="is outside any project with node_modules"):
        runfolder.materialize(root, KEY, [], tmp_path / "elsewhere")
    theirs = both / "mine"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="holds files knexwrap did not put there"):
        runfolder.materialize(root, KEY, [], theirs)
    assert (theirs / "notes.txt").read_text() == "keep me"


def test_knex_reverts_newer_migrations_after_the_code_went_back(both: Path, pg: PgServer, pg_database: str) -> None:
    """Backstage ran 1.24.0, then 4.0.5, then the code went back to 1.24.0: knex reverts the 17 newer
    migrations from the archive."""
    installed_folder = package_dir(both, CATALOG) / "migrations"
    swap(both, CATALOG, "1.24.0")
    ok(knex(both, pg, pg_database, "migrate:latest", installed_folder))
    swap(both, CATALOG, "4.0.5")
    assert "Batch 2 run: 17 migrations" in ok(knex(both, pg, pg_database, "migrate:latest", installed_folder))
    swap(both, CATALOG, "1.24.0")
    old, new = names(installed_folder), names(catalog_files("4.0.5"))[30:]
    assert applied(pg, pg_database) == old + new
    root = archive.default_root(both)

    # What knex needs: a folder holding only the files to revert is "corrupt".
    partial = both / ".knexwrap" / "run" / "partial"
    partial.mkdir(parents=True)
    for name in new:
        shutil.copyfile(archive.lookup(root, TABLE, name)[0].path, partial / name)
    refused = knex(both, pg, pg_database, "migrate:down", partial)
    assert refused.returncode == 1
    assert CORRUPT + ", ".join(old) in refused.stderr

    folder = runfolder.materialize(root, KEY, applied(pg, pg_database), runfolder.run_folder(both, KEY))
    target = new[-5]  # not the last one: knex reverts exactly the file it is given
    assert f"Batch 2 rolled back the following migrations:\n{target}" in ok(
        knex_down(both, pg, pg_database, target, folder)
    )
    assert applied(pg, pg_database) == old + [n for n in new if n != target]
    assert "Batch 2 rolled back: 16 migrations" in ok(knex(both, pg, pg_database, "migrate:rollback", folder))
    assert applied(pg, pg_database) == old
    listed = ok(knex(both, pg, pg_database, "migrate:list", installed_folder))
    assert "Found 30 Completed Migration file/files." in listed
    assert "No Pending Migration files Found." in listed


def test_materialized_files_load_like_the_packages_own(tmp_path: Path, pg: PgServer, pg_database: str) -> None:
    """catalog 1.24.0 requires('uuid') inside a migration, and is CommonJS: both hold in the run folder."""
    project = make_project(tmp_path / "project", {CATALOG: "1.24.0"})
    root = archive.archive(project, installed(project)).root
    # A project whose own package.json says "module" must not turn the CommonJS migrations into ES modules.
    manifest = json.loads((project / "package.json").read_text())
    (project / "package.json").write_text(json.dumps({**manifest, "type": "module"}))
    folder = runfolder.materialize(root, KEY, [], runfolder.run_folder(project, KEY))
    old = names(folder)

    # Outside the project Node finds no uuid: the 8th migration fails. The batch has no transaction
    # (20240130092632_search_index.js opts out), so the first 7 stay applied.
    outside = shutil.copytree(folder, tmp_path / "outside")
    failed = knex(project, pg, pg_database, "migrate:latest", outside)
    assert (failed.returncode, applied(pg, pg_database)) == (1, old[:7])
    assert "Cannot find module 'uuid'" in failed.stderr
    # Inside it but without the package.json pin, the project's "type": "module" makes them ES modules.
    unpinned = shutil.copytree(folder, project / "unpinned", ignore=shutil.ignore_patterns("package.json"))
    failed = knex(project, pg, pg_database, "migrate:latest", unpinned)
    assert (failed.returncode, applied(pg, pg_database)) == (1, old[:7])
    assert "exports is not defined in ES module scope" in failed.stderr

    assert "Batch 2 run: 23 migrations" in ok(knex(project, pg, pg_database, "migrate:latest", folder))
    assert applied(pg, pg_database) == old
