"""What a migration set looks like in one database: read-only, computed the way knex computes it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from .. import errors

# knex's default loadExtensions: the files its FsMigrations source lists (not .mjs).
_NO_TRANSACTION = re.compile(r"transaction\s*:\s*false")
MIGRATION_EXTENSIONS = (".co", ".coffee", ".eg", ".iced", ".js", ".cjs", ".litcoffee", ".ls", ".ts")


@dataclass(frozen=True)
class Applied:
    name: str
    batch: int
    migration_time: str | None


# Backstage's own store of each migration's source and sha256 (backend-defaults, main branch, not released yet).
SOURCES_TABLE = "backstage_migration_sources_{}"


@dataclass(frozen=True)
class SetState:
    """The rows of one migrations table next to the files of its folder."""

    table_exists: bool
    applied: tuple[Applied, ...]  # in the order knex ran them (id order)
    files: tuple[str, ...]  # sorted by name, as knex sorts them
    locked: bool  # knex cannot take its lock: a row is held, or the rows are not exactly one free row
    lock_rows: int = 1  # rows of <table>_lock; more than one: two first runs raced (knex #3538)
    # (migration name as knex records it, sha256) from Backstage's stored sources, checksums that match their text.
    stored: tuple[tuple[str, str], ...] = ()

    @property
    def applied_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.applied)

    @property
    def missing(self) -> tuple[str, ...]:
        present = set(self.files)
        return tuple(a.name for a in self.applied if a.name not in present)

    @property
    def pending(self) -> tuple[str, ...]:
        done = set(self.applied_names)
        return tuple(name for name in self.files if name not in done)

    @property
    def last_batch(self) -> int | None:
        return max((a.batch for a in self.applied), default=None)

    def batch_files(self, batch: int) -> tuple[str, ...]:
        """The files of one batch in the order knex reverts them (newest id first)."""
        return tuple(a.name for a in reversed(self.applied) if a.batch == batch)


def without_transaction(directory: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The files that opt out of knex's transaction (`exports.config = { transaction: false }`):
    a failure in one of them can leave it half done."""
    flagged = []
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as source:
                if _NO_TRANSACTION.search(source.read()):
                    flagged.append(name)
    return tuple(flagged)


def list_files(directory: str) -> tuple[str, ...]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return ()
    return tuple(sorted(n for n in names if n.endswith(MIGRATION_EXTENSIONS)))


def current_version(names: tuple[str, ...]) -> str | None:
    """knex's currentVersion: the largest prefix before the first underscore."""
    return max((n.split("_", 1)[0] for n in names), default=None)


# read_state.js's code for a schema-mode plugin whose schema does not exist (PostgreSQL's invalid_schema_name).
MISSING_SCHEMA = "3F000"
# Reader error codes that mean the plugin's database (or schema) is not there yet: pg, mysql, schema mode.
_MISSING_DATABASE = ("3D000", "ER_BAD_DB_ERROR", MISSING_SCHEMA)


def missing_database(entry: dict[str, Any]) -> bool:
    return "error" in entry and entry["error"].get("code") in _MISSING_DATABASE


def reader_error(entry: dict[str, Any]) -> errors.KnexwrapError:
    """The typed error of a reader entry that failed; in schema mode the schema is the plugin's database."""
    error = entry["error"]
    if error.get("code") == MISSING_SCHEMA:
        return errors.DatabaseMissing(error["message"])
    from ..knex.failures import classify  # deferred, like every failure path: a read that succeeds needs none

    return classify("", f"Error: {error['message']}", 1)


def from_reader(entry: dict[str, Any], table: str, directory: str) -> SetState:
    """One entry of read_state.js's output; a database error becomes the typed error."""
    if "error" in entry:
        raise reader_error(entry)
    data = entry["tables"][table]
    return SetState(
        table_exists=data["exists"],
        applied=tuple(Applied(r["name"], int(r["batch"]), r["migration_time"]) for r in data["rows"]),
        files=list_files(directory),
        locked=_knex_says_locked(data["lock"]),
        lock_rows=int(data["lock"].get("rows", 1)),
        stored=stored_sources(entry, table, tuple(r["name"] for r in data["rows"])),
    )


def stored_sources(entry: dict[str, Any], table: str, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Backstage's stored checksum of each of NAMES (rows of TABLE): its migration_name has no ".js".
    A checksum that is not the sha256 of its own stored text (read_state.js checks) is not used."""
    found = {
        str(r["name"]): str(r["checksum"])
        for r in entry.get("sources") or ()
        if r.get("table") == table and r.get("verified")
    }
    pairs = ((n, found.get(n, found.get(n[:-3]) if n.endswith(".js") else None)) for n in names)
    return tuple((n, sha) for n, sha in pairs if sha)


def _knex_says_locked(lock: dict[str, Any]) -> bool:
    """knex takes its lock by updating the free rows and insists on exactly one; no rows: it inserts one."""
    if "rows" not in lock:
        return bool(lock["locked"])
    return int(lock["rows"]) > 0 and int(lock["free"]) != 1
