"""Two knexwrap runs at once, made deterministic with knexwrap's test pause point, and database fingerprints.

A run started with `paused(...)` is a real knexwrap process; it stops at a named point of its change
(knexwrap/upgrade/pause.py) until the test lets it go, so "a second run between the plan and the y"
happens every time, not by luck.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from helpers import CLEAN_ENV, PROJECT
from servers import PgServer, psql_rows


@dataclass
class Paused:
    process: subprocess.Popen[str]
    folder: Path

    def wait_at(self, point: str, seconds: float = 60.0) -> None:
        """Until the run stands at `point`; fails the test if it exits or never gets there."""
        deadline = time.monotonic() + seconds
        while not (self.folder / f"{point}.waiting").exists():
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"knexwrap exited {self.process.returncode} before {point}: {err}{out}")
            if time.monotonic() > deadline:
                raise AssertionError(f"knexwrap never reached {point}")
            time.sleep(0.05)

    def release(self, point: str) -> None:
        (self.folder / f"{point}.go").touch()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self, seconds: float = 120.0) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=seconds)
        return self.process.returncode, out, err


POINTS = ("confirmed", "locked")


def paused(
    args: list[str],
    folder: Path,
    env: Mapping[str, str | None],
    *,
    stop_at: tuple[str, ...] = POINTS,
    stdin: str | None = None,
) -> Paused:
    """A real `knexwrap ARGS` process in the fixture project, pausing at the points `stop_at` (see pause.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    for point in set(POINTS) - set(stop_at):
        (folder / f"{point}.go").touch()
    merged = {**os.environ, **{k: v for k, v in {**CLEAN_ENV, **env}.items() if v is not None}}
    for key, value in {**CLEAN_ENV, **env}.items():
        if value is None:
            merged.pop(key, None)
    merged["KNEXWRAP_TEST_PAUSE"] = str(folder)
    process = subprocess.Popen(
        [sys.executable, "-m", "knexwrap", *args],
        cwd=PROJECT,
        env=merged,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a signal the test sends reaches knexwrap alone, like `kill PID`
    )
    if stdin is not None and process.stdin is not None:
        process.stdin.write(stdin)
        process.stdin.flush()
    return Paused(process, folder)


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid` (a knex child that outlived knexwrap would show up here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def pg_fingerprint(pg: PgServer, db: str) -> list[tuple[str, ...]]:
    """Every table's columns and an md5 of all its rows (public schema): equal before and after = unchanged."""
    columns = psql_rows(
        pg,
        db,
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'public' order by 1, 2",
    )
    tables = sorted({c[0] for c in columns})
    digest = "select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from \"{}\" x"
    sums = [(t, *psql_rows(pg, db, digest.format(t))[0]) for t in tables]
    return columns + sums


def sqlite_fingerprint(path: Path) -> list[tuple[object, ...]]:
    """The schema and every row of every table of a SQLite file, sorted."""
    with sqlite3.connect(path) as db:
        schema = sorted(db.execute("select type, name, coalesce(sql, '') from sqlite_master"))
        rows: list[tuple[object, ...]] = []
        for (name,) in db.execute("select name from sqlite_master where type = 'table' order by name"):
            rows += [(name, *r) for r in sorted(db.execute(f'select * from "{name}"'), key=repr)]
    return [*schema, *rows]


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}
