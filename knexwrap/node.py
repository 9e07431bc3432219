"""The one place knexwrap starts Node: the real Knex CLI, or its own read-only reader script.

Every call is bounded by a timeout, gets no TTY and no colours, and receives the connection
through its environment: argv never holds a password.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Timeout, ToolMissing
from .failures import classify
from .plugins import KNEX_BIN

JS_DIR = Path(__file__).resolve().parent / "js"
KNEXFILE = JS_DIR / "knexfile.js"
PASSWORD_ENV = "KNEXWRAP_PASSWORD"
_MASK = "********"
# FORCE_COLOR turns colours on even when set to 0; libpq-style PG* variables would let the driver
# fill a gap from the shell. knexwrap always names host, port, user and database itself.
_DROPPED = frozenset({"FORCE_COLOR", PASSWORD_ENV, "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"})


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Node:
    project: Path
    timeout: float
    password: str | None = None

    def knex(self, args: list[str], config: dict[str, Any]) -> Run:
        """One run of node_modules/.bin/knex with knexwrap's knexfile; non-zero exits raise typed errors."""
        argv = [str(self.project / KNEX_BIN), "--knexfile", str(KNEXFILE), *args]
        run = self._run(argv, {"KNEXWRAP_CONFIG": json.dumps(config)})
        if run.exit_code != 0:
            raise classify(run.stdout, run.stderr, run.exit_code)
        return run

    def read(
        self,
        targets: list[dict[str, Any]],
        secrets: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run the read-only reader over several targets in one process.

        `secrets` are extra environment variables (other targets' passwords), `progress` gets the id
        of each target as the reader finishes it.
        """
        env = {"KNEXWRAP_READ": json.dumps(targets), **(secrets or {})}
        run = self._run([str(JS_DIR / "read_state.js")], env, progress, tuple((secrets or {}).values()))
        if run.exit_code != 0:
            raise classify(run.stdout, run.stderr, run.exit_code)
        result: list[dict[str, Any]] = json.loads(run.stdout)
        return result

    def _environment(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        env.update(extra, NO_COLOR="1", KNEX_PATH=str(self.project / "node_modules" / "knex" / "knex.js"))
        if self.password is not None:
            env[PASSWORD_ENV] = self.password
        return env

    def _redact(self, text: str, secrets: tuple[str, ...] = ()) -> str:
        for secret in (self.password, *secrets):
            if secret:
                text = text.replace(secret, _MASK)
        return text

    def _run(
        self,
        argv: list[str],
        extra_env: dict[str, str],
        progress: Callable[[str], None] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> Run:
        import sh  # deferred: a large import, and only commands that start node need it

        node = shutil.which("node")
        if node is None:
            raise ToolMissing("node is not installed or not on PATH (knexwrap runs the project's knex with it)")
        if not Path(argv[0]).exists():
            raise ToolMissing(f"{argv[0]} is missing: run npm install in {self.project}")
        command = sh.Command(node).bake(
            _cwd=str(self.project),
            _env=self._environment(extra_env),
            _tty_in=False,
            _tty_out=False,
            _truncate_exc=False,
            _bg=True,
            _bg_exc=False,
        )
        err_lines: list[str] = []
        if progress is not None:
            command = command.bake(_err=_progress_lines(progress, err_lines))
        # Our own timer instead of sh's _timeout: sh polls that one every 0.1 s, which added up to
        # 100 ms to every call; the timer kills node at once and wait() returns when node exits.
        expired = threading.Event()
        try:
            running = command(*argv)
            timer = threading.Timer(self.timeout, _kill, (running, expired))
            timer.start()
            try:
                running.wait()
                code, out, err = 0, running.stdout, running.stderr or b""
            except sh.ErrorReturnCode as failed:
                code, out, err = failed.exit_code, failed.stdout, failed.stderr or b""
            except sh.SignalException:
                code, out, err = -9, running.stdout, running.stderr or b""
            finally:
                timer.cancel()
        except sh.CommandNotFound as missing:
            raise ToolMissing(f"cannot run {node}: {missing}") from missing
        if expired.is_set():
            raise Timeout(f"knex did not finish within {self.timeout:g} s and was stopped (raise it with --timeout)")
        return Run(
            argv=(node, *argv),
            exit_code=code,
            stdout=self._redact(out.decode("utf-8", "replace"), secrets),
            stderr=self._redact("".join(err_lines) or err.decode("utf-8", "replace"), secrets),
        )


def _kill(running: Any, expired: threading.Event) -> None:
    expired.set()
    with contextlib.suppress(ProcessLookupError):
        running.kill()


def _progress_lines(progress: Callable[[str], None], kept: list[str]) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        kept.append(line)  # sh keeps no stderr of its own once a callback takes it
        if line.startswith("done "):
            progress(line[5:].strip())

    return on_line
