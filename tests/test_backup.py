"""Backups that are real: of exactly the database or schema that changes, verified before the first change, on
real PostgreSQL (pg_dump), MariaDB (mariadb-dump) and SQLite; before down and rollback too. Fake executables
only for what a real pg_dump does not do on demand (exit 0 without writing, take longer than --timeout)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backstage import knex, make_project, ok
from helpers import knexwrap, sqlite_rows
from servers import MariaServer, PgServer, drop_database, mysql_rows, pg_env, psql_rows, unique_name
from test_downgrade_more import NOTES, NOTES_FILES, NOTES_NEWER, Env, applied, plugin_package

from knexwrap.config.connection import Connection
from knexwrap.errors import BackupFailed
from knexwrap.install import sets
from knexwrap.upgrade import backup
from knexwrap.upgrade.dumptools import conninfo_dbname


def pg_rows(pg: PgServer, db: str, sql: str) -> list[tuple[str, ...]]:
    """psql's -d takes a name holding `=` as a connection string: a quoted conninfo reaches any name."""
    return psql_rows(pg, conninfo_dbname(db), sql)


@pytest.fixture
def pg_named(pg: PgServer) -> Iterator[Callable[[str], str]]:
    """Creates databases with any name (quoted); each is dropped after the test."""
    made: list[str] = []

    def create(name: str) -> str:
        psql_rows(pg, "postgres", 'create database "' + name.replace('"', '""') + '"')
        made.append(name)
        return name

    yield create
    for name in made:
        drop_database(pg, name)


def pg_connection(pg: PgServer, db: str, schema: str | None = None) -> Connection:
    return Connection("pg", db, host=pg.host, port=pg.port, user=pg.user, schema=schema)


def restore_into(pg: PgServer, fresh: str, dump: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=pg.host, PGPORT=str(pg.port), PGUSER=pg.user)
    cmd = ["pg_restore", "--no-owner", f"--dbname={conninfo_dbname(fresh)}", str(dump)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------ hostile database names


@pytest.mark.parametrize("shape", ["-x{}", "a=b{}", "postgresql://x{}", "../x{}", "Upper{}"])
def test_pg_backup_is_of_the_named_database_whatever_its_name(
    pg: PgServer, tmp_path: Path, pg_named: Callable[[str], str], shape: str
) -> None:
    """A name starting with `-` was an option to pg_dump (the backup was of the user's default database), one with
    `=` or a URL prefix a connection string, one with `../` escaped the backups folder."""
    db = pg_named(shape.format(unique_name("_kw")))
    pg_rows(pg, db, "create table kept (id int primary key, note text); insert into kept values (1, 'the right one')")
    project = tmp_path / "project"
    project.mkdir()

    dump = backup.backup(pg_connection(pg, db), project)

    assert dump.parent == project / ".knexwrap" / "backups" and dump.suffix == ".dump"
    assert not dump.name.startswith(("-", ".")) and "/" not in dump.name
    manifest = json.loads(backup.manifest_path(dump).read_text())
    assert (manifest["database"], manifest["client"], manifest["bytes"]) == (db, "pg", dump.stat().st_size)
    fresh = pg_named(unique_name("kw_restored"))
    restore_into(pg, fresh, dump)
    assert pg_rows(pg, fresh, "select id, note from kept") == [("1", "the right one")]


def test_pg_backup_of_a_mixed_case_schema_beside_its_lower_case_twin(
    pg: PgServer, tmp_path: Path, pg_named: Callable[[str], str]
) -> None:
    """pg_dump folds an unquoted -n: the "backup" of Bs_catalog held bs_catalog while the downgrade went ahead."""
    db = pg_named(unique_name("kw_schemas"))
    upper = "Bs_" + unique_name("catalog")
    lower = upper.lower()
    quoted = f'"{upper}"'
    pg_rows(
        pg,
        db,
        f"create schema {quoted}; create table {quoted}.items (who text); insert into {quoted}.items values ('upper')",
    )
    pg_rows(
        pg,
        db,
        f"create schema {lower}; create table {lower}.items (who text); insert into {lower}.items values ('lower')",
    )
    project = tmp_path / "project"
    project.mkdir()

    dump = backup.backup(pg_connection(pg, db, schema=upper), project)

    fresh = pg_named(unique_name("kw_restored"))
    restore_into(pg, fresh, dump)
    assert pg_rows(pg, fresh, "select nspname from pg_namespace where nspname ilike 'bs\\_%'") == [(upper,)]
    assert pg_rows(pg, fresh, f'select who from "{upper}".items') == [("upper",)]
    assert json.loads(backup.manifest_path(dump).read_text())["schema"] == upper


def test_a_schema_that_does_not_exist_is_no_backup(
    pg: PgServer, tmp_path: Path, pg_named: Callable[[str], str]
) -> None:
    db = pg_named(unique_name("kw_noschema"))
    pg_rows(pg, db, "create schema bs_only")
    with pytest.raises(BackupFailed, match=r"pg_dump of .* failed: pg_dump: error: no matching schemas"):
        backup.backup(pg_connection(pg, db, schema="Bs_only"), tmp_path)
    assert list((tmp_path / ".knexwrap" / "backups").iterdir()) == []


def test_mariadb_backup_with_mariadb_dump_is_verified_and_restores(mariadb: MariaServer, tmp_path: Path) -> None:
    db = "-x" + unique_name("_kw")  # read as an option when bare
    mysql_rows(mariadb, None, f"create database `{db}`")
    try:
        mysql_rows(mariadb, None, f"create table `{db}`.kept (id int primary key, note text)")
        mysql_rows(mariadb, None, f"insert into `{db}`.kept values (1, 'one'), (2, 'two')")
        connection = Connection("mysql2", db, host=mariadb.host, port=mariadb.port, user=mariadb.user)

        dump = backup.backup(connection, tmp_path)

        text = dump.read_text()
        assert (
            dump.suffix == ".sql"
            and f"Database: {db}\n" in text
            and text.rstrip().splitlines()[-1].startswith("-- Dump completed")
        )
        mysql_rows(mariadb, None, f"drop table `{db}`.kept")
        client = shutil.which("mariadb")
        assert client is not None
        cmd = [client, "--no-defaults", f"--host={mariadb.host}", f"--port={mariadb.port}", f"--user={mariadb.user}"]
        with dump.open() as feed:
            subprocess.run([*cmd, f"--database={db}"], stdin=feed, check=True, capture_output=True)
        assert mysql_rows(mariadb, None, f"select id, note from `{db}`.kept order by id") == [
            ("1", "one"),
            ("2", "two"),
        ]
    finally:
        mysql_rows(mariadb, None, f"drop database `{db}`")


# ------------------------------------------------------------- through the CLI: refusals and down/rollback


def fake(bin_dir: Path, name: str, script: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def notes_project(pg: PgServer, tmp_path: Path, pg_named: Callable[[str], str]) -> tuple[Path, str, Env]:
    """A project whose notes plugin 2.0.0 is applied to a fresh database; the database and the environment."""
    project = make_project(tmp_path / "new", {})
    migrations = plugin_package(project, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})
    db = pg_named(unique_name("kw_bk") + "_notes")
    ok(knex(project, pg, db, "migrate:latest", migrations))
    return project, db, {**pg_env(pg)}


def run(*args: str, cwd: Path, env: Env) -> tuple[int, str, str]:
    sets.discover_all.cache_clear()
    result = knexwrap(*args, cwd=cwd, env=env)
    return result.code, result.out, result.err


def test_a_pg_dump_that_exits_0_writing_nothing_stops_the_revert(
    pg: PgServer, tmp_path: Path, notes_project: tuple[Path, str, Env]
) -> None:
    project, db, env = notes_project
    fake(tmp_path / "bin", "pg_dump", "exit 0\n")
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    code, _, err = run("down", "notes", "--database", db, "--yes", cwd=project, env={**env, "PATH": path})
    assert code == 15, err
    assert "exited 0 but wrote nothing" in err
    assert applied(pg, db) == [*NOTES_FILES, *NOTES_NEWER]  # nothing reverted
    assert list((project / ".knexwrap" / "backups").iterdir()) == []  # no empty file that looks like a backup


def test_down_takes_a_verified_backup_not_bounded_by_timeout(
    pg: PgServer, tmp_path: Path, notes_project: tuple[Path, str, Env]
) -> None:
    """A dump slower than --timeout still completes (a real catalog database takes minutes); then the revert."""
    project, db, env = notes_project
    real = shutil.which("pg_dump")
    fake(tmp_path / "bin", "pg_dump", f'sleep 8\nexec {real} "$@"\n')
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    args = ("down", "notes", "--database", db, "--timeout", "6", "--yes", "--json")
    code, out, err = run(*args, cwd=project, env={**env, "PATH": path})
    assert code == 0, err
    [dump] = json.loads(out)["backups"]
    assert f"backup of postgresql://{pg.user}@{pg.host}:{pg.port}/{db} written to {dump}" in err
    listing = subprocess.run(["pg_restore", "--list", dump], capture_output=True, text=True, check=True).stdout
    assert "TABLE DATA public notes" in listing
    assert applied(pg, db) == list(NOTES_FILES)


def test_down_and_rollback_on_sqlite_back_up_first_unless_no_backup(tmp_path: Path) -> None:
    project = make_project(tmp_path / "new", {})
    plugin_package(project, NOTES, "notes", "2.0.0", {**NOTES_FILES, **NOTES_NEWER})
    data = tmp_path / "sqlite"
    data.mkdir()
    sqlite = ["--client", "better-sqlite3", "--sqlite-dir", str(data)]
    assert run("latest", "notes", *sqlite, "--yes", cwd=project, env={})[0] == 0
    before = sqlite_rows(data / "notes.sqlite", "select name from knex_migrations order by id")

    code, out, err = run("down", "notes", *sqlite, "--yes", "--json", cwd=project, env={})
    assert code == 0, err
    [copy] = json.loads(out)["backups"]
    assert sqlite_rows(Path(copy), "select name from knex_migrations order by id") == before
    assert Path(copy).parent == project / ".knexwrap" / "backups"

    code, out, err = run("rollback", "notes", *sqlite, "--all", "--no-backup", "--yes", "--json", cwd=project, env={})
    assert code == 0, err
    assert json.loads(out)["backups"] == []
    code, out, err = run("latest", "notes", *sqlite, "--yes", cwd=project, env={})
    code, out, err = run("rollback", "notes", *sqlite, "--yes", "--json", cwd=project, env={})
    assert code == 0 and len(json.loads(out)["backups"]) == 1, err


def test_the_plan_shows_the_database_size_and_the_free_space(
    pg: PgServer, tmp_path: Path, notes_project: tuple[Path, str, Env]
) -> None:
    project, db, env = notes_project
    old = make_project(tmp_path / "old", {})
    plugin_package(old, NOTES, "notes", "1.0.0", NOTES_FILES)
    size = int(pg_rows(pg, db, "select pg_database_size(current_database())")[0][0])
    prefix = db.removesuffix("notes")
    code, out, err = run("downgrade", "--to", str(old), "--prefix", prefix, "--dry-run", cwd=project, env=env)
    assert code == 0, err
    folder = project / ".knexwrap" / "backups"
    line = next(line for line in out.splitlines() if line.startswith("backup: "))
    assert line.startswith(
        f"backup: postgresql://{pg.user}@{pg.host}:{pg.port}/{db} ({size / 1e6:.1f} MB) to {folder}, "
    )
    assert line.endswith(" free")
    doc = json.loads(run("plan", "--to", str(old), "--prefix", prefix, "--json", cwd=project, env=env)[1])
    assert [s["size_bytes"] for s in doc["space"]] == [size]


def test_a_reverts_backup_is_taken_under_knexwraps_lock(tmp_path: Path) -> None:
    """No other knexwrap change can run between the backup and the revert: it is taken once the lock is held."""
    from helpers import CATALOG
    from races import paused

    (tmp_path / "db").mkdir()
    opts = ["--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db"), "--state-dir", str(tmp_path / "s")]
    assert knexwrap("latest", "catalog", *opts, "--yes").code == 0
    backups = tmp_path / "s" / "backups"
    before = set(backups.iterdir()) if backups.is_dir() else set()
    run = paused(["down", "catalog", *opts, "--yes"], tmp_path / "p", {})
    run.wait_at("confirmed")
    assert (set(backups.iterdir()) if backups.is_dir() else set()) == before  # not before the lock
    run.release("confirmed")
    run.wait_at("locked")
    assert (set(backups.iterdir()) if backups.is_dir() else set()) == before  # taken under it, right before knex
    run.release("locked")
    code, _, err = run.finish()
    assert code == 0, err
    assert [p.suffix for p in sorted(set(backups.iterdir()) - before)] == [".sqlite", ".json"]
    assert sqlite_rows(tmp_path / "db" / "catalog.sqlite", "select name from knex_migrations") == [
        (name,) for name in CATALOG[:-1]
    ]
