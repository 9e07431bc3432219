"""Completion through click's own machinery (COMP_WORDS / COMP_CWORD, as the bash script sends them),
and --version; on the fixture repository, with no database anywhere."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import PROJECT, knexwrap

from knexwrap.cli.main import main


def complete(line: str, cwd: Path = PROJECT) -> list[str]:
    """What TAB offers at the end of LINE in bash: click's "type,value" lines, values only."""
    words = line.split(" ")
    env = {"_KNEXWRAP_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    runner = CliRunner()
    with runner.isolation(env=env) as (out, _, _):
        previous = os.getcwd()
        os.chdir(cwd)
        try:
            with pytest.raises(SystemExit) as done:
                main(["--never-parsed"])
        finally:
            os.chdir(previous)
    assert done.value.code == 0
    return [item.split(",", 1)[1] for item in out.getvalue().decode().splitlines() if item]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_each_shell(shell: str) -> None:
    result = knexwrap("completion", shell)
    assert result.code == 0
    assert "_KNEXWRAP_COMPLETE" in result.out and f"{shell}_complete" in result.out
    assert knexwrap("completion", "tcsh").code == 2


def test_commands_and_options() -> None:
    assert complete("knexwrap st") == ["status"]
    assert complete("knexwrap do") == ["doctor", "down", "downgrade"]
    assert complete("knexwrap status --ch") == ["--check"]
    assert complete("knexwrap latest --dr") == ["--dry-run"]


def test_plugin_ids_of_the_current_repository() -> None:
    assert complete("knexwrap status ") == ["app", "catalog", "user-settings"]
    assert complete("knexwrap rollback c") == ["catalog"]
    assert complete("knexwrap status ", cwd=Path("/")) == []  # no repository: nothing, and no error


def test_migration_names_from_the_folder_and_the_last_snapshot(tmp_path: Path) -> None:
    assert complete("knexwrap down catalog 2024") == [
        "20240101000000_init.js",
        "20240201000000_locations.js",
        "20240301000000_refresh_state.js",
        "20240401000000_search.js",
    ]
    assert complete("knexwrap up app ") == ["20211229105307_init.js", "20240113144027_assets-namespace.js"]
    assert complete("knexwrap up app --to 2024") == ["20240113144027_assets-namespace.js"]
    assert complete("knexwrap down catalog --to 20240") == complete("knexwrap down catalog 20240")
    # A copy of the repository whose last snapshot recorded a file its folder no longer has.
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, symlinks=True, ignore=shutil.ignore_patterns(".knexwrap"))
    snapshots = project / ".knexwrap" / "snapshots"
    snapshots.mkdir(parents=True)
    applied = [{"name": "20250101000000_gone.js", "batch": 2, "migration_time": "2025-01-01T00:00:00.000Z"}]
    sets = [{"table": "knex_migrations", "package": "p", "version": "2", "applied": applied}]
    database = {"plugin": "user-settings", "client": "pg", "database": "d", "state": "ahead", "error": None}
    snapshot = {
        "kind": "knexwrap-snapshot",
        "format": 1,
        "taken_at": "2025-06-01T12:00:00+00:00",
        "archive": ".knexwrap/archive",
        "sets": [],
        "databases": [{**database, "sets": sets}],
    }
    (snapshots / "snapshot-20250601T120000Z.json").write_text(json.dumps(snapshot))
    assert complete("knexwrap down user-settings ", cwd=project) == [
        "20220330000000_init.js",
        "20250101000000_gone.js",
    ]


def test_version_names_knexwrap_node_and_the_repositorys_knex() -> None:
    result = knexwrap("--version")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "knexwrap 0.1.0"
    assert lines[1].startswith("node 20.") and lines[1].endswith(f"({shutil.which('node')})")
    assert lines[2] == f"knex 3.3.0 ({PROJECT})"
    outside = knexwrap("--version", cwd=Path("/"))
    assert outside.code == 0
    assert outside.out.splitlines()[2].startswith("knex not found (no Backstage repository")
