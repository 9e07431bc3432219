"""The per-migration events knexwrap's own knexfile prints while knex runs a change.

knexfile.js writes one line per event on stderr, `knexwrap-event <json>`: knexwrap learns which
migration is running, whether it runs in a transaction, and which ones finished, as it happens.
Pure functions over text, like the parsers; consumers (progress, interrupts, the journal of
backups) take the typed `MigrationEvent`s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

PREFIX = "knexwrap-event "
# The knexfile's error text when it refuses to go on: the database is not what the plan was made from.
STALE_MARK = "knexwrap-stale:"

Kind = Literal["checked", "start", "end", "fail", "stale", "stopped"]
_KINDS = ("checked", "start", "end", "fail", "stale", "stopped")


@dataclass(frozen=True)
class MigrationEvent:
    """One event of one migration file.

    kind: "checked" (knex holds its lock and the table is exactly as planned; printed once, before the
    first file), "start", "end" (its up/down returned; recorded when knex commits), "fail" (it threw),
    "stale" (knexwrap refused to run it: the state or the next file differs from the plan), "stopped" (not
    started because knexwrap was interrupted).
    direction: "up" or "down". transaction: knex gave it a transaction (it rolls back on failure).
    at_ms: the knexfile's clock, milliseconds since the epoch. message: the error of a "fail".
    """

    kind: Kind
    name: str
    direction: str
    transaction: bool
    at_ms: int
    message: str | None = None


def parse_event(line: str) -> MigrationEvent | None:
    """The event on one stderr line, or None when the line is not an event (knex's own output)."""
    if not line.startswith(PREFIX):
        return None
    try:
        data = json.loads(line[len(PREFIX) :])
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("event") not in _KINDS:
        return None
    return MigrationEvent(
        kind=data["event"],
        name=str(data.get("name", "")),
        direction=str(data.get("direction", "")),
        transaction=bool(data.get("transaction")),
        at_ms=int(data.get("at", 0)),
        message=data.get("message"),
    )


def split(stderr: str) -> tuple[tuple[MigrationEvent, ...], str]:
    """The events of a captured stderr, and the rest of it (knex's own output, in order)."""
    events: list[MigrationEvent] = []
    rest: list[str] = []
    for line in stderr.splitlines(keepends=True):
        event = parse_event(line.rstrip("\n"))
        if event is None:
            rest.append(line)
        else:
            events.append(event)
    return tuple(events), "".join(rest)


def finished(events: tuple[MigrationEvent, ...]) -> tuple[str, ...]:
    """Names whose up/down returned, in order (committed only if knex then reported success)."""
    return tuple(e.name for e in events if e.kind == "end")


def running(events: tuple[MigrationEvent, ...]) -> MigrationEvent | None:
    """The migration started and not yet ended or failed, if any."""
    last = next((e for e in reversed(events) if e.kind in ("start", "end", "fail")), None)
    return last if last is not None and last.kind == "start" else None


def stale(events: tuple[MigrationEvent, ...], knex_output: str) -> bool:
    """knexwrap's knexfile refused to run: the database or the next file was not what the plan showed."""
    return any(e.kind == "stale" for e in events) or STALE_MARK in knex_output
