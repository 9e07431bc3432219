"""The one place knexwrap starts Node: the real Knex CLI, or its own read-only reader script.

Every call is bounded by a timeout, gets no TTY and no colours, and receives the connection
through its environment: argv never holds a password.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ToolMissing
from ..install import backend
from .failures import classify
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
        """One run of node_modules/.bin/knex with knexwrap's knexfile; non-zero exits raise typed errors."""
        argv = [str(knex_home(self.project) / "bin" / "cli.js"), "--knexfile", str(KNEXFILE), *args]
        run = self._run(argv, {"KNEXWRAP_CONFIG": json.dumps(config)}, name="knex")
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

    def script(self, name: str, env: dict[str, str]) -> Run:
        """One run of knexwrap's own script js/NAME with ENV added; the exit code is the caller's to judge."""
        return self._run([str(JS_DIR / name)], env)

    def ensure(self, request: dict[str, Any]) -> bool:
        """Create a missing database or schema (js/ensure.js); True when it was created, False when it existed.

        ``request``: {"config": knex config without password, "kind": "database"|"schema", "name", "owner"?}.
        """
        run = self.script("ensure.js", {"KNEXWRAP_ENSURE": json.dumps(request)})
        if run.exit_code != 0:
            raise classify(run.stdout, run.stderr, run.exit_code)
        created: bool = json.loads(run.stdout)["created"]
        return created

    def _environment(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        env.update(extra, NO_COLOR="1", KNEX_PATH=str(knex_home(self.project) / "knex.js"))
        if self.password is not None:
            env[PASSWORD_ENV] = self.password
        return env

    def _run(
        self,
        argv: list[str],
        extra_env: dict[str, str],
        progress: Callable[[str], None] | None = None,
        secrets: tuple[str, ...] = (),
        name: str | None = None,
    ) -> Run:
        node = find("node", "knexwrap runs the project's knex with it")
        on_err = _progress(progress) if progress is not None else None
        return run(
            node,
            argv,
            cwd=self.project,
            env=self._environment(extra_env),
            timeout=self.timeout,
            secrets=(self.password, *secrets),
            on_err_line=on_err,
            name=name,
        )


def knex_home(project: Path) -> Path:
    """The folder of the knex the backend loads (install/backend.py), as Node resolves it.

    Raises ToolMissing when the backend resolves no knex (yarn/npm install not run)."""
    found = backend.load(project).knex
    if found is None or not (found.folder / "bin" / "cli.js").is_file():
        raise ToolMissing(f"knex is not installed where the backend loads it in {project}: run npm install in it")
    return found.folder


def _progress(progress: Callable[[str], None]) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        if line.startswith("done "):
            progress(line[5:].strip())

    return on_line
