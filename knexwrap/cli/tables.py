"""What every text rendering shares: counts said in words, where a set lives, tables within the width.

The width is the rendering's (set by text.render, one rendering per process); cli/fit.py fits tables in it.
"""

from __future__ import annotations

from typing import Any

# The width tables must fit in, for this rendering (set by text.render(); None: as wide as their values).
WIDTH: list[int | None] = [None]

VERBS = {"apply": ("apply", "applied"), "revert": ("revert", "reverted"), "unlock": ("release", "released")}


def plural(n: int, noun: str) -> str:
    """'1 problem', '2 problems': the count and its noun, in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def count(n: int) -> str:
    """'1 migration', '3 migrations'."""
    return plural(n, "migration")


def where(target: dict[str, Any]) -> str:
    """A target header (Target.header()) in words: `catalog (@backstage/plugin-catalog-backend) in DB, table T`."""
    plugin = target["plugin"] or "(no plugin)"
    package = f" ({target['package']})" if target["package"] else ""
    return f"{plugin}{package} in {target['database']}, table {target['migrations_table']}"


def table(rows: list[list[Any]], headers: list[str], fmt: str, shrink: tuple[int, ...] = ()) -> str:
    """A table within the rendering's width: the SHRINK columns' values shortened in the middle as needed."""
    from . import fit

    return fit.table(rows, headers, fmt, shrink=shrink, width=WIDTH[0])


def server_line(servers: list[str | None]) -> list[str]:
    """The server (or the SQLite files' folder), named once above a table whose rows name only their database."""
    found = sorted({s for s in servers if s})
    if len(found) != 1:
        return []
    kind = "server" if "://" in found[0] else "folder"
    return [f"{kind} {found[0]}", ""]


def placed(target_text: str) -> tuple[str | None, str]:
    """(server, database with its schema) of a connection text; a SQLite file is (its folder, its name)."""
    import os

    from ..config.environment import split_target

    server, database, schema = split_target(target_text)
    if server is None and os.path.isabs(database):
        return os.path.dirname(database), os.path.basename(database)
    return server, f"{database} schema {schema}" if schema else database


def size_text(n: int) -> str:
    """N bytes for people, in decimal units: 512 bytes, 12.3 MB."""
    value, unit = float(n), "bytes"
    for bigger in ("kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
