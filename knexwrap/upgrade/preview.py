"""--sql: the statements a plan would send, per migration, obtained without changing the live database.

The plan runs through the project's real knex (js/preview.js, knex's `query` event) on a scratch copy
(scratch.py), or with mode "live" on the live PostgreSQL database inside a transaction that is always
rolled back. What the preview cannot show is said in its notes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import errors
from ..state import read as st
from ..state.plugin import Target, connection_config, read_state
from .scratch import scratch_copy

if TYPE_CHECKING:
    from ..state import whole as install
    from .plan import DowngradePlan

# Bounds of a live preview: the locks its DDL takes are held at most this long.
LOCK_TIMEOUT_MS = 2000
STATEMENT_TIMEOUT_MS = 10000
_TRANSACTION = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b", re.IGNORECASE)
_CATALOG = re.compile(r"information_schema|pg_catalog|pg_\w+|sqlite_master|PRAGMA", re.IGNORECASE)
_READ = re.compile(r"^\s*select\b", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    sql: str
    bindings: tuple[Any, ...]
    kind: str  # "migration" (the file's own), "bookkeeping" (knex's migrations table and lock), "transaction"


@dataclass(frozen=True)
class Drop:
    """A table or column the migration drops, with what the live database holds there now (read-only count)."""

    table: str
    column: str | None
    live_rows: int | None  # rows of the live table; None: not in the live database (made earlier in the plan)
    live_values: int | None  # rows whose column is not null; None for a table


@dataclass(frozen=True)
class MigrationSQL:
    name: str
    direction: str  # "up" or "down"
    source: str | None  # the text of the migration's up/down function as Node reads it
    transaction: bool
    statements: tuple[Statement, ...]
    drops: tuple[Drop, ...]
    notes: tuple[str, ...]
    error: str | None  # the migration failed here: the database's message


@dataclass(frozen=True)
class Preview:
    target: dict[str, Any]
    command: str
    action: str  # "apply" or "revert"
    method: str  # "schema-only copy", "copy of the file" or "live, rolled back"
    migrations: tuple[MigrationSQL, ...]
    notes: tuple[str, ...]

    @property
    def failed(self) -> MigrationSQL | None:
        return next((m for m in self.migrations if m.error is not None), None)


def check_live(target: Target, names: tuple[str, ...]) -> None:
    """Refuse --sql=live where it could change something: not PostgreSQL, or a migration without a transaction."""
    if target.connection.client != "pg":
        raise errors.PreviewUnavailable(
            "--sql=live is for PostgreSQL only: MySQL commits DDL at once and SQLite is previewed on a copy"
        )
    loose = st.without_transaction(target.migrations.directory, names)
    if loose:
        raise errors.PreviewUnavailable(
            f"--sql=live cannot preview {', '.join(loose)}: it runs without a transaction, so it could not be "
            "rolled back"
        )


def preview(target: Target, command: str, action: str, names: tuple[str, ...], *, live: bool = False) -> Preview:
    """Run NAMES (in this order) with ACTION on a copy, or live and rolled back, capturing every statement.

    Raises PreviewUnavailable (no scratch database allowed, live impossible), KnexwrapError when the copy
    cannot be made. A migration that fails is not raised: it ends the preview with its `error` set.
    """
    if not names:
        return Preview(target.header(), command, action, "none", (), ())
    if live:
        check_live(target, names)
        raw = _node(target, target.connection, "live", action, names)
        return _build(target, command, action, "live, rolled back", raw)
    state = read_state(target)
    table = target.migrations.table
    tables = (table, f"{table}_lock") if state.table_exists else ()
    with scratch_copy(target.connection, tables, target.node.timeout) as copy:
        raw = _node(target, copy, "copy", action, names)
    method = "copy of the file" if target.connection.is_sqlite else "schema-only copy"
    return _build(target, command, action, method, raw)


def preview_downgrade(
    plan: DowngradePlan, p: install.Plan, *, timeout: float, live: bool = False
) -> tuple[Preview, ...]:
    """The reverts of a downgrade plan, set by set in the order it runs them; each set on its own copy."""
    from ..knex.node import Node
    from .downgrade import set_target

    password = next((c.password for c in p.databases.values() if c.password), None)
    node = Node(p.project, timeout, password)
    found = []
    for one in plan.changes:
        target = set_target(p, one, node)
        found.append(preview(target, "downgrade", "revert", one.revert, live=live))
        if found[-1].failed is not None:
            break
    return tuple(found)


def _node(target: Target, where: Any, mode: str, action: str, names: tuple[str, ...]) -> dict[str, Any]:
    config = {**connection_config(where, target.node.timeout), "migrations": target.knex_config()["migrations"]}
    request = {
        "mode": mode,
        "config": config,
        "action": action,
        "names": list(names),
        "timeouts": {"lock_ms": LOCK_TIMEOUT_MS, "statement_ms": STATEMENT_TIMEOUT_MS},
    }
    return _script(target, request)


def _script(target: Target, request: dict[str, Any]) -> dict[str, Any]:
    """preview.js's answer: data as it wrote it, but for each migration's error message (a database's
    free text), which has the password masked."""
    from ..knex.mask import mask

    done = target.node.script("preview.js", {"KNEXWRAP_PREVIEW": json.dumps(request)})
    if done.exit_code != 0:
        from ..knex.failures import classify

        raise classify(done.stdout, done.stderr, done.exit_code, (target.node.password,))
    result: dict[str, Any] = json.loads(done.stdout)
    for entry in result.get("migrations", []):
        error = entry.get("error") if isinstance(entry, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            error["message"] = mask(error["message"], (target.node.password,))
    return result


def _build(target: Target, command: str, action: str, method: str, raw: dict[str, Any]) -> Preview:
    entries = raw["migrations"]
    wanted: list[tuple[str, str | None]] = [(t, None) for e in entries for t in e["dropped"]["tables"]]
    wanted += [(t, c) for e in entries for t, c in e["dropped"]["columns"]]
    counts = _live_counts(target, wanted) if wanted else {}
    migrations = tuple(_migration(target, method, e, counts) for e in entries)
    return Preview(target.header(), command, action, method, migrations, _notes(target, method))


def _live_counts(target: Target, wanted: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], Drop]:
    """Row counts in the live database, in a read-only transaction (read-only file on SQLite)."""
    config = connection_config(target.connection, target.node.timeout)
    found = _script(target, {"mode": "count", "config": config, "tables": [list(w) for w in dict.fromkeys(wanted)]})
    return {(c["table"], c["column"]): Drop(c["table"], c["column"], c["rows"], c["values"]) for c in found["counts"]}


def _kind(sql: str, bookkeeping: bool) -> str:
    if bookkeeping:
        return "bookkeeping"
    return "transaction" if _TRANSACTION.match(sql) else "migration"


def _statements(raw: list[dict[str, Any]]) -> tuple[Statement, ...]:
    """Each captured statement with its kind; a transaction that holds only bookkeeping (knex taking its
    lock) is bookkeeping too."""
    found = [Statement(s["sql"], tuple(s["bindings"]), _kind(s["sql"], s["bookkeeping"])) for s in raw]
    opened: int | None = None
    for i, s in enumerate(found):
        if s.kind != "transaction":
            continue
        word = s.sql.strip().upper()
        if word.startswith("BEGIN"):
            opened = i
        elif word.startswith(("COMMIT", "ROLLBACK")) and opened is not None:
            if all(x.kind != "migration" for x in found[opened + 1 : i]):
                found[opened] = replace(found[opened], kind="bookkeeping")
                found[i] = replace(s, kind="bookkeeping")
            opened = None
    return tuple(found)


def _migration(
    target: Target, method: str, e: dict[str, Any], counts: dict[tuple[str, str | None], Drop]
) -> MigrationSQL:
    statements = _statements(e["statements"])
    drops = [counts.get((t, None), Drop(t, None, None, None)) for t in e["dropped"]["tables"]]
    drops += [counts.get((t, c), Drop(t, c, None, None)) for t, c in e["dropped"]["columns"]]
    notes = []
    reads = [s for s in statements if s.kind == "migration" and _READ.match(s.sql) and not _CATALOG.search(s.sql)]
    if reads and method == "schema-only copy":
        notes.append(
            "reads data: the copy holds no rows, so statements that depend on what the live tables hold are not shown"
        )
    if not e["transaction"]:
        notes.append("runs without a transaction: on the live database a failure can leave it half done")
    if e["source"] is None:
        notes.append("its source could not be read")
    error = e["error"]["message"] if e["error"] else None
    return MigrationSQL(
        e["name"], e["direction"], e["source"], e["transaction"], statements, tuple(drops), tuple(notes), error
    )


def _notes(target: Target, method: str) -> tuple[str, ...]:
    notes = []
    if method == "schema-only copy":
        notes.append(
            "made on a schema-only copy of the database (dropped afterwards): data-dependent statements may differ"
        )
    if target.connection.client == "mysql2":
        notes.append(
            "MySQL commits each DDL statement at once: a failure leaves the ones before it applied; never run live"
        )
    if method == "live, rolled back":
        notes.append(
            "run on the live database in one transaction that was rolled back; knex's own bookkeeping not shown"
        )
    return tuple(notes)
