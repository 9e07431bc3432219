"""The private state folder and its journal, after real downgrades on SQLite through the real knex: every folder
0700 and every file 0600 (backups hold every row), its own .gitignore, another place by --state-dir or
KNEXWRAP_STATE_DIR, a folder other users can write refused, and one journal line per change."""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import stat
from pathlib import Path

import pytest
from backstage import make_project
from helpers import knexwrap
from test_downgrade_more import NOTES, NOTES_FILES, NOTES_NEWER, plugin_package

from knexwrap.install import sets

PINNED = "20240201000000_pinned.js"


def run(*args: str, cwd: Path, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    sets.discover_all.cache_clear()
    result = knexwrap(*args, cwd=cwd, env=env or {})
    return result.code, result.out, result.err


def swapped_back(tmp_path: Path) -> tuple[Path, list[str]]:
    """notes 2.0.0 applied on SQLite (archived while installed), then the code swapped back to 1.0.0."""
    project = make_project(tmp_path / "backstage", {})
    plugin_package(project, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})
    data = tmp_path / "sqlite"
    data.mkdir()
    args = ["--client", "better-sqlite3", "--sqlite-dir", str(data)]
    code, _, err = run("latest", "notes", *args, "--yes", cwd=project)
    assert code == 0, err
    plugin_package(project, NOTES, "notes", "1.0.0", NOTES_FILES)
    return project, args


def modes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): oct(stat.S_IMODE(p.stat().st_mode)) for p in sorted(folder.rglob("*"))}


def test_after_a_downgrade_every_file_of_the_state_folder_is_private(tmp_path: Path) -> None:
    project, args = swapped_back(tmp_path)
    code, out, err = run("downgrade", "--to", str(project), *args, "--yes", "--json", cwd=project)
    assert code == 0, err
    state = project / ".knexwrap"
    found = modes(state)
    assert {k for k in found if "/" not in k} >= {".gitignore", "archive", "backups", "journal.jsonl", "run"}
    assert any(k.startswith("run/knex_migrations/") and k.endswith(PINNED) for k in found)  # run from the archive
    assert any(k.startswith("backups/") and k.endswith(".sqlite") for k in found)
    wrong = {k: m for k, m in found.items() if m != ("0o700" if (state / k).is_dir() else "0o600")}
    assert wrong == {}
    assert oct(stat.S_IMODE(state.stat().st_mode)) == "0o700"
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"

    records = [json.loads(line) for line in (state / "journal.jsonl").read_text().splitlines()]
    assert [r["command"] for r in records] == ["latest", "downgrade"]
    record = records[-1]
    archived = hashlib.sha256(NOTES_NEWER[PINNED].encode()).hexdigest()
    assert (record["command"], record["user"], record["host"], record["outcome"]) == (
        "downgrade",
        getpass.getuser(),
        socket.gethostname(),
        "done",
    )
    assert record["arguments"]["to"] == str(project) and record["backups"] == json.loads(out)["backups"]
    assert [(r["name"], r["status"], r["sha256"]) for r in record["ran"]] == [(PINNED, "reverted", archived)]
    assert [s["revert"] for s in record["plan"]["sets"]] == [[PINNED]]


def test_down_and_a_failed_change_are_journaled_too(tmp_path: Path) -> None:
    project = make_project(tmp_path / "backstage", {})
    folder = plugin_package(project, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})
    data = tmp_path / "sqlite"
    data.mkdir()
    args = ["--client", "better-sqlite3", "--sqlite-dir", str(data)]
    assert run("latest", "notes", *args, "--yes", cwd=project)[0] == 0
    assert run("down", "notes", *args, "--yes", cwd=project)[0] == 0
    (folder / PINNED).write_text(
        "exports.up = async () => { throw new Error('no'); };\nexports.down = async () => {};\n"
    )
    assert run("up", "notes", *args, "--yes", cwd=project)[0] == 12
    records = [json.loads(line) for line in (project / ".knexwrap" / "journal.jsonl").read_text().splitlines()]
    assert [
        (r["command"], r["outcome"] if isinstance(r["outcome"], str) else r["outcome"]["code"]) for r in records
    ] == [
        ("latest", "done"),
        ("down", "done"),
        ("up", "migration_failed"),
    ]
    sha = hashlib.sha256(NOTES_NEWER[PINNED].encode()).hexdigest()
    assert [(r["name"], r["status"], r["sha256"]) for r in records[1]["ran"]] == [(PINNED, "reverted", sha)]
    assert records[2]["plan"]["names"] == [PINNED]


@pytest.mark.parametrize("how", ["--state-dir", "KNEXWRAP_STATE_DIR"])
def test_the_state_folder_can_live_elsewhere(tmp_path: Path, how: str) -> None:
    project, args = swapped_back(tmp_path)
    volume = tmp_path / "volume" / "knexwrap"
    given = ["--state-dir", str(volume)] if how == "--state-dir" else []
    env: dict[str, str | None] = {"KNEXWRAP_STATE_DIR": str(volume)} if how != "--state-dir" else {}
    # The 2.0.0 files were archived in the project's folder by `latest`: archive them in the volume too.
    plugin_package(project, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})
    code, _, err = run("doctor", *args, *given, cwd=project, env=env)
    assert code == 0, err
    plugin_package(project, NOTES, "notes", "1.0.0", NOTES_FILES)
    code, out, err = run("downgrade", "--to", str(project), *args, *given, "--yes", "--json", cwd=project, env=env)
    assert code == 0, err
    [copy] = json.loads(out)["backups"]
    assert Path(copy).parent == volume / "backups"
    assert {p.name for p in volume.iterdir()} >= {".gitignore", "archive", "backups", "journal.jsonl"}
    assert oct(stat.S_IMODE(volume.stat().st_mode)) == "0o700"


def test_a_state_folder_other_users_can_write_is_refused(tmp_path: Path) -> None:
    project, args = swapped_back(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    code, _, err = run("downgrade", "--to", str(project), *args, "--state-dir", str(shared), "--yes", cwd=project)
    assert code == 3
    assert err == (
        f"knexwrap: error: the state folder {shared} can be written by other users (mode 777): they could replace "
        f"the files a downgrade runs or a restore puts back; make it yours alone (chmod 700 {shared})\n"
    )


def test_a_change_that_stops_part_way_journals_what_the_database_shows_was_done(tmp_path: Path) -> None:
    """Issue 10: each migration that ran is in the journal with its file's hash, also when the change failed after it
    (the record comes from re-reading the database, never from what knex was about to do)."""
    from test_downgrade_more import migration

    project = make_project(tmp_path / "backstage", {})
    first, second = "20240101000000_kept.js", "20240102000000_fails.js"
    files = {
        first: migration("await knex.schema.createTable('kept', t => t.increments());", "", transaction=False),
        second: migration("throw new Error('no');", ""),
    }
    plugin_package(project, "@knexwrap-test/plugin-half-backend", "half", "1.0.0", files)
    data = tmp_path / "sqlite"
    data.mkdir()
    code, _, err = run("latest", "half", "--client", "better-sqlite3", "--sqlite-dir", str(data), "--yes", cwd=project)
    assert code == 12, err
    last = json.loads((project / ".knexwrap" / "journal.jsonl").read_text().splitlines()[-1])
    assert last["outcome"]["code"] == "migration_failed"
    sha = hashlib.sha256(files[first].encode()).hexdigest()
    failed = hashlib.sha256(files[second].encode()).hexdigest()
    # The one that was running when it stopped, too: doctor proposes `mark` for it when it has no transaction.
    assert [(r["name"], r["status"], r["sha256"]) for r in last["ran"]] == [
        (first, "applied", sha),
        (second, "failed", failed),
    ]
