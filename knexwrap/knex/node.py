"""The one place knexwrap starts Node: the real Knex CLI, or its own read-only reader script.

Every call is bounded by a timeout, gets no TTY and no colours, and receives the connection
through its environment: argv never holds a password. What comes back is data (knex's listings, the
reader's JSON: never rewritten) or free text (errors, knex's notes: passwords masked, mask.py).
The reader takes its request and passwords on stdin; the one the launcher started early (prestart.py)
is used when it was started for the same project with the same knex.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KnexwrapError, Timeout, ToolMissing
from ..install import backend
from . import events as ev
from . import prestart
from .mask import mask
from .process import Background, Run, find, finished, run, start, timed_out

JS_DIR = Path(__file__).resolve().parent / "js"
KNEXFILE = JS_DIR / "knexfile.js"
READER = Path(prestart.READER)
PASSWORD_ENV = prestart.PASSWORD_ENV
PLAN_ENV = "KNEXWRAP_PLAN"
_READER_SLACK = 5.0  # seconds past --timeout before knexwrap stops a reader that ignores its own limits


@dataclass(frozen=True)
class ChangeRun:
    """One knex run of a change: what knex printed, and the events of knexwrap's knexfile (knex/events.py)."""

    run: Run  # stderr without the event lines
    events: tuple[ev.MigrationEvent, ...]
    secrets: tuple[str | None, ...] = ()  # the passwords knex was given: masked in a failure's free text

    def failure(self) -> KnexwrapError | None:
        """The typed error of a non-zero exit, None on success."""
        if self.run.exit_code == 0:
            return None
        return classify(self.run.stdout, self.run.stderr, self.run.exit_code, self.secrets)


@dataclass(frozen=True)
class Node:
    project: Path
    timeout: float  # seconds, for connecting and reading
    password: str | None = None
    change_timeout: float | None = None  # seconds for a change; None: a running migration is never cut
    lock_timeout: float | None = None  # seconds: PostgreSQL lock_timeout of a change's sessions

    def knex(self, args: list[str], config: dict[str, Any]) -> Run:
        """One run of node_modules/.bin/knex with knexwrap's knexfile; non-zero exits raise typed errors.

        The Run's stdout is knex's answer as printed: parse.py reads it, given the password so that what
        it passes on as free text (notes, an answer it cannot read) is masked.
        """
        argv = [str(knex_home(self.project) / "bin" / "cli.js"), "--knexfile", str(KNEXFILE), *args]
        run = self._run(argv, {"KNEXWRAP_CONFIG": json.dumps(config)}, timeout=self.timeout, name="knex")
        if run.exit_code != 0:
            raise classify(run.stdout, run.stderr, run.exit_code, (self.password,))
        return run

    def change(
        self,
        args: list[str],
        config: dict[str, Any],
        plan: dict[str, Any],
        on_event: Callable[[ev.MigrationEvent], None] | None = None,
        on_start: Callable[[int], None] | None = None,
        app_name: str | None = None,
    ) -> ChangeRun:
        """One knex run held to `plan` by knexwrap's knexfile (see js/knexfile.js).

        plan: {"table", "direction": "up"|"down", "names": [...] in run order, "applied": [[name, batch], ...]
        in id order, the rows the plan was made from, optionally "listed": the only files knex is shown}. A
        non-zero exit is returned, not raised: the caller re-reads the database before it says what happened.
        Bounded only by change_timeout. on_start gets the pid of knex (in its own process group); app_name tags
        knex's PostgreSQL sessions (application_name).
        """
        seen: list[ev.MigrationEvent] = []

        def on_line(line: str) -> None:
            event = ev.parse_event(line.rstrip("\n"))
            if event is not None:
                seen.append(event)
                if on_event is not None:
                    on_event(event)

        argv = [str(knex_home(self.project) / "bin" / "cli.js"), "--knexfile", str(KNEXFILE), *args]
        extra = {"KNEXWRAP_CONFIG": json.dumps(config), PLAN_ENV: json.dumps(plan)}
        if app_name is not None:
            extra["KNEXWRAP_APP_NAME"] = app_name
        if self.lock_timeout is not None:
            extra["KNEXWRAP_LOCK_TIMEOUT"] = f"{self.lock_timeout:g}"
        run = self._run(
            argv,
            extra,
            on_err=on_line,
            timeout=self.change_timeout,
            timeout_option="--change-timeout",
            on_start=on_start,
            name="knex",
        )
        found, rest = ev.split(run.stderr)
        return ChangeRun(Run(run.argv, run.exit_code, run.stdout, rest), found or tuple(seen), (self.password,))

    def ensure(self, request: dict[str, Any]) -> bool:
        """Create a missing database or schema (js/ensure.js); True when it was created, False when it existed.

        ``request``: {"config": knex config without password, "kind": "database"|"schema", "name", "owner"?}.
        """
        run = self.script("ensure.js", {"KNEXWRAP_ENSURE": json.dumps(request)})
        if run.exit_code != 0:
            raise classify(run.stdout, run.stderr, run.exit_code, (self.password,))
        created: bool = json.loads(run.stdout)["created"]
        return created

    def hold_lock(self, entry: dict[str, Any], wait: float) -> tuple[Background, dict[str, Any]]:
        """Start js/hold_lock.js for one set (entry: {"config", "table", "key", "passwordEnv"}) and read its answer.

        Returns the running holder (stop() releases the lock) and its first line: {"held": true, "knexLock"}
        or {"held": false, "holder"} or {"error"}. Raises Timeout when it says nothing within `wait` seconds.
        """
        node = find("node", "knexwrap holds its own lock with it")
        holder = start(
            node,
            [str(JS_DIR / "hold_lock.js")],
            cwd=self.project,
            env=self._environment({"KNEXWRAP_LOCK": json.dumps(entry)}),
        )
        line = holder.first_line(wait)
        if line is None:
            holder.stop()
            raise Timeout(f"knexwrap could not take its own lock within {wait:g} s (raise it with --timeout)")
        answer: dict[str, Any] = json.loads(line)
        return holder, answer

    def read(
        self,
        targets: list[dict[str, Any]],
        secrets: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run the read-only reader over several targets in one process: one entry per target, in order.

        `secrets` are other targets' passwords by the name their `passwordEnv` gives; the request, every
        password and the per-database limit travel on the reader's stdin. `progress` gets the id of each
        target as the reader finishes it. The entries are data, returned as the reader wrote them; only
        each entry's error message (a driver's free text) has the passwords masked.
        """
        # The reader gives each database this limit itself (a silent one becomes that target's error); knexwrap's
        # own clock, a little later, only catches a reader that hangs as a whole.
        own = {PASSWORD_ENV: self.password} if self.password is not None else {}
        request = json.dumps({"targets": targets, "secrets": {**own, **(secrets or {})}, "limit": self.timeout})
        passwords = (self.password, *(secrets or {}).values())
        knex_js = str(knex_home(self.project) / "knex.js")
        # The launcher's reader suits a read without progress lines (status PLUGIN's).
        started = prestart.claim(str(self.project), knex_js) if progress is None else None
        try:
            if started is None:
                others = tuple((secrets or {}).values())
                limit = self.timeout + _READER_SLACK
                run = self._run(
                    [str(READER)], {}, progress, others, timeout=limit, input_text=request, with_password=False
                )
            else:
                done = prestart.exchange(started, request.encode(), self.timeout + _READER_SLACK)
                if done is None:
                    raise timed_out(READER.name, self.timeout + _READER_SLACK)
                run = finished((prestart.READER,), *done, passwords)
        except Timeout:
            raise Timeout(f"the databases did not answer within {self.timeout:g} s (raise it with --timeout)") from None
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
        return self._run([str(JS_DIR / name)], env, timeout=self.timeout)

    def _environment(self, extra: dict[str, str], with_password: bool = True) -> dict[str, str]:
        env = {**prestart.reader_environment(str(knex_home(self.project) / "knex.js")), **extra}
        if with_password and self.password is not None:
            env[PASSWORD_ENV] = self.password
        return env

    def _run(
        self,
        argv: list[str],
        extra_env: dict[str, str],
        progress: Callable[[str], None] | None = None,
        secrets: tuple[str, ...] = (),
        *,
        timeout: float | None,  # seconds; None: no clock (a change without --change-timeout)
        on_err: Callable[[str], None] | None = None,
        timeout_option: str = "--timeout",
        on_start: Callable[[int], None] | None = None,
        name: str | None = None,
        input_text: str | None = None,
        with_password: bool = True,
    ) -> Run:
        node = find("node", "knexwrap runs the project's knex with it")
        if progress is not None:
            on_err = _progress(progress)
        return run(
            node,
            argv,
            cwd=self.project,
            env=self._environment(extra_env, with_password),
            timeout=timeout,
            secrets=(self.password, *secrets),
            on_err_line=on_err,
            timeout_option=timeout_option,
            on_start=on_start,
            name=name,
            input_text=input_text,
        )


def classify(stdout: str, stderr: str, exit_code: int, secrets: tuple[str | None, ...]) -> KnexwrapError:
    """failures.classify, imported only when a run failed: a read that succeeds needs no error patterns."""
    from .failures import classify as from_patterns

    return from_patterns(stdout, stderr, exit_code, secrets)


def _progress(progress: Callable[[str], None]) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        if line.startswith("done "):
            progress(line[5:].strip())

    return on_line


def knex_home(project: Path) -> Path:
    """The folder of the knex the backend loads (install/backend.py), as Node resolves it.

    Raises ToolMissing when the backend resolves no knex (yarn/npm install not run)."""
    found = backend.load(project).knex
    if found is None or not (found.folder / "bin" / "cli.js").is_file():
        raise ToolMissing(f"knex is not installed where the backend loads it in {project}: run npm install in it")
    return found.folder
