"""The read-only reader started before the heavy imports: the one program knexwrap starts without sh.

`knexwrap status PLUGIN` spends most of its time in series: Python imports click and knexwrap, then node
starts and requires knex. The launcher (cli/launch.py) calls start() first thing, so node loads knex on
the other core while Python imports; the normal path then hands the request over in Node.read (claim()
and exchange()). The reader waits on stdin and does nothing before it gets a request: a parent that
never sends one closes the pipe (abandon(), or its own exit) and the reader exits without reading.

Standard library only, and nothing imported at module level but os: this runs before the
heavy imports. The environment is the one Node gives every reader run (reader_environment()), so a
prestarted reader and one started through sh see the same variables and the same folder.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing itself is a costly import here; mypy reads this name as typing's
if TYPE_CHECKING:
    import select
    from collections.abc import Callable

READER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js", "read_state.js")
PASSWORD_ENV = "KNEXWRAP_PASSWORD"
# FORCE_COLOR turns colours on even when set to 0; libpq-style PG* variables would let the driver
# fill a gap from the shell. knexwrap always names host, port, user and database itself.
DROPPED = frozenset({"FORCE_COLOR", PASSWORD_ENV, "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"})
# The reader's hint to load this client's driver while it waits (read_state.js, preloadDriver).
PRELOAD_ENV = "KNEXWRAP_PRELOAD"


def guess_knex(project: str, start: str) -> str | None:
    """knex.js of the knex `require` finds from START (a folder inside PROJECT) up to PROJECT, as a real path.

    Only a guess at the knex the backend loads (install/backend.py decides that, with more imports than
    the launcher can afford): Node.read hands its request to the early reader only when the two agree
    (claim()), so both paths always run the same knex. None when there is none on the way."""
    folder, project = os.path.realpath(start), os.path.realpath(project)
    if folder != project and not folder.startswith(project + os.sep):
        folder = project
    while True:
        home = os.path.join(folder, "node_modules", "knex")
        if os.path.isfile(os.path.join(home, "bin", "cli.js")):
            return os.path.join(os.path.realpath(home), "knex.js")
        if folder == project:
            return None
        folder = os.path.dirname(folder)


def reader_environment(knex_js: str) -> dict[str, str]:
    """The environment of every node run: the user's minus DROPPED, no colours, KNEX_PATH=KNEX_JS."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    env.update(NO_COLOR="1", KNEX_PATH=knex_js)
    return env


def which(program: str) -> str | None:
    """The first executable PROGRAM on PATH, as shutil.which finds it (shutil costs an import here)."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class Started:
    """A reader waiting for its request: the process and the parent's ends of its three pipes."""

    def __init__(self, project: str, knex_js: str, pid: int, stdin: int, stdout: int, stderr: int) -> None:
        self.project, self.knex_js, self.pid = project, knex_js, pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.on_wait: Callable[[], None] | None = None


_waiting: Started | None = None
_exiting: int | None = None  # the pid of a reader that has answered and is exiting: reap() waits for it


def start(project: str, knex_js: str, preload: str | None, on_wait: Callable[[], None] | None = None) -> bool:
    """Start the reader for PROJECT (an absolute folder from install.root.find_root_folder) with the knex
    KNEX_JS (guess_knex), waiting on stdin.

    PRELOAD names the knex client whose driver it may load while it waits (None: none); ON_WAIT runs
    in the parent once the request is sent, while the reader queries. False when node, knex or the
    reader script is missing: the normal path then reports that as it always does.
    """
    global _waiting
    node = which("node")
    if _waiting is not None or node is None or not os.path.isfile(knex_js):
        return False
    env = reader_environment(knex_js)
    if preload:
        env[PRELOAD_ENV] = preload
    # Pipes are close-on-exec: the child keeps only what dup2 gives it as 0, 1 and 2.
    child_in, stdin = os.pipe()
    stdout, child_out = os.pipe()
    stderr, child_err = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, child_in, 0), (os.POSIX_SPAWN_DUP2, child_out, 1)]
    actions.append((os.POSIX_SPAWN_DUP2, child_err, 2))
    here = os.open(".", os.O_RDONLY)
    try:
        os.chdir(project)  # posix_spawn has no cwd here (3.13+); no thread runs yet to see the change
        pid = os.posix_spawn(node, [node, READER], env, file_actions=actions)
    except OSError:
        for fd in (stdin, stdout, stderr):
            os.close(fd)
        return False
    finally:
        os.fchdir(here)
        for fd in (here, child_in, child_out, child_err):
            os.close(fd)
    _waiting = Started(project, knex_js, pid, stdin, stdout, stderr)
    _waiting.on_wait = on_wait
    return True


def claim(project: str, knex_js: str) -> Started | None:
    """The waiting reader if it was started for PROJECT with the knex KNEX_JS (the one the backend loads);
    it is the caller's from then on (exchange()). One started with another knex is stopped: never used."""
    global _waiting
    started = _waiting
    if started is None or started.project != project:
        return None
    if started.knex_js != knex_js:
        abandon()
        return None
    _waiting = None
    return started


def exchange(started: Started, request: bytes, timeout: float) -> tuple[int, bytes, bytes] | None:
    """Send REQUEST, then collect (exit code, stdout, stderr) as sh would: a signal is a negative code.

    None when the reader did not finish within TIMEOUT seconds of the request (it is killed).
    """
    import select
    import time

    try:
        _write_all(started.stdin, request)
    except BrokenPipeError:
        pass  # the reader died before reading: its stderr and exit code say why
    finally:
        os.close(started.stdin)
    try:
        if started.on_wait is not None:
            started.on_wait()
        deadline = time.monotonic() + timeout
        kept = {started.stdout: bytearray(), started.stderr: bytearray()}
        poller, open_fds = select.poll(), set(kept)
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                _stop(started)
                return None
            for fd, _ in poller.poll(left * 1000):
                _read_into(fd, kept, poller, open_fds)
            if started.stdout in open_fds and _answered(kept[started.stdout]):
                return _answer(started, kept, poller, open_fds)
    except BaseException:
        _stop(started)  # an interrupt, or on_wait failed: the reader goes with us
        raise
    _, status = os.waitpid(started.pid, 0)
    return os.waitstatus_to_exitcode(status), bytes(kept[started.stdout]), bytes(kept[started.stderr])


def _read_into(fd: int, kept: dict[int, bytearray], poller: select.poll, open_fds: set[int]) -> None:
    chunk = os.read(fd, 65536)
    kept[fd].extend(chunk)
    if not chunk:
        poller.unregister(fd)
        open_fds.discard(fd)
        os.close(fd)


def _answered(out: bytearray) -> bool:
    """The reader's whole answer is one JSON line, written last, right before process.exit(0) (read_state.js)."""
    return out.endswith(b"\n") and out.count(b"\n") == 1


def _answer(
    started: Started, kept: dict[int, bytearray], poller: select.poll, open_fds: set[int]
) -> tuple[int, bytes, bytes]:
    """The answered reader's result without waiting for node to exit (several ms of teardown after its last
    write): node writes to pipes synchronously, so every stderr line written before the answer is already in the
    pipe and drained here. abandon() reaps the process before knexwrap exits."""
    global _exiting
    while open_fds and (ready := poller.poll(0)):
        for fd, _ in ready:
            _read_into(fd, kept, poller, open_fds)
    for fd in open_fds:
        os.close(fd)
    _exiting = started.pid
    return 0, bytes(kept[started.stdout]), bytes(kept[started.stderr])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _stop(started: Started) -> None:
    import contextlib
    import signal  # both deferred: imported before the reader starts, they would delay it (signal: enum)

    with contextlib.suppress(ProcessLookupError):
        os.kill(started.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):  # already reaped
        os.waitpid(started.pid, 0)
    for fd in (started.stdout, started.stderr):
        with contextlib.suppress(OSError):  # already closed at its end of file
            os.close(fd)


def abandon() -> None:
    """Stop a reader nobody claimed (the command failed first, or never read), and reap one that answered and
    is exiting (waited for up to a second, then killed): no reader outlives knexwrap."""
    global _waiting, _exiting
    started, _waiting = _waiting, None
    if started is not None:
        os.close(started.stdin)
        _stop(started)
    pid, _exiting = _exiting, None
    if pid is not None:
        _reap(pid)


def _reap(pid: int) -> None:
    import time

    deadline = time.monotonic() + 1.0
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            import signal

            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.001)
