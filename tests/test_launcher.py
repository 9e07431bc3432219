"""The `knexwrap` console script starts the reader of `status PLUGIN` early (cli/launch.py): same answers.

Each case runs the installed console script (the launcher) and `python -m knexwrap` (the normal path,
no launcher) as separate processes, on the real knex, SQLite files and PostgreSQL, and compares
stdout, stderr and the exit code byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers import CLEAN_ENV, PROJECT, sqlite_tables
from servers import PgServer, _free_port, create_database, drop_database, psql_rows, unique_name
from test_repository import TODO_FILE, make_repo

LAUNCHER = Path(sys.executable).parent / "knexwrap"
NORMAL = [sys.executable, "-m", "knexwrap"]


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    return {**env, "NO_COLOR": "1", **(extra or {})}


def run(argv: list[str], env: Mapping[str, str], cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=120, check=False)


def same(args: list[str], env: Mapping[str, str], cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    """Run ARGS both ways; they must agree on everything a user or a script can see."""
    launched, normal = run([str(LAUNCHER), *args], env, cwd), run([*NORMAL, *args], env, cwd)
    assert (launched.returncode, launched.stdout, launched.stderr) == (normal.returncode, normal.stdout, normal.stderr)
    return launched


def imported(argv: list[str], env: Mapping[str, str], cwd: Path = PROJECT) -> set[str]:
    """The modules a run imports (python -X importtime)."""
    done = run([sys.executable, "-X", "importtime", *argv], env, cwd)
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> Path:
    return tmp_path


def sqlite_opts(folder: Path) -> list[str]:
    return ["--client", "better-sqlite3", "--sqlite-dir", str(folder)]


@pytest.fixture
def migrated_sqlite(sqlite_dir: Path) -> Path:
    env = environment()
    assert run([*NORMAL, "up", "catalog", *sqlite_opts(sqlite_dir), "--yes"], env).returncode == 0
    assert run([*NORMAL, "up", "catalog", *sqlite_opts(sqlite_dir), "--yes"], env).returncode == 0
    return sqlite_dir


def test_sqlite_status_is_the_same_both_ways(migrated_sqlite: Path) -> None:
    env, opts = environment(), sqlite_opts(migrated_sqlite)
    assert "applied" in same(["status", "catalog", *opts], env).stdout
    assert same(["status", "catalog", *opts, "--json"], env).stdout.startswith("{")
    assert "batch" in same(["status", "catalog", *opts, "--verbose", "--fmt", "github"], env).stdout
    assert same(["status", "catalog", *opts, "--check"], env).returncode == 10  # two of four pending


def test_sqlite_errors_are_the_same_both_ways(migrated_sqlite: Path, tmp_path: Path) -> None:
    env, opts = environment(), sqlite_opts(migrated_sqlite)
    assert same(["status", "nosuch", *opts], env).returncode == 3
    assert same(["status", "app", *opts], env).returncode == 0  # no app.sqlite: state absent, never created by a read
    assert not (migrated_sqlite / "app.sqlite").exists()
    assert same(["status", "catalog", *opts, "--bogus"], env).returncode == 2
    assert same(["status", "catalog", *opts, "--timeout", "0"], env).returncode == 3
    assert same(["status", "catalog", *opts, "--project-dir", str(tmp_path)], env).returncode == 4
    assert same(["status", "catalog", *opts], env, cwd=tmp_path).returncode == 4  # no project above
    assert same(["status", "catalog", "--help"], env).returncode == 0


def test_sqlite_status_reads_through_the_early_reader_and_creates_nothing(sqlite_dir: Path) -> None:
    db = sqlite_dir / "catalog.sqlite"
    __import__("sqlite3").connect(db).close()  # an empty database file, as a fresh backend leaves it
    args, env = ["status", "catalog", *sqlite_opts(sqlite_dir), "--json"], environment()
    assert '"table_exists": false' in same(args, env).stdout
    assert sqlite_tables(db) == set()
    # The normal path starts node through sh; the launcher's path never needs sh: its reader was handed the read.
    assert "sh" in imported(["-m", "knexwrap", *args], env)
    assert "sh" not in imported([str(LAUNCHER), *args], env)


def pg_catalog(pg: PgServer, db: str) -> list[tuple[str, ...]]:
    """Every table of the database with its rows as text: what a read must leave exactly as it was."""
    listed = "select table_name from information_schema.tables where table_schema = 'public' order by 1"
    tables = psql_rows(pg, db, listed)
    found: list[tuple[str, ...]] = [tuple(t[0] for t in tables)]
    for (table,) in tables:
        found += psql_rows(pg, db, f'select t::text from "{table}" t order by 1')
    return found


def test_postgres_status_is_the_same_both_ways_and_changes_nothing(pg: PgServer, pg_database: str) -> None:
    env = environment({"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user})
    args = ["status", "catalog", "--database", pg_database]
    empty = pg_catalog(pg, pg_database)
    assert same(args, env).returncode == 0
    assert pg_catalog(pg, pg_database) == empty  # no knex_migrations, no lock table
    assert run([*NORMAL, "up", "catalog", "--database", pg_database, "--yes"], env).returncode == 0
    before = pg_catalog(pg, pg_database)
    assert "3 pending" in same(args, env).stdout
    assert same([*args, "--json"], env).returncode == 0
    assert same([*args, "--check"], env).returncode == 10
    assert pg_catalog(pg, pg_database) == before
    assert "sh" not in imported([str(LAUNCHER), *args], env)


def test_postgres_errors_are_the_same_both_ways(pg: PgServer) -> None:
    env = environment({"POSTGRES_HOST": pg.host, "POSTGRES_USER": pg.user})
    unreachable = same(["status", "catalog", "--database", "x", "--port", str(_free_port())], env)
    assert (unreachable.returncode, unreachable.stdout) == (5, "")
    assert same(["status", "catalog", "--database", f"kw_absent_{uuid.uuid4().hex[:8]}", "--json"], env).returncode == 0
    assert same(["status", "catalog", "--database", "x", "--port", "nope"], env).returncode == 3


def test_postgres_timeout_is_the_same_both_ways(pg: PgServer, pg_database: str) -> None:
    env = environment({"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user})
    assert run([*NORMAL, "up", "catalog", "--database", pg_database, "--yes"], env).returncode == 0
    # A session holding knex's table makes every read of it wait: only knexwrap's timeout ends the wait.
    hold = "begin; lock table knex_migrations in access exclusive mode; select pg_sleep(60);"
    argv = ["psql", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", pg_database, "-c", hold]
    holder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        locked = "select count(*) from pg_locks where mode = 'AccessExclusiveLock' and relation::regclass::text = "
        while psql_rows(pg, pg_database, locked + "'knex_migrations'") != [("1",)] and time.monotonic() < deadline:
            time.sleep(0.1)
        timed_out = same(["status", "catalog", "--database", pg_database, "--timeout", "3"], env)
        # The reader's own per-database limit (KNEXWRAP_READ_LIMIT, sent in the request) answers first.
        assert timed_out.returncode == 5
        assert "within 3 s" in timed_out.stderr and "--timeout" in timed_out.stderr
    finally:
        holder.kill()
        holder.wait()


# Runs the launcher in-process, recording the pid of each reader it starts; prints the exit code and
# the pids still present (running or unreaped) once main() has returned.
_WATCH = textwrap.dedent(
    """
    import os, sys
    from knexwrap.cli import launch
    from knexwrap.knex import prestart
    pids, real = [], prestart.start
    def start(*args, **kwargs):
        started = real(*args, **kwargs)
        if started:
            pids.append(prestart._waiting.pid)
        return started
    prestart.start = start
    code = launch.main(sys.argv[1:])
    print("RESULT", code, len(pids), [p for p in pids if os.path.exists(f"/proc/{p}")], file=sys.stderr)
    """
)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["status", "nosuch"], 3),  # fails before the request: the reader is never handed one
        (["status", "app"], 0),  # no app.sqlite: state absent
        (["status", "catalog", "--bogus"], 2),  # click's usage error
        (["status", "catalog"], 0),
    ],
)
def test_the_early_reader_never_outlives_knexwrap(migrated_sqlite: Path, args: list[str], code: int) -> None:
    done = run([sys.executable, "-c", _WATCH, *args, *sqlite_opts(migrated_sqlite)], environment())
    assert done.stderr.splitlines()[-1] == f"RESULT {code} 1 []", done.stderr


# The launcher's guess at the knex made to differ from the one the backend loads (another path to the
# same files): the normal path must not hand its request to that reader, stop it, and read through sh.
_OTHER_KNEX = textwrap.dedent(
    """
    import os, sys
    from knexwrap.cli import launch
    from knexwrap.knex import prestart
    pids, real = [], prestart.start
    other = sys.argv.pop(1)
    prestart.guess_knex = lambda project, start: other
    def start(*args, **kwargs):
        started = real(*args, **kwargs)
        pids.append(prestart._waiting.pid if started else None)
        return started
    prestart.start = start
    code = launch.main(sys.argv[1:])
    alive = [p for p in pids if p is not None and os.path.exists(f"/proc/{p}")]
    print("RESULT", code, len(pids), pids[0] is not None, alive, "sh" in sys.modules, file=sys.stderr)
    """
)


def test_an_early_reader_with_another_knex_is_never_used(migrated_sqlite: Path, tmp_path: Path) -> None:
    other = tmp_path / "knex"
    other.symlink_to((PROJECT / "node_modules" / "knex").resolve())
    args = ["status", "catalog", *sqlite_opts(migrated_sqlite)]
    done = run([sys.executable, "-c", _OTHER_KNEX, str(other / "knex.js"), *args], environment())
    assert done.stderr.splitlines()[-1] == "RESULT 0 1 True [] True", done.stderr
    assert done.stdout == run([*NORMAL, *args], environment()).stdout


def readers_with(marker: str) -> list[int]:
    """Processes whose environment holds MARKER (the reader inherits knexwrap's environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def test_the_early_reader_exits_when_knexwrap_is_killed_before_asking(migrated_sqlite: Path) -> None:
    marker = f"KNEXWRAP_TEST_MARK={uuid.uuid4().hex}"
    env = environment(dict([marker.split("=")]))
    args = [str(LAUNCHER), "status", "catalog", *sqlite_opts(migrated_sqlite), "--ask-password"]
    parent = subprocess.Popen(args, cwd=PROJECT, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(readers_with(marker)) < 2 and time.monotonic() < deadline:  # knexwrap and its reader
            time.sleep(0.05)
        assert parent.pid in readers_with(marker) and len(readers_with(marker)) == 2
        parent.send_signal(signal.SIGKILL)  # no finally, no atexit: only the closed pipe tells the reader
        parent.wait()
        deadline = time.monotonic() + 30
        while readers_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert readers_with(marker) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_workspaces_repository_is_the_same_both_ways_from_every_folder(pg: PgServer, tmp_path: Path) -> None:
    """A real yarn 1 workspaces repository (test_repository.make_repo): yarn links .bin/knex into
    packages/backend too, so the launcher must find the root, not that folder, and run the knex the
    backend loads, exactly as the normal path does."""
    root = make_repo(tmp_path)
    prefix = unique_name("kw_launch") + "_"
    env = environment({"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user})
    backend = root / "packages" / "backend"
    create_database(pg, f"{prefix}todo")
    try:
        args = ["status", "todo", "--prefix", prefix]
        for folder in (root, backend, root / "plugins" / "todo-backend"):
            assert f"{TODO_FILE}  pending" in same(args, env, folder).stdout
            assert same([*args, "--json"], env, folder).returncode == 0
            assert same([*args, "--check"], env, folder).returncode == 10
        assert run([*NORMAL, "latest", "todo", "--prefix", prefix, "--yes"], env, backend).returncode == 0
        applied = same(args, env, backend)
        assert (applied.returncode, "1 applied, 0 pending" in applied.stdout) == (0, True)
        assert same(args, env, root).stdout == applied.stdout
        assert same(["status", "nosuch", "--prefix", prefix], env, backend).returncode == 3
        # From packages/backend the early reader did the read: the root was found and its knex agreed.
        assert "sh" not in imported([str(LAUNCHER), *args], env, backend)
    finally:
        drop_database(pg, f"{prefix}todo")
