"""Live progress on a pseudo-terminal's stderr: a transient count that leaves no line behind, nothing
with --json or off a terminal, and after Ctrl-C the error on a line of its own."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import CLEAN_ENV, PROJECT, knexwrap


def sqlite(folder: Path) -> tuple[str, ...]:
    return ("--client", "better-sqlite3", "--sqlite-dir", str(folder))


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}


def _drain(fd: int, until: bytes | None = None, seconds: float = 30) -> bytes:
    seen, end = b"", time.monotonic() + seconds
    while time.monotonic() < end and (until is None or until not in seen):
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        seen += chunk
    return seen


def on_terminal(*args: str) -> tuple[int, bytes, bytes]:
    """Run knexwrap with stderr on a pseudo-terminal: (exit code, stdout, what the terminal received)."""
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "knexwrap", *args]
    done = subprocess.Popen(argv, cwd=PROJECT, env=_env(), stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out = done.communicate(timeout=60)[0]
    seen = _drain(master, seconds=2)
    os.close(master)
    return done.returncode, out, seen


def test_whole_install_reads_show_a_count_that_leaves_nothing_behind(tmp_path: Path) -> None:
    for plugin in ("app", "catalog", "user-settings"):  # three databases to read
        assert knexwrap("up", plugin, *sqlite(tmp_path), "--yes").code == 0
    code, out, seen = on_terminal("status", *sqlite(tmp_path))
    assert code == 0
    text = seen.decode()
    assert "knexwrap: read 1 database…" in text and "knexwrap: read 3 databases…" in text
    # Each update rewrites the line in place, and the last erases it: no line, no newline, left behind.
    assert text.endswith("\r\x1b[K") and "\n" not in text
    assert out.decode().splitlines()[0] == f"folder {tmp_path}"


def test_no_progress_with_json_or_off_a_terminal(tmp_path: Path) -> None:
    code, _, seen = on_terminal("status", *sqlite(tmp_path), "--json")
    assert (code, seen) == (0, b"")
    assert knexwrap("status", *sqlite(tmp_path)).err == ""  # CliRunner's stderr is no terminal


def test_after_ctrl_c_the_error_starts_on_a_fresh_line(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "knexwrap", "latest", "catalog", *sqlite(tmp_path)]
    (tmp_path / "catalog.sqlite").write_bytes(b"")
    running = subprocess.Popen(argv, cwd=PROJECT, env=_env(), stdin=slave, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    asked = _drain(master, until=b"Go ahead? [y/N]: ")
    assert asked.endswith(b"Go ahead? [y/N]: ")
    running.send_signal(signal.SIGINT)
    code = running.wait(timeout=30)
    rest = _drain(master, seconds=2).decode()
    os.close(master)
    assert code == 14
    assert rest.startswith("\r\nknexwrap: error: cancelled at the question (Ctrl-C): nothing was changed")


def test_a_change_shows_each_migration_live_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """latest and rollback name the migration knex is running (knexfile events), erased at the end;
    nothing of it with --json."""
    names = [m["name"] for m in knexwrap("status", "catalog", *sqlite(tmp_path), "--json").json()["migrations"]]
    assert len(names) > 1
    code, out, seen = on_terminal("latest", "catalog", *sqlite(tmp_path), "--yes")
    text = seen.decode()
    assert code == 0, text
    assert [f"knexwrap: applying {n}…" in text for n in names] == [True] * len(names)
    # Shown in the order knex ran them, each rewriting the last in place; erased before the result.
    assert text.index(f"applying {names[0]}…") < text.index(f"applying {names[-1]}…")
    assert text.endswith("\r\x1b[K")
    assert "applied" in out.decode()
    code, _, seen = on_terminal("rollback", "catalog", *sqlite(tmp_path), "--yes", "--no-backup")
    assert code == 0 and f"knexwrap: reverting {names[-1]}…" in seen.decode()
    assert knexwrap("latest", "catalog", *sqlite(tmp_path), "--yes").code == 0
    code, _, seen = on_terminal("rollback", "catalog", *sqlite(tmp_path), "--yes", "--no-backup", "--json")
    assert code == 0 and b"reverting" not in seen and b"\x1b[K" not in seen
