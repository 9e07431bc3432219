"""The one subprocess wrapper: every program knexwrap starts (node, pg_dump) goes through run().

The one exception is the read-only reader the launcher starts before the heavy imports (prestart.py);
its result comes back through finished() and timed_out() here, like every other run.

Through sh, with no TTY, a bounded time, secrets redacted from what comes back, and the failures
sh can raise turned into knexwrap errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Timeout, ToolMissing

if TYPE_CHECKING:
    import threading

_MASK = "********"


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str


def find(program: str, why: str) -> str:
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
    timeout: float,
    secrets: tuple[str | None, ...] = (),
    on_err_line: Callable[[str], None] | None = None,
    stdin: str | None = None,
) -> Run:
    """Run to completion; a non-zero exit is returned, not raised: callers know what it means.

    STDIN is written to the program's standard input (requests that must stay out of argv and env).
    """
    import threading

    import sh  # deferred: a large import, and only commands that start a program need it

    command = sh.Command(executable).bake(
        _cwd=str(cwd), _env=dict(env), _tty_in=False, _tty_out=False, _truncate_exc=False, _bg=True, _bg_exc=False
    )
    if stdin is not None:
        command = command.bake(_in=stdin)
    err_lines: list[str] = []
    if on_err_line is not None:
        command = command.bake(_err=_keep_lines(on_err_line, err_lines))
    # Our own timer instead of sh's _timeout: sh polls that one every 0.1 s, which added up to
    # 100 ms to every call; the timer kills the program at once and wait() returns when it exits.
    expired = threading.Event()
    try:
        running = command(*argv)
    except sh.CommandNotFound as missing:
        raise ToolMissing(f"cannot run {executable}: {missing}") from missing
    timer = threading.Timer(timeout, _kill, (running, expired))
    timer.start()
    try:
        running.wait()
        code, out, err = 0, running.stdout, running.stderr
    except sh.ErrorReturnCode as failed:
        code, out, err = failed.exit_code, failed.stdout, failed.stderr
    except sh.SignalException:
        code, out, err = -9, running.stdout, running.stderr
    finally:
        timer.cancel()
    if expired.is_set():
        raise timed_out(Path(executable).name if not argv else Path(argv[0]).name, timeout)
    return finished((executable, *argv), code, out or b"", "".join(err_lines) or (err or b""), secrets)


def timed_out(name: str, timeout: float) -> Timeout:
    return Timeout(f"{name} did not finish within {timeout:g} s and was stopped (raise it with --timeout)")


def finished(argv: tuple[str, ...], code: int, out: bytes, err: bytes | str, secrets: tuple[str | None, ...]) -> Run:
    """The Run of a program that exited with CODE: output decoded, SECRETS masked."""
    text = err if isinstance(err, str) else err.decode("utf-8", "replace")
    return Run(argv, code, _redact(out.decode("utf-8", "replace"), secrets), _redact(text, secrets))


def _redact(text: str, secrets: tuple[str | None, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _MASK)
    return text


def _kill(running: Any, expired: threading.Event) -> None:
    expired.set()
    with contextlib.suppress(ProcessLookupError):
        running.kill()


def _keep_lines(on_line: Callable[[str], None], kept: list[str]) -> Callable[[str], None]:
    def take(line: str) -> None:
        kept.append(line)  # sh keeps no stderr of its own once a callback takes it
        on_line(line)

    return take
