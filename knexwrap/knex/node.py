"""The one place knexwrap starts Node: the real Knex CLI, or its own read-only reader script.

Every call is bounded by a timeout, gets no TTY and no colours, and receives the connection
through its environment: argv never holds a password. What comes back is data (knex's listings, the
reader's JSON: never rewritten) or free text (errors, knex's notes: passwords masked, mask.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ToolMissing
from ..install.plugins import KNEX_BIN
from .failures import classify
from .mask import mask
from .process import Run, find, run

JS_DIR = Path(__file__).resolve().parent / "js"
KNEXFILE = JS_DIR / "knexfile.js"
PASSWORD_ENV = "KNEXWRAP_PASSWORD"
# FORCE_COLOR turns colours on even when set to 0; libpq-style PG* variables would let the driver
# fill a gap from the shell. knexwrap always names host, port, user and database itself.
_DROPPED = frozenset({"FORCE_COLOR", PASSWORD_ENV, "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"})


@dataclass(frozen=True)
class Node:
    project: Path
    timeout: float
    password: str | None = None

    def knex(self, args: list[str], config: dict[str, Any]) -> Run:
        """One run of node_modules/.bin/knex with knexwrap's knexfile; non-zero exits raise typed errors.

        The Run's stdout is knex's answer as printed: parse.py reads it, given the password so that what
        it passes on as free text (notes, an answer it cannot read) is masked.
        """
        argv = [str(self.project / KNEX_BIN), "--knexfile", str(KNEXFILE), *args]
        run = self._run(argv, {"KNEXWRAP_CONFIG": json.dumps(config)})
        if run.exit_code != 0:
            raise classify(run.stdout, run.stderr, run.exit_code, (self.password,))
        return run

    def read(
        self,
        targets: list[dict[str, Any]],
        secrets: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run the read-only reader over several targets in one process: one entry per target, in order.

        `secrets` are extra environment variables (other targets' passwords), `progress` gets the id
        of each target as the reader finishes it. The entries are data, returned as the reader wrote
        them; only each entry's error message (a driver's free text) has the passwords masked.
        """
        env = {"KNEXWRAP_READ": json.dumps(targets), **(secrets or {})}
        passwords = (self.password, *(secrets or {}).values())
        run = self._run([str(JS_DIR / "read_state.js")], env, progress, tuple((secrets or {}).values()))
        if run.exit_code != 0:
            raise classify(run.stdout, run.stderr, run.exit_code, passwords)
        result: list[dict[str, Any]] = json.loads(run.stdout)
        for entry in result:
            error = entry.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                error["message"] = mask(error["message"], passwords)
        return result

    def script(self, name: str, env: dict[str, str]) -> Run:
        """One run of knexwrap's own script js/NAME with ENV added; the exit code is the caller's to judge."""
        return self._run([str(JS_DIR / name)], env)

    def _environment(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        env.update(extra, NO_COLOR="1", KNEX_PATH=str(self.project / "node_modules" / "knex" / "knex.js"))
        if self.password is not None:
            env[PASSWORD_ENV] = self.password
        return env

    def _run(
        self,
        argv: list[str],
        extra_env: dict[str, str],
        progress: Callable[[str], None] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> Run:
        node = find("node", "knexwrap runs the project's knex with it")
        if not Path(argv[0]).exists():
            raise ToolMissing(f"{argv[0]} is missing: run npm install in {self.project}")
        on_err = _progress(progress) if progress is not None else None
        return run(
            node,
            argv,
            cwd=self.project,
            env=self._environment(extra_env),
            timeout=self.timeout,
            secrets=(self.password, *secrets),
            on_err_line=on_err,
        )


def _progress(progress: Callable[[str], None]) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        if line.startswith("done "):
            progress(line[5:].strip())

    return on_line
