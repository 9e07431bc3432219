"""A test-only pause point: makes races between two knexwrap runs deterministic.

With KNEXWRAP_TEST_PAUSE=<folder>, knexwrap stops at each named point of a change: it creates
<folder>/<point>.waiting and waits until a test creates <folder>/<point>.go. Points: "confirmed"
(the plan was shown and accepted, nothing locked yet), "locked" (knexwrap's own lock is held, knex
not started). Unset (always, outside tests), a point costs one environment lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .. import errors

ENV = "KNEXWRAP_TEST_PAUSE"
_LIMIT_SECONDS = 120.0


def point(name: str) -> None:
    """Wait at `name` when the test hook is set; ConfigError if no test releases it within 120 s."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    (Path(folder) / f"{name}.waiting").touch()
    go = Path(folder) / f"{name}.go"
    deadline = time.monotonic() + _LIMIT_SECONDS
    while not go.exists():
        if time.monotonic() > deadline:
            raise errors.ConfigError(f"{ENV}: nobody created {go} within {_LIMIT_SECONDS:g} s")
        time.sleep(0.02)
