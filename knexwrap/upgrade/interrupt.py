"""Ctrl-C (SIGINT) and SIGTERM during a change: never cut a migration in half when that can be avoided.

First signal: knex is told to start no further migration (SIGUSR2 to its process, see js/knexfile.js);
the running migration, if it runs in a transaction on PostgreSQL, has its statement cancelled on the
server (pg_cancel_backend on the sessions tagged with knexwrap's application_name, by the lock holder)
and rolls back; one without a transaction, or on MySQL/MariaDB (DDL commits on its own) or SQLite, is
allowed to finish, and knexwrap says so at once. A second signal stops knex at once (SIGKILL).
knex runs in its own process group: a Ctrl-C on the terminal reaches knexwrap alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType

from ..knex import events
from ..knex.process import Background

_HANDLED = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Watch:
    """What the signal handler needs and what it saw; filled while knex runs (mutable on purpose)."""

    client: str
    say: Callable[[str], None]
    holder: Background | None = None
    knex_pid: int | None = None
    seen: list[events.MigrationEvent] = field(default_factory=list)
    signals: list[int] = field(default_factory=list)
    stopped: events.MigrationEvent | None = None  # the migration running at the first signal
    cancelled: bool = False  # its statement was cancelled on the server
    listener: Callable[[events.MigrationEvent], None] | None = None  # also gets every event (a journal)

    def saw(self, event: events.MigrationEvent) -> None:
        self.seen.append(event)
        if self.listener is not None:
            self.listener(event)

    def started(self, pid: int) -> None:
        self.knex_pid = pid
        if self.signals:  # a signal came while knex was starting: it must not begin
            self._send(signal.SIGUSR2)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)
        if len(self.signals) == 1:
            self._stop_gently(signal.Signals(signum).name)
        else:
            self.say("second interrupt: stopping knex at once; the running migration may be left half done")
            self._cancel()
            self._send(signal.SIGKILL)

    def _stop_gently(self, name: str) -> None:
        self._send(signal.SIGUSR2)
        running = events.running(tuple(self.seen))
        self.stopped = running
        if running is None:
            self.say(f"{name}: stopping before the next migration starts")
        elif running.transaction and self.client == "pg":
            self.say(f"{name}: cancelling {running.name} on the server; its transaction rolls back")
            self.cancelled = self._cancel()
        else:
            why = "runs without a transaction"
            if self.client in ("mysql", "mysql2"):
                why = "runs on MySQL/MariaDB, where each DDL statement commits on its own"
            elif running.transaction:
                why = "cannot be cancelled on a SQLite file"
            self.say(
                f"{name}: {running.name} {why}: letting it finish, then stopping; "
                "interrupt again to stop at once (it may be left half done)"
            )

    def _cancel(self) -> bool:
        if self.holder is None or self.client != "pg":
            return False
        self.holder.signal(signal.SIGUSR2)
        return True

    def _send(self, signum: int) -> None:
        if self.knex_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.knex_pid, signum)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(signal.Signals(self.signals[0]), 130) if self.signals else 0


@contextlib.contextmanager
def watching(watch: Watch) -> Iterator[Watch]:
    """SIGINT/SIGTERM go to `watch` while the block runs (main thread only; elsewhere signals are left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield watch
        return
    previous = {s: signal.signal(s, watch.on_signal) for s in _HANDLED}
    try:
        yield watch
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
