"""Backstage's stored migration sources as files to revert with, where the archive lacks a recorded migration.

Backstage's main branch (backend-defaults MigrationStorage, not released yet) keeps each applied migration's
source in `backstage_migration_sources_<pluginId>`: table_name, migration_name (the file name without ".js"),
source_content and checksum = sha256 of source_content as UTF-8 (createHash('sha256').update(text)). Its
StoredMigrationSource runs a stored source as CommonJS (new Function('exports', 'module', 'require', text)),
so knexwrap writes it as a `.js` file of a CommonJS folder (upgrade/runfolder.py) under the name knex records.

A source is used only when its checksum is the sha256 of its text: checked when the plan is made (the sha256
the plan shows) and again when the downgrade builds its folder, right before knex runs, where it must still
be the sha256 the plan showed (plan-is-the-run). The archive is preferred whenever it has the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..knex.node import Node
from ..state import read as st
from ..state import whole as install
from ..state.plugin import reader_entry

FROM = "backstage_migration_sources"  # files_from of a set some of whose files come from the table


@dataclass(frozen=True)
class StoredFile:
    """A recorded migration (NAME as knex records it) whose file is Backstage's stored source."""

    name: str
    sha256: str  # of the stored text as UTF-8: its verified checksum


@dataclass(frozen=True)
class Found:
    """What Backstage's table holds for the names asked about."""

    files: dict[str, bytes]  # recorded name -> stored text as UTF-8, its checksum verified
    refused: tuple[str, ...]  # names whose stored checksum is not the sha256 of the stored text

    def shas(self) -> tuple[StoredFile, ...]:
        return tuple(StoredFile(n, hashlib.sha256(data).hexdigest()) for n, data in self.files.items())


def _verified(row: dict[str, Any]) -> bytes | None:
    """The row's text as UTF-8 when its checksum is that text's sha256 (checked here too, not only in the
    reader); None otherwise, or for a text that is no valid UTF-8 (a lone surrogate)."""
    try:
        data = str(row.get("content")).encode("utf-8")
    except UnicodeEncodeError:
        return None
    return data if hashlib.sha256(data).hexdigest() == row.get("checksum") else None


def _stored_name(name: str) -> str | None:
    """The migration_name Backstage stores for a recorded NAME: without ".js". A recorded name without ".js"
    gets no file: knex lists only files with an extension, and a CommonJS source must be a `.js` file."""
    return name[:-3] if name.endswith(".js") else None


def read(p: install.Plan, plugin: str, table: str, names: Iterable[str], timeout: float) -> Found:
    """The stored sources of NAMES (migrations of TABLE in PLUGIN's database) that Backstage's table holds.

    PostgreSQL and SQLite only (the reader looks for the table there); a database without the table gives
    nothing. A read that fails raises the reader's typed error (Unreachable, AuthFailed, ...)."""
    connection = p.databases[plugin]
    entry = {**reader_entry(connection, [table], timeout, plugin=plugin), "sourceContent": True}
    [result] = Node(p.project, timeout, connection.password).read([entry])
    if "error" in result:
        raise st.reader_error(result)
    rows = {str(r.get("name")): r for r in result.get("sources") or () if r.get("table") == table}
    files: dict[str, bytes] = {}
    refused: list[str] = []
    for name in names:
        row = rows.get(_stored_name(name) or "")
        if row is None:
            continue
        data = _verified(row)
        if data is None:
            refused.append(name)
        else:
            files[name] = data
    return Found(files, tuple(refused))


def for_run(
    p: install.Plan, plugin: str, table: str, planned: Iterable[StoredFile], timeout: float
) -> dict[str, bytes]:
    """The stored sources the plan showed, read again right before the run: each still verifies and is still
    the content (sha256) the plan showed, else StateChanged naming it, before anything is changed."""
    wanted = {f.name: f.sha256 for f in planned}
    found = read(p, plugin, table, wanted, timeout)
    for name, sha in wanted.items():
        data = found.files.get(name)
        if data is None or hashlib.sha256(data).hexdigest() != sha:
            raise errors.StateChanged(
                f"Backstage's stored source of {name} (table {st.SOURCES_TABLE.format(plugin)}) is gone or changed "
                f"since the plan was shown (planned sha256 {sha[:12]}); nothing was changed"
            )
    return {name: found.files[name] for name in wanted}
