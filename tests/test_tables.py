"""Tables that fit: exact output at 80 and 120 columns, no line wider, the server (here the SQLite folder)
named once above the table, relative times, values shortened in the middle, --wide for all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import PROJECT, knexwrap


def sqlite(folder: Path) -> tuple[str, ...]:
    return ("--client", "better-sqlite3", "--sqlite-dir", str(folder))


@pytest.fixture
def install(tmp_path: Path) -> Path:
    """app behind, catalog in sync, user-settings absent: SQLite files in tmp_path."""
    assert knexwrap("latest", "catalog", *sqlite(tmp_path), "--yes").code == 0
    assert knexwrap("up", "app", *sqlite(tmp_path), "--yes").code == 0
    return tmp_path


AT_80 = """\
database   set        table      applied  pending  missing  last batch   state
---------  ---------  ---------  -------  -------  -------  -----------  -------
app.…lite  @kne….0.0  knex…ions        1        1        0  1, just now  behind
cata…lite  @kne….0.0  knex…ions        4        0        0  1, just now  in_sync
user…lite  user…ings                                                     absent
"""

AT_120 = """\
database              set                               table            applied  pending  missing  last batch   state
--------------------  --------------------------------  ---------------  -------  -------  -------  -----------  -------
app.sqlite            @knexwrap-fixtur…p-backend 1.0.0  knex_migrations        1        1        0  1, just now  behind
catalog.sqlite        @knexwrap-fixtur…g-backend 1.0.0  knex_migrations        4        0        0  1, just now  in_sync
user-settings.sqlite  user-settings                                                                              absent
"""


@pytest.mark.parametrize(("width", "table"), [(80, AT_80), (120, AT_120)])
def test_whole_install_table_at_80_and_120_columns(install: Path, width: int, table: str) -> None:
    result = knexwrap("status", *sqlite(install), env={"COLUMNS": str(width)})
    assert result.code == 0
    knex = json.loads((PROJECT / "node_modules" / "knex" / "package.json").read_text())["version"]
    repository = f"repository: {PROJECT} (backend: none; knex {knex})"
    assert result.out == f"folder {install}\n\n{table}\n3 databases: 1 in_sync, 1 absent, 1 behind\n{repository}\n"
    assert max(len(line) for line in table.splitlines()) <= width


def test_wide_shows_every_value_whole(install: Path) -> None:
    lines = knexwrap("status", *sqlite(install), "--wide", env={"COLUMNS": "80"}).out.splitlines()
    assert lines[4].split()[:3] == ["app.sqlite", "@knexwrap-fixture/plugin-app-backend", "1.0.0"]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("command", [("plugins",), ("config",), ("status", "catalog", "--verbose")])
def test_other_tables_fit(install: Path, width: int, command: tuple[str, ...]) -> None:
    result = knexwrap(*command, *sqlite(install), env={"COLUMNS": str(width)})
    assert result.code == 0
    table = [line for line in result.out.splitlines() if "  " in line]  # rows and rules, not the prose
    assert table and max(len(line) for line in table) <= width


def test_the_result_table_shows_the_batch(tmp_path: Path) -> None:
    knexwrap("up", "catalog", *sqlite(tmp_path), "--yes")
    result = knexwrap("up", "catalog", *sqlite(tmp_path), "--yes")
    assert result.out.splitlines()[1:] == [
        "applied 1 migration:",
        "migration                    batch",
        "---------------------------  -----",
        "20240201000000_locations.js      2",
    ]


def test_plurals(tmp_path: Path) -> None:
    knexwrap("up", "catalog", *sqlite(tmp_path), "--yes")
    snap = knexwrap("snapshot", *sqlite(tmp_path), "--out", str(tmp_path / "s.json"))
    assert snap.out == f"snapshot of 3 databases and 3 migration sets written to {tmp_path / 's.json'}\n"
    plan = knexwrap("plan", "--to", str(tmp_path / "s.json"), *sqlite(tmp_path), "--wide")
    assert plan.out.splitlines()[-1] == "0 migrations to revert in 0 migration sets"
