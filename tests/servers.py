"""Real database servers for the tests: PostgreSQL (shared or throwaway) and MariaDB.

Standard library only, so it runs before anything else is installed. Nothing here
skips silently: a server we cannot reach or start raises `ServerUnavailable` saying
what was tried, because a test suite that quietly skips its database tests would
look green while testing nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import glob
import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# A password with every character that breaks naive URL or conninfo building.
SCRAM_PASSWORD = "p@ss: w/rd#1%?&"

# Unit separator: never appears in the values the tests read back.
_FIELD_SEP = "\x1f"
_PG_PORT = 5432
_MARIA_PORT = 3306
_WAIT_SECONDS = 30.0


class ServerUnavailable(RuntimeError):
    """No usable server: the message lists everything that was tried."""


class QueryFailed(RuntimeError):
    """A client (psql, mysql) exited non-zero; the message carries its stderr."""


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str | None = None

    def url(self, database: str) -> str:
        """A postgres:// URL with user and password percent-encoded."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"


@dataclass(frozen=True)
class MariaServer:
    host: str
    port: int
    user: str
    password: str | None = None


# --------------------------------------------------------------------------- utilities


def _run(
    cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _describe(proc: subprocess.CompletedProcess[str]) -> str:
    output = (proc.stderr or proc.stdout).strip()
    return f"`{' '.join(proc.args)}` exited {proc.returncode}: {output[-2000:]}"


def _wait_for(check: Callable[[], bool], seconds: float = _WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def _free_port() -> int:
    # The kernel picks an unused port; a tiny race with other processes remains,
    # which the start retry in _start_throwaway_postgres covers.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_RUN_ID = uuid.uuid4().hex[:10]
_COUNTER = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A lowercase identifier unique to this test run and to each call.

    Tests from several sessions share one server, so a random run id is part of
    every name; the counter keeps names of one run apart. Lowercase and at most
    63 characters, so PostgreSQL neither folds nor truncates it.
    """
    clean = re.sub(r"[^a-z0-9_]", "_", prefix.lower()) or "t"
    suffix = f"_{_RUN_ID}_{next(_COUNTER)}"
    return clean[: 63 - len(suffix)] + suffix


# ------------------------------------------------------------------------- PostgreSQL


def _psql_binary() -> str:
    found = shutil.which("psql") or _newest_in_pg_libdirs("psql")
    if found is None:
        raise ServerUnavailable("psql not found on PATH nor in /usr/lib/postgresql/*/bin")
    return found


def _pg_libdirs() -> list[Path]:
    # Newest major version first; Debian installs each version side by side.
    dirs = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin")]
    return sorted(dirs, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, reverse=True)


def _newest_in_pg_libdirs(name: str) -> str | None:
    return next((str(d / name) for d in _pg_libdirs() if (d / name).is_file()), None)


def _server_bindir() -> Path:
    """A directory holding initdb, pg_ctl and postgres of one and the same version."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    for bindir in [*candidates, *_pg_libdirs()]:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ServerUnavailable("no initdb/pg_ctl/postgres found on PATH nor in /usr/lib/postgresql/*/bin")


def _pg_env(server: PgServer) -> dict[str, str]:
    # Drop inherited PG* variables (PGDATABASE, PGSERVICE, ...) so only `server`
    # decides where psql goes; the password travels here, never in argv.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    if server.password is not None:
        env["PGPASSWORD"] = server.password
    return env


def _psql(server: PgServer, db: str, sql: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        _psql_binary(),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        server.user,
        "-d",
        db,
        "-At",
        "-F",
        _FIELD_SEP,
        "-0",
        "-c",
        sql,
    ]
    return _run(cmd, env=_pg_env(server), timeout=60)


def psql_rows(server: PgServer, db: str, sql: str) -> list[tuple[str, ...]]:
    """Rows of the last statement in `sql`, every value as text (NULL reads as '')."""
    proc = _psql(server, db, sql)
    if proc.returncode != 0:
        raise QueryFailed(_describe(proc))
    # With -0 every record ends in NUL, so values may even hold newlines.
    records = proc.stdout.split("\0")[:-1]
    return [tuple(record.split(_FIELD_SEP)) for record in records]


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_database(server: PgServer, name: str) -> None:
    psql_rows(server, "postgres", f"CREATE DATABASE {_pg_ident(name)}")


def drop_database(server: PgServer, name: str) -> None:
    # A test that failed mid-way may leave a connection open; FORCE alone would do
    # on PostgreSQL 13+, the explicit terminate also reports who was connected.
    psql_rows(
        server,
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = {_pg_literal(name)} AND pid <> pg_backend_pid()",
    )
    # Separate call: DROP DATABASE may not run in the implicit transaction of a multi-statement -c.
    psql_rows(server, "postgres", f"DROP DATABASE IF EXISTS {_pg_ident(name)} WITH (FORCE)")


def _pg_answers(server: PgServer) -> bool:
    # A real query, not pg_isready: "accepting connections" says nothing about auth.
    try:
        return _psql(server, "postgres", "select 1").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


_SHARED = PgServer("127.0.0.1", _PG_PORT, "postgres")


@functools.cache
def ensure_postgres() -> PgServer:
    """The shared server on 127.0.0.1:5432, started if down, else a throwaway cluster."""
    tried = [f"psql `select 1` on {_SHARED.host}:{_SHARED.port} as {_SHARED.user}: no answer"]
    if _pg_answers(_SHARED):
        return _SHARED
    if _start_system_cluster(tried):
        return _SHARED
    try:
        return _start_throwaway_postgres()
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as exc:
        tried.append(f"throwaway cluster: {exc}")
    raise ServerUnavailable("no PostgreSQL server could be reached or started:\n- " + "\n- ".join(tried))


def _start_system_cluster(tried: list[str]) -> bool:
    etc = Path("/etc/postgresql")
    versions = sorted(p.name for p in etc.iterdir()) if etc.is_dir() else []
    ctl = shutil.which("pg_ctlcluster")
    if not versions or ctl is None:
        tried.append(f"pg_ctlcluster: {'no cluster in /etc/postgresql' if ctl else 'not installed'}")
        return False
    for version in versions:
        proc = _run([ctl, "--skip-systemctl-redirect", version, "main", "start"])
        if proc.returncode != 0:
            tried.append(_describe(proc))
    if _wait_for(functools.partial(_pg_answers, _SHARED)):
        return True
    started = ", ".join(versions)
    tried.append(f"cluster(s) {started} started, port {_SHARED.port} silent for {_WAIT_SECONDS:.0f}s")
    return False


@dataclass(frozen=True)
class _Cluster:
    """A cluster living in its own temp dir, owned by whoever may run postgres."""

    server: PgServer
    root: Path
    bindir: Path

    def stop(self) -> None:
        # Immediate: the data is thrown away, no need for a clean checkpoint.
        _run(
            _as_pg_owner([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"]),
            cwd=self.root,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _as_pg_owner(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root, so root hands them to `postgres`.
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _ensure_postgres_user() -> None:
    if os.geteuid() != 0:
        return
    if _run(["id", "-u", "postgres"]).returncode == 0:
        return
    proc = _run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "postgres",
        ]
    )
    if proc.returncode != 0:
        raise ServerUnavailable(f"could not create the postgres system user: {_describe(proc)}")


def _make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="knexwrap-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


def _initdb(cluster: _Cluster, password: str | None) -> None:
    cmd = [
        str(cluster.bindir / "initdb"),
        "-D",
        str(cluster.root / "data"),
        "-U",
        "postgres",
        "--no-locale",
        "-E",
        "UTF8",
        "--no-sync",
    ]
    if password is None:
        cmd.append("--auth=trust")
    else:
        # A file, not argv: the password stays out of `ps` and needs no quoting.
        pwfile = cluster.root / "pwfile"
        pwfile.write_text(password + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        cmd += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
    proc = _run(_as_pg_owner(cmd), cwd=cluster.root)
    if password is not None:
        (cluster.root / "pwfile").unlink()
    if proc.returncode != 0:
        raise ServerUnavailable(f"initdb failed: {_describe(proc)}")


def _configure(cluster: _Cluster) -> None:
    # Settings go in the file rather than `pg_ctl -o`, which is re-split by a shell.
    # fsync and friends off: a throwaway cluster never needs to survive a crash.
    settings = {
        "port": str(cluster.server.port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{cluster.root}'",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    with (cluster.root / "data" / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))


def _pg_ctl_start(cluster: _Cluster) -> None:
    log = cluster.root / "postgres.log"
    cmd = [
        str(cluster.bindir / "pg_ctl"),
        "-D",
        str(cluster.root / "data"),
        "-l",
        str(log),
        "-w",
        "-t",
        "60",
        "start",
    ]
    proc = _run(_as_pg_owner(cmd), cwd=cluster.root)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise ServerUnavailable(f"pg_ctl start failed: {_describe(proc)}\n{tail}")


def _throwaway_cluster(port: int, password: str | None) -> _Cluster:
    """initdb + start a cluster on 127.0.0.1:`port`; trust auth unless `password` is given.

    The caller owns it: call `.stop()` (which also deletes its files).
    """
    bindir = _server_bindir()
    _ensure_postgres_user()
    cluster = _Cluster(PgServer("127.0.0.1", port, "postgres", password), _make_root(), bindir)
    try:
        _initdb(cluster, password)
        _configure(cluster)
        _pg_ctl_start(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _start_throwaway_postgres() -> PgServer:
    # Two tries: the free port may be taken between choosing and binding it.
    for attempt in range(2):
        try:
            cluster = _throwaway_cluster(_free_port(), None)
        except ServerUnavailable:
            if attempt == 1:
                raise
            continue
        atexit.register(cluster.stop)
        return cluster.server
    raise AssertionError("unreachable")


@contextlib.contextmanager
def scram_cluster(password: str) -> Iterator[PgServer]:
    """A throwaway cluster that checks passwords (scram-sha-256), removed on exit."""
    cluster = _throwaway_cluster(_free_port(), password)
    try:
        yield cluster.server
    finally:
        cluster.stop()


# --------------------------------------------------------------------------- MariaDB

_MARIA = MariaServer("127.0.0.1", _MARIA_PORT, "root")


def _mysql_binary() -> str:
    found = shutil.which("mariadb") or shutil.which("mysql")
    if found is None:
        raise ServerUnavailable("neither the mariadb nor the mysql client is on PATH")
    return found


def _mysql(server: MariaServer, db: str | None, sql: str) -> subprocess.CompletedProcess[str]:
    # --protocol=TCP: "localhost" would silently mean the unix socket instead.
    cmd = [
        _mysql_binary(),
        "--protocol=TCP",
        "-h",
        server.host,
        "-P",
        str(server.port),
        "-u",
        server.user,
        "--batch",
        "--skip-column-names",
        "--connect-timeout=5",
        "-e",
        sql,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
    if server.password is not None:
        env["MYSQL_PWD"] = server.password
    return _run(cmd + ([db] if db else []), env=env, timeout=60)


def mysql_rows(server: MariaServer, db: str | None, sql: str) -> list[tuple[str, ...]]:
    """Rows as text, tab-separated by the client (NULL reads as 'NULL')."""
    proc = _mysql(server, db, sql)
    if proc.returncode != 0:
        raise QueryFailed(_describe(proc))
    return [tuple(line.split("\t")) for line in proc.stdout.splitlines()]


def _maria_answers(server: MariaServer) -> bool:
    try:
        return _mysql(server, None, "select 1").returncode == 0
    except (OSError, subprocess.TimeoutExpired, ServerUnavailable):
        return False


@functools.cache
def ensure_mariadb() -> MariaServer:
    """MariaDB on 127.0.0.1:3306 as root without password, started if down."""
    if _maria_answers(_MARIA):
        return _MARIA
    daemon = Path("/usr/sbin/mariadbd")
    if not daemon.is_file():
        raise ServerUnavailable(f"MariaDB does not answer on 127.0.0.1:{_MARIA_PORT} and {daemon} is missing")
    if os.geteuid() == 0:
        # Debian's init script normally makes the socket dir; a bare start needs it too.
        Path("/run/mysqld").mkdir(exist_ok=True)
        with contextlib.suppress(LookupError):
            shutil.chown("/run/mysqld", "mysql", "mysql")
    proc = _run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", str(daemon)])
    if proc.returncode == 0 and _wait_for(functools.partial(_maria_answers, _MARIA)):
        return _MARIA
    raise ServerUnavailable(
        f"MariaDB does not answer on 127.0.0.1:{_MARIA_PORT} as root; tried starting it: {_describe(proc)}"
    )


def pg_env(pg: PgServer) -> dict[str, str | None]:
    """The POSTGRES_* variables knexwrap reads to reach `pg` (trust auth: no password)."""
    return {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
