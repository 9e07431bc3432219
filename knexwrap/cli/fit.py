"""Tables that fit a terminal: long values shortened in the middle, times said relative to now."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

ELLIPSIS = "…"
_NARROWEST = 8  # a shortened value keeps at least this many characters: its start, "…", its end


def terminal_width() -> int:
    """Columns of the terminal (COLUMNS when set, as the shells and shutil read it); 80 when unknown."""
    return shutil.get_terminal_size((80, 24)).columns


def shorten(text: str, width: int) -> str:
    """TEXT in at most WIDTH characters: its start and end kept, the middle replaced by "…"."""
    if len(text) <= width:
        return text
    width = max(width, 3)
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def ago(iso: str | None, now: datetime | None = None) -> str:
    """An ISO 8601 time as people say it: "just now", "5 min ago", "3 h ago", "2 d ago" ("" for None)."""
    if not iso:
        return ""
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = ((now or datetime.now(timezone.utc)) - then).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    fmt: str,
    *,
    shrink: Sequence[int] = (),
    width: int | None = None,
) -> str:
    """A tabulate table no wider than WIDTH (the terminal's; None: as wide as its values), made to fit by
    shortening the values of the SHRINK columns in the middle, widest first. Multi-line cells shrink per line."""
    import tabulate as tabulating  # deferred: --json output never needs it

    # tabulate pads every header by 2 (its module-wide MIN_PADDING): columns as wide as their values instead.
    tabulating.MIN_PADDING = 0
    caps = {c: max((_widest(r[c]) for r in rows), default=0) for c in shrink}
    while True:
        shown = [[_cap(v, caps.get(i)) for i, v in enumerate(row)] for row in rows]
        text = tabulating.tabulate(
            shown, headers=list(headers), tablefmt=fmt, colalign=_alignment(rows, len(headers)), disable_numparse=True
        )
        over = max((len(line) for line in text.splitlines()), default=0) - (width or 10**6)
        wide = [c for c in caps if caps[c] > max(_NARROWEST, len(headers[c]))]
        if over <= 0 or not wide:
            return text
        widest = max(wide, key=lambda c: caps[c])
        # Down to the next widest column at most, so that the columns shrink together.
        second = max((caps[c] for c in caps if c != widest), default=0)
        floor = max(_NARROWEST, len(headers[widest]), min(second, caps[widest] - 1))
        caps[widest] = max(caps[widest] - over, floor)


def _alignment(rows: Sequence[Sequence[Any]], columns: int) -> tuple[str, ...]:
    """Numbers right, text left, blanks ignored: decided here rather than by tabulate's guessing, which
    changed between its versions (0.9 took a column with a blank cell for text, 0.10 for numbers)."""
    return tuple(
        "right"
        if any(_is_number(r[c]) for r in rows) and all(_is_number(r[c]) or r[c] in (None, "") for r in rows)
        else "left"
        for c in range(columns)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _widest(value: Any) -> int:
    return max((len(line) for line in str(value).splitlines()), default=0)


def _cap(value: Any, cap: int | None) -> Any:
    if cap is None or not isinstance(value, str):
        return value
    return "\n".join(shorten(line, cap) for line in value.splitlines())
