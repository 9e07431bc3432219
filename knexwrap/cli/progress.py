"""Live progress on a terminal: one line on stderr, rewritten in place and erased when done.

Only when stderr is a terminal and the output is not --json: scripts and tools see nothing extra.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ..knex.events import MigrationEvent

# The seam for changes that report each migration as knex runs it: (migration file name, phase), e.g.
# ("20240101000000_init.js", "applying"). Progress.migration is one; a change takes it as an argument.
MigrationProgress = Callable[[str, str], None]

_ERASE = "\r\x1b[K"  # back to the line's start, erase to its end


class Progress:
    """A transient status line. read() counts whole-install reads; migration() is the seam for changes
    that report each migration as knex runs it (name, phase: e.g. "applying", "reverting")."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._read = 0
        self._shown = False

    def read(self, ident: str) -> None:
        """One database (or server listing, ident "#...") read: the count goes up, nothing is left behind."""
        self._read += 1
        self._show(f"knexwrap: read {self._read} {'database' if self._read == 1 else 'databases'}…")

    def migration(self, name: str, phase: str) -> None:
        """NAME is in PHASE ("applying", "reverting", ...): shown in place until the next event or the end."""
        self._show(f"knexwrap: {phase} {name}…")

    def clear(self) -> None:
        if self._shown:
            self._stream.write(_ERASE)
            self._stream.flush()
            self._shown = False

    def _show(self, text: str) -> None:
        self._stream.write(_ERASE + text)
        self._stream.flush()
        self._shown = True


_active: Progress | None = None


def start(as_json: bool) -> Progress | None:
    """A Progress on stderr when it is a terminal and the output is for people; else None."""
    global _active
    if as_json or not sys.stderr.isatty():
        return None
    _active = Progress(sys.stderr)
    return _active


def migrations(as_json: bool) -> Callable[[MigrationEvent], None] | None:
    """A listener for a change's per-migration events (knex/events.py) that shows the migration knex is
    running ("applying NAME…", "reverting NAME…") on a terminal's stderr; None with --json or off a terminal."""
    shown = start(as_json)
    if shown is None:
        return None

    def on_event(event: MigrationEvent) -> None:
        if event.kind == "start":
            shown.migration(event.name, "applying" if event.direction == "up" else "reverting")

    return on_event


def said(line: str) -> None:
    """LINE on stderr on a line of its own: the progress line (if any) is erased first; the next migration
    shows again."""
    if _active is not None:
        _active.clear()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def stop() -> None:
    """Erase the progress line, if one is shown (before the result, or before an error)."""
    global _active
    if _active is not None:
        _active.clear()
        _active = None


def fresh_line() -> None:
    """After Ctrl-C the terminal shows ^C mid-line: the error starts on a line of its own."""
    had_progress = _active is not None
    stop()
    if not had_progress and sys.stderr.isatty():
        sys.stderr.write("\n")
        sys.stderr.flush()
