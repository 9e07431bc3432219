"""Hostile names: a plugin id from a package.json never escapes the folders and names built from it, and
every command knexwrap prints for the user to paste is shell-quoted (pasting it runs nothing else)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from backstage import CATALOG, SCAFFOLDER, make_project, swap
from helpers import PROJECT, ROOT, knexwrap, sqlite_rows, write_migration
from hypothesis import given
from hypothesis import strategies as st

from knexwrap import errors
from knexwrap.config import connection as conn
from knexwrap.install import sets
from knexwrap.knex.failures import classify

VENV_BIN = Path(sys.executable).parent


def add_plugin(project: Path, plugin_id: str) -> None:
    """A local backend plugin package with one migration, declaring `plugin_id`."""
    folder = project / "node_modules" / "@local" / "plugin-hostile-backend"
    folder.mkdir(parents=True)
    meta = {"name": "@local/plugin-hostile-backend", "version": "0.1.0", "backstage": {"pluginId": plugin_id}}
    (folder / "package.json").write_text(json.dumps(meta))
    write_migration(folder / "migrations", "20240101000000_init.js", "await knex.schema.createTable('t', () => {});")


@pytest.mark.parametrize("plugin_id", ["../../escaped", "x$(touch MARKER)", "a b", "..", "-rf", ".hidden", "a/b"])
def test_a_hostile_plugin_id_is_refused_in_one_line(tmp_path: Path, plugin_id: str) -> None:
    project = make_project(tmp_path / "backstage", {SCAFFOLDER: "4.3.0"})
    add_plugin(project, plugin_id.replace("MARKER", str(tmp_path / "ran")))
    databases = tmp_path / "deep" / "er" / "db"
    databases.mkdir(parents=True)
    sets.discover_all.cache_clear()
    for command in (["status"], ["doctor"], ["plan", "--to", str(project)]):
        result = knexwrap(*command, "--client", "better-sqlite3", "--sqlite-dir", str(databases), cwd=project)
        assert result.code == 3, result.err
        (line,) = result.err.splitlines()
        assert line.startswith("knexwrap: error: plugin id ") and "is not a plugin id knexwrap can use" in line
    created = {p.relative_to(tmp_path) for p in tmp_path.rglob("*.sqlite")}
    assert created == set() and not (tmp_path / "ran").exists()


def test_real_plugin_ids_are_accepted() -> None:
    for plugin_id in ("catalog", "tech-insights", "3scale", "user-settings", "catalog:incremental", "a_b", "x.y"):
        assert conn.check_plugin_id(plugin_id) == plugin_id


_FOLDER = Path(tempfile.mkdtemp(prefix="knexwrap-ids-"))


@given(st.text(max_size=30))
def test_no_plugin_id_places_a_file_outside_the_sqlite_folder(plugin_id: str) -> None:
    options = conn.Options(client="better-sqlite3", sqlite_dir=str(_FOLDER))
    try:
        built = conn.build(options, plugin_id, {})
    except errors.ConfigError as refused:
        assert "\n" not in refused.message
        return
    assert Path(built.database).parent == _FOLDER.resolve()
    assert Path(built.database).name == f"{plugin_id}.sqlite"


def test_the_printed_driver_install_command_is_quoted() -> None:
    output = "Knex: run\n$ npm install pg --save\nCannot find module 'p g;touch x'\n"
    failure = classify("", output, 1)
    assert isinstance(failure, errors.DriverMissing)
    assert failure.message.endswith("run npm install 'p g;touch x'")


def test_doctors_fix_pasted_into_a_shell_runs_exactly_the_downgrade(tmp_path: Path) -> None:
    """A project and a SQLite folder whose paths hold a space, a quote and a command substitution: doctor's
    fix, pasted into bash, is that one knexwrap command, and it fixes the database."""
    odd = tmp_path / "it's $(touch ran) here"
    project = make_project(odd / "backstage", {CATALOG: "4.0.5"})
    databases = odd / "db `touch ran`"
    databases.mkdir()
    flags = ("--client", "better-sqlite3", "--sqlite-dir", str(databases))
    sets.discover_all.cache_clear()
    assert knexwrap("latest", "catalog", "--yes", *flags, cwd=project).code == 0
    swap(project, CATALOG, "1.24.0")
    sets.discover_all.cache_clear()
    doctor = knexwrap("doctor", "--json", *flags, cwd=project)
    assert doctor.code == 17, doctor.err
    # The 7 names 1.24.0 shares with 4.0.5 hold other content than the 4.0.5 files knexwrap applied: changed.
    finding, changed = doctor.json()["findings"]
    assert (finding["problem"], changed["problem"], len(changed["files"])) == ("ahead", "changed", 7)
    fix = finding["fix"]
    assert shlex.split(fix) == ["knexwrap", "downgrade", "--to", str(project), *flags]
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    pasted = subprocess.run(
        ["bash", "-c", f"{fix} --yes"], cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert pasted.returncode == 0, pasted.stderr
    assert not list(tmp_path.rglob("ran"))
    applied = sqlite_rows(databases / "catalog.sqlite", "select count(*) from knex_migrations")
    assert applied == [(30,)]


def test_the_makefile_passes_a_folder_with_a_space_and_a_quote_whole(tmp_path: Path) -> None:
    odd = tmp_path / "it's a folder"
    odd.mkdir()
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "downgrade", f"TO={odd}/none", f"BACKSTAGE={PROJECT}"],
        env={**os.environ, "KNEXWRAP_ARGS": f"--client better-sqlite3 --sqlite-dir {tmp_path}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert f"knexwrap: error: --to {odd}/none: no such project folder" in done.stderr, done.stderr
