"""Run knexwrap in-process the way a user runs it, and look inside the databases it changed."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from contract import validate

from knexwrap.cli.main import main
from knexwrap.install import sets

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "fixtures" / "project"
# The fixture catalog plugin's migrations, in knex's order.
CATALOG = [
    "20240101000000_init.js",
    "20240201000000_locations.js",
    "20240301000000_refresh_state.js",
    "20240401000000_search.js",
]
PLUGINS = PROJECT / "plugins"
# Variables that would change which database knexwrap picks; every test states its own.
CLEAN_ENV: dict[str, str | None] = {
    k: None for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "KNEXWRAP_CLIENT")
}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def fresh() -> None:
    """Forget the install read by an earlier in-process run, as a new process would (tests swap packages)."""
    sets.forget()


def knexwrap(
    *args: str, cwd: Path = PROJECT, env: Mapping[str, str | None] | None = None, input: str | None = None
) -> Result:
    fresh()
    runner = CliRunner()
    with runner.isolation(input=input, env={**CLEAN_ENV, **(env or {})}) as (out, err, _):
        previous = os.getcwd()
        os.chdir(cwd)
        try:
            code = main(list(args))
        finally:
            os.chdir(previous)
    result = Result(code, out.getvalue().decode(), err.getvalue().decode())
    if "--json" in args and result.out.strip():
        # Every document the suite produces must keep the contract its schema states.
        validate(result.json())
    return result


def sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute(sql))


def sqlite_tables(path: Path) -> set[str]:
    return {r[0] for r in sqlite_rows(path, "select name from sqlite_master where type = 'table'")}


def write_migration(folder: Path, name: str, up: str, down: str = "") -> None:
    """A migration file of the test's own, for failures no fixture plugin should carry."""
    folder.mkdir(parents=True, exist_ok=True)
    body = f"exports.up = async function up(knex) {{ {up} }};\nexports.down = async function down(knex) {{ {down} }};\n"
    (folder / name).write_text(body)


def where(doc: Mapping[str, Any]) -> str:
    """A JSON document's server, database and schema as one connection text (what knexwrap's text shows)."""
    text = f"{doc['server']}/{doc['database']}" if doc.get("server") else str(doc["database"])
    return f"{text} schema {doc['schema']}" if doc.get("schema") else text


def verified(doc: Mapping[str, Any]) -> list[str]:
    """downgrade's "verified" entries as one line each: "<where> <table>: N applied, M pending"."""
    return [
        f"{where(v)} {v['migrations_table']}: {len(v['applied'])} applied, {len(v['pending'])} pending"
        for v in doc["verified"]
    ]
