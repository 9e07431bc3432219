"""`knexwrap restore`: after a downgrade whose down migration failed part way (a table dropped outside a
transaction), the backup the downgrade took goes back into the database it came from, every row compared, on
real PostgreSQL, MariaDB and SQLite; shown and confirmed like any other change."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backstage import make_project
from helpers import knexwrap, sqlite_rows
from servers import MariaServer, PgServer, create_database, drop_database, mysql_rows, pg_env, unique_name
from test_downgrade_more import FLAKY, FLAKY_FILES, FLAKY_NEWER, pg_state, plugin_package

from knexwrap.install import sets

# MariaDB keys no TEXT column without a length: the tags table keys a varchar there.
OLD = {k: v.replace("t.text('tag').primary()", "t.string('tag').primary()") for k, v in FLAKY_FILES.items()}
NEW = {**OLD, **FLAKY_NEWER}


def sqlite_state(path: Path) -> dict[str, object]:
    """Every table of a SQLite file: its SQL and its rows."""
    tables = sqlite_rows(path, "select name, sql from sqlite_master where type = 'table' order by 1")
    return {name: (sql, sorted(sqlite_rows(path, f'select * from "{name}"'), key=repr)) for name, sql in tables}


@dataclass(frozen=True)
class Client:
    args: list[str]  # how knexwrap reaches the plugin databases
    env: dict[str, str | None]
    state: Callable[[], dict[str, Any]]  # every table of the flaky database: its definition and its rows


def mariadb_state(server: MariaServer, db: str) -> dict[str, object]:
    tables = [
        r[0]
        for r in mysql_rows(
            server, None, f"select table_name from information_schema.tables where table_schema = '{db}' order by 1"
        )
    ]
    return {
        t: (
            mysql_rows(server, None, f"show create table `{db}`.`{t}`"),
            mysql_rows(server, None, f"select * from `{db}`.`{t}` order by 1"),
        )
        for t in tables
    }


@pytest.fixture(params=["pg", "mariadb", "sqlite"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    prefix = unique_name("kw_restore") + "_"
    db = f"{prefix}flaky"
    if request.param == "pg":
        pg: PgServer = request.getfixturevalue("pg")
        create_database(pg, db)
        yield Client(["--prefix", prefix], {**pg_env(pg)}, lambda: pg_state(pg, db))
        drop_database(pg, db)
    elif request.param == "mariadb":
        maria: MariaServer = request.getfixturevalue("mariadb")
        mysql_rows(maria, None, f"create database `{db}`")
        where = ["--host", maria.host, "--port", str(maria.port), "--user", maria.user]
        yield Client(["--client", "mysql2", *where, "--prefix", prefix], {}, lambda: mariadb_state(maria, db))
        mysql_rows(maria, None, f"drop database `{db}`")
    else:
        data = tmp_path / "sqlite"
        data.mkdir()
        yield Client(
            ["--client", "better-sqlite3", "--sqlite-dir", str(data)], {}, lambda: sqlite_state(data / "flaky.sqlite")
        )


def run(*args: str, cwd: Path, env: dict[str, str | None], input: str | None = None) -> tuple[int, str, str]:
    sets.discover_all.cache_clear()
    result = knexwrap(*args, cwd=cwd, env=env, input=input)
    return result.code, result.out, result.err


def test_restore_after_a_failed_downgrade_puts_every_row_back(client: Client, tmp_path: Path) -> None:
    old = make_project(tmp_path / "old", {})
    new = make_project(tmp_path / "new", {})
    plugin_package(old, FLAKY, "flaky", "1.0.0", OLD)
    plugin_package(new, FLAKY, "flaky", "2.0.0", NEW)
    code, _, err = run("latest", "flaky", *client.args, "--yes", cwd=new, env=client.env)
    assert code == 0, err
    before = client.state()
    assert {"items", "items_archive", "audit", "tags"} <= set(before)

    code, out, err = run("downgrade", "--to", str(old), *client.args, "--yes", "--json", cwd=new, env=client.env)
    assert code == 12, err  # items_archive's down dropped its table, then failed
    [dump] = json.loads(out)["backups"]
    damaged = client.state()
    assert "items_archive" not in damaged and "audit" not in damaged

    # Shown, and nothing changes on --dry-run or a declined question.
    code, out, err = run("restore", dump, *client.args, "--dry-run", "--json", cwd=new, env=client.env)
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["backup"], shown["bytes"]) == (dump, Path(dump).stat().st_size)
    code, _, err = run("restore", dump, *client.args, cwd=new, env=client.env, input="n\n")
    assert code == 14 and f"restore {dump}" in err and "Go ahead?" in err
    assert client.state() == damaged

    code, out, err = run("restore", dump, *client.args, "--yes", "--json", cwd=new, env=client.env)
    assert code == 0, err
    result = json.loads(out)
    where = ("server", "database", "schema")
    assert result["restored"] and [result[k] for k in where] == [shown[k] for k in where]
    assert shown["taken_at"].endswith("Z") and shown["command"] == result["command"] == "restore"
    assert client.state() == before  # every table, every row
    assert Path(result["backup_before"]).parent == Path(dump).parent  # the damaged state was kept too


def test_a_changed_backup_is_not_restored(tmp_path: Path) -> None:
    project = make_project(tmp_path / "new", {})
    plugin_package(project, FLAKY, "flaky", "1.0.0", OLD)
    data = tmp_path / "sqlite"
    data.mkdir()
    args = ["--client", "better-sqlite3", "--sqlite-dir", str(data)]
    assert run("latest", "flaky", *args, "--yes", cwd=project, env={})[0] == 0
    code, out, err = run("down", "flaky", *args, "--yes", "--json", cwd=project, env={})
    assert code == 0, err
    [copy] = json.loads(out)["backups"]
    with open(copy, "ab") as tampered:
        tampered.write(b"\0")
    code, _, err = run("restore", copy, *args, "--yes", cwd=project, env={})
    assert code == 3
    assert err == f"knexwrap: error: the backup {copy} is not the file knexwrap wrote (sha256 differs): not restored\n"


def test_a_restore_refuses_while_another_knexwrap_change_holds_the_lock(tmp_path: Path) -> None:
    """Under knexwrap's lock (issue 10): a restore refuses at once (exit 9) while another knexwrap change of a set
    in that database runs, and changes nothing; once that change is done, the same restore goes through."""
    from races import paused, sqlite_fingerprint

    folder = tmp_path / "sqlite"
    folder.mkdir()
    sqlite = ["--client", "better-sqlite3", "--sqlite-dir", str(folder)]
    assert knexwrap("up", "catalog", *sqlite, "--yes").code == 0
    down = knexwrap("down", "catalog", *sqlite, "--yes", "--json")
    assert down.code == 0, down.err
    [saved] = down.json()["backups"]
    running = paused(["latest", "catalog", *sqlite, "--yes"], tmp_path / "pause", {}, stop_at=("locked",))
    try:
        running.wait_at("locked")
        before = sqlite_fingerprint(folder / "catalog.sqlite")
        refused = knexwrap("restore", saved, *sqlite, "--yes")
        assert refused.code == 9, refused.err
        last = refused.err.splitlines()[-1]
        assert "another knexwrap change of knex_migrations" in last and "held by knexwrap latest catalog" in last
        assert last.endswith("nothing was changed")
        assert sqlite_fingerprint(folder / "catalog.sqlite") == before
    finally:
        running.release("locked")
    code, _, err = running.finish()
    assert code == 0, err
    restored = knexwrap("restore", saved, *sqlite, "--yes")
    assert restored.code == 0, restored.err
