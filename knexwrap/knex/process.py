"""The one subprocess wrapper: every program knexwrap starts (node, pg_dump) goes through run().

Through sh, with no TTY, a bounded time, and the failures sh can raise turned into knexwrap errors.
What comes back keeps data and text apart: stdout is the program's answer (knex's listings, the
reader's JSON) and is returned exactly as written; stderr is free text (messages, stack traces) and
comes back with the passwords masked by context (mask.py), so no caller can show one by accident.

The one program started elsewhere is the read-only reader the launcher starts before the heavy imports
(prestart.py); its result comes back through finished() and timed_out() here, like every other run's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Timeout, ToolMissing
from .mask import mask

if TYPE_CHECKING:
    import threading


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str  # data: exactly what the program wrote (UTF-8, undecodable bytes replaced)
    stderr: str  # free text, passwords masked


def find(program: str, why: str) -> str:
    """The path of PROGRAM on PATH; raises ToolMissing naming WHY knexwrap needs it."""
    import shutil  # deferred, like sh: a status read by the prestarted reader needs neither

    found = shutil.which(program)
    if found is None:
        raise ToolMissing(f"{program} is not installed or not on PATH ({why})")
    return found


def run(
    executable: str,
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float | None,
    secrets: tuple[str | None, ...] = (),
    on_err_line: Callable[[str], None] | None = None,
    timeout_option: str = "--timeout",
    on_start: Callable[[int], None] | None = None,
    name: str | None = None,
    stdin: Path | None = None,
    input_text: str | None = None,
) -> Run:
    """Run to completion; a non-zero exit is returned, not raised: callers know what it means.

    `name` is the program's name in messages (default: the file name of argv[0], else the executable).
    STDIN: a file fed to the program (a SQL dump to a database client); INPUT_TEXT: a string written
    to its standard input instead (a request with passwords, which must stay out of argv and env).

    ``secrets`` are the passwords the program was given (through its environment): they are masked in
    stderr. ``on_err_line`` sees each stderr line as written, for progress lines the program prints.
    Raises ToolMissing when the program cannot be started, Timeout after ``timeout`` seconds.

    on_start: gets the pid once the program runs; such a program (a change) gets its own process group, so
    a Ctrl-C on the terminal reaches knexwrap alone, which decides how to stop it (upgrade/interrupt.py).

    timeout: seconds before the program is killed (Timeout is raised); None for no limit, which a
    running migration (or a dump, or a restore) gets unless the user asked for one."""
    import threading

    import sh  # deferred: a large import, and only commands that start a program need it

    command = sh.Command(executable).bake(
        _cwd=str(cwd), _env=dict(env), _tty_in=False, _tty_out=False, _truncate_exc=False, _bg=True, _bg_exc=False
    )
    err_lines: list[str] = []
    if on_start is not None:
        command = command.bake(_new_group=True)
    if on_err_line is not None:
        command = command.bake(_err=_keep_lines(on_err_line, err_lines))
    # Our own timer instead of sh's _timeout: sh polls that one every 0.1 s, which added up to
    # 100 ms to every call; the timer kills the program at once and wait() returns when it exits.
    expired = threading.Event()
    feed = stdin.open("rb") if stdin is not None else None
    if feed is not None:
        command = command.bake(_in=feed)
    elif input_text is not None:
        command = command.bake(_in=input_text)
    try:
        running = command(*argv)
    except sh.CommandNotFound as missing:
        if feed is not None:
            feed.close()
        raise ToolMissing(f"cannot run {executable}: {missing}") from missing
    if on_start is not None:
        on_start(int(running.pid))
    timer = threading.Timer(timeout, _kill, (running, expired)) if timeout is not None else None
    if timer is not None:
        timer.start()
    try:
        running.wait()
        code, out, err = 0, running.stdout, running.stderr
    except sh.ErrorReturnCode as failed:
        code, out, err = failed.exit_code, failed.stdout, failed.stderr
    except sh.SignalException:
        code, out, err = -9, running.stdout, running.stderr
    finally:
        if timer is not None:
            timer.cancel()
        if feed is not None:
            feed.close()
    if expired.is_set():
        raise timed_out(name or (Path(executable).name if not argv else Path(argv[0]).name), timeout, timeout_option)
    return finished((executable, *argv), code, out or b"", "".join(err_lines) or (err or b""), secrets)


def timed_out(name: str, timeout: float | None, option: str = "--timeout") -> Timeout:
    """The Timeout of program NAME stopped after TIMEOUT seconds; OPTION is the flag that raises the limit."""
    return Timeout(f"{name} did not finish within {timeout or 0:g} s and was stopped (raise it with {option})")


def finished(argv: tuple[str, ...], code: int, out: bytes, err: bytes | str, secrets: tuple[str | None, ...]) -> Run:
    """The Run of a program that exited with CODE: stdout decoded as written (data), stderr masked (free text)."""
    text = err if isinstance(err, str) else err.decode("utf-8", "replace")
    return Run(argv, code, out.decode("utf-8", "replace"), mask(text, secrets))


def _kill(running: Any, expired: threading.Event) -> None:
    expired.set()
    with contextlib.suppress(ProcessLookupError):
        running.kill()


def _keep_lines(on_line: Callable[[str], None], kept: list[str]) -> Callable[[str], None]:
    def take(line: str) -> None:
        kept.append(line)  # sh keeps no stderr of its own once a callback takes it
        on_line(line)

    return take


class Background:
    """A program that runs beside knexwrap (the holder of knexwrap's own lock) until stop().

    It sits in its own process group, so a Ctrl-C on the terminal reaches knexwrap alone, which decides.
    """

    def __init__(self, running: Any, first: threading.Event, lines: list[str]) -> None:
        self._running, self._first, self._lines = running, first, lines

    @property
    def pid(self) -> int:
        return int(self._running.pid)

    def first_line(self, timeout: float) -> str | None:
        """The first line it printed on stdout, None if it printed none within `timeout` seconds or exited."""
        self._first.wait(timeout)
        return self._lines[0] if self._lines else None

    def signal(self, signum: int) -> None:
        """Send it a signal (the lock holder: SIGUSR2 cancels the change's statement on the server)."""
        with contextlib.suppress(ProcessLookupError, OSError):
            self._running.signal(signum)

    def stop(self) -> None:
        """Ask it to finish (SIGTERM) and wait until it has."""
        import sh

        with contextlib.suppress(ProcessLookupError, OSError):
            self._running.terminate()
        with contextlib.suppress(sh.ErrorReturnCode, sh.SignalException):
            self._running.wait()


def start(executable: str, argv: list[str], *, cwd: Path, env: Mapping[str, str]) -> Background:
    """Start a long-running program; its stdout lines are collected, the first one awaited by the caller."""
    import threading

    import sh

    first = threading.Event()
    lines: list[str] = []

    def take(line: str) -> None:
        lines.append(line)
        first.set()

    def done(*_: Any) -> None:
        first.set()  # exited without a line: nobody waits in vain

    command = sh.Command(executable).bake(
        _cwd=str(cwd), _env=dict(env), _tty_in=False, _tty_out=False, _bg=True, _bg_exc=False, _new_group=True
    )
    try:
        running = command(*argv, _out=take, _done=done)
    except sh.CommandNotFound as missing:
        raise ToolMissing(f"cannot run {executable}: {missing}") from missing
    return Background(running, first, lines)
