"""The one place knexwrap starts Node: the real Knex CLI, or its own read-only reader script.

Every call is bounded by a timeout, gets no TTY and no colours, and receives the connection
through its environment: argv never holds a password.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KnexwrapError, ToolMissing
from ..install.plugins import KNEX_BIN
from . import prestart
from .process import Run, find, finished, run, timed_out

JS_DIR = Path(__file__).resolve().parent / "js"
KNEXFILE = JS_DIR / "knexfile.js"
READER = Path(prestart.READER)
PASSWORD_ENV = prestart.PASSWORD_ENV


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
            raise _failure(run)
        return run

    def read(
        self,
        targets: list[dict[str, Any]],
        secrets: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run the read-only reader over several targets in one process.

        `secrets` are other targets' passwords by the name their `passwordEnv` gives; the request and
        every password travel on the reader's stdin. `progress` gets the id of each target as the
        reader finishes it. The reader the launcher started for this project is used when there is one.
        """
        passwords = {**({PASSWORD_ENV: self.password} if self.password is not None else {}), **(secrets or {})}
        request = json.dumps({"targets": targets, "secrets": passwords})
        masked = (self.password, *(secrets or {}).values())
        on_err = _progress(progress) if progress is not None else None
        # The launcher's reader suits a read without progress lines (status PLUGIN's).
        started = prestart.claim(str(self.project)) if progress is None else None
        if started is None:
            run = self._run([str(READER)], {}, on_err, masked, stdin=request, with_password=False)
        else:
            done = prestart.exchange(started, request.encode(), self.timeout)
            if done is None:
                raise timed_out(READER.name, self.timeout)
            run = finished((prestart.READER,), *done, masked)
        if run.exit_code != 0:
            raise _failure(run)
        result: list[dict[str, Any]] = json.loads(run.stdout)
        return result

    def script(self, name: str, env: dict[str, str]) -> Run:
        """One run of knexwrap's own script js/NAME with ENV added; the exit code is the caller's to judge."""
        return self._run([str(JS_DIR / name)], env)

    def _environment(self, extra: dict[str, str], with_password: bool = True) -> dict[str, str]:
        env = {**prestart.reader_environment(str(self.project)), **extra}
        if with_password and self.password is not None:
            env[PASSWORD_ENV] = self.password
        return env

    def _run(
        self,
        argv: list[str],
        extra_env: dict[str, str],
        on_err: Callable[[str], None] | None = None,
        secrets: tuple[str | None, ...] = (),
        stdin: str | None = None,
        with_password: bool = True,
    ) -> Run:
        node = find("node", "knexwrap runs the project's knex with it")
        if not Path(argv[0]).exists():
            raise ToolMissing(f"{argv[0]} is missing: run npm install in {self.project}")
        return run(
            node,
            argv,
            cwd=self.project,
            env=self._environment(extra_env, with_password),
            timeout=self.timeout,
            secrets=(self.password, *secrets),
            on_err_line=on_err,
            stdin=stdin,
        )


def _failure(run: Run) -> KnexwrapError:
    from .failures import classify  # deferred: only a failed run needs knex's error patterns

    return classify(run.stdout, run.stderr, run.exit_code)


def _progress(progress: Callable[[str], None]) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        if line.startswith("done "):
            progress(line[5:].strip())

    return on_line
