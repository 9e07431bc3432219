"""The output contract: versioned JSON documents that keep their schemas, exit codes a CI job can trust,
times in UTC whatever the time zone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from contract import SCHEMAS, validate
from helpers import ROOT, knexwrap, write_migration
from jsonschema import Draft202012Validator
from servers import MariaServer, mysql_rows, unique_name

from knexwrap import errors


def sqlite(folder: Path) -> tuple[str, ...]:
    return ("--client", "better-sqlite3", "--sqlite-dir", str(folder))


# ------------------------------------------------------------------------------ exit codes


def test_readme_exit_code_table_is_the_codes_one_list() -> None:
    readme = (ROOT / "README.md").read_text()
    assert errors.exit_code_table() + "\n" in readme, "README's exit codes differ from errors.EXIT_CODES: make readme"


def test_every_error_has_a_documented_exit_code() -> None:
    documented = {code for code, _ in errors.EXIT_CODES}
    classes = [errors.KnexwrapError]
    while classes:
        one = classes.pop()
        assert one.exit_code in documented, one.__name__
        classes += one.__subclasses__()


def test_bare_knexwrap_prints_the_help_and_succeeds() -> None:
    result = knexwrap()
    assert result.code == 0
    assert result.out.startswith("Usage: knexwrap [OPTIONS] COMMAND [ARGS]...")
    assert "  status " in result.out and result.err == ""


def test_an_unknown_table_format_is_a_usage_error(tmp_path: Path) -> None:
    result = knexwrap("status", "catalog", *sqlite(tmp_path), "--fmt", "nonsense")
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("knexwrap: error: Invalid value for '--fmt': 'nonsense' is not a table format; ")
    assert len(result.err.splitlines()) == 1
    assert knexwrap("status", "catalog", *sqlite(tmp_path), "--fmt", "github").code == 0


def test_an_absent_database_is_a_state_in_both_forms(tmp_path: Path) -> None:
    """Never exit 7 from status: the plugin form says "absent" like the whole-install form, --check gives 10."""
    alone = knexwrap("status", "catalog", *sqlite(tmp_path), "--json")
    assert (alone.code, alone.json()["state"], alone.json()["counts"]) == (
        0,
        "absent",
        {"applied": 0, "pending": 4, "missing": 0},
    )
    assert knexwrap("status", "catalog", *sqlite(tmp_path), "--check").code == 10
    whole = knexwrap("status", *sqlite(tmp_path), "--json")
    assert {d["state"] for d in whole.json()["databases"]} == {"absent"}
    assert knexwrap("status", *sqlite(tmp_path), "--check").code == 10
    assert list(tmp_path.iterdir()) == []  # and nothing was created


# ------------------------------------------------------------------------------ the JSON contract


def test_every_shipped_schema_is_a_draft_2020_12_schema() -> None:
    names = sorted(p.stem for p in SCHEMAS.glob("*.json"))
    assert names == [
        "archive",
        "change",
        "common",
        "config",
        "current",
        "doctor",
        "downgrade",
        "error",
        "mark",
        "plan",
        "plugins",
        "restore",
        "snapshot",
        "sql",
        "status",
    ]
    for path in SCHEMAS.glob("*.json"):
        Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_the_contract_catches_drift(tmp_path: Path) -> None:
    """What validation refuses: a key renamed, no version, a state that is no identifier, prose for files."""
    knexwrap("up", "catalog", *sqlite(tmp_path), "--yes")
    good = knexwrap("status", "catalog", *sqlite(tmp_path), "--json").json()
    validate(good)
    renamed = {("table" if k == "migrations_table" else k): v for k, v in good.items()}
    spaced = {**good, "state": "in sync"}
    unversioned = {k: v for k, v in good.items() if k != "schema_version"}
    local_time = json.loads(json.dumps(good).replace("Z", "+09:00"))
    for bad in (renamed, spaced, unversioned, local_time):
        with pytest.raises(AssertionError):
            validate(bad)


def test_an_error_document_names_the_command_and_where(tmp_path: Path) -> None:
    result = knexwrap("down", "catalog", "20240101000000_init", *sqlite(tmp_path), "--yes", "--json")
    assert result.code == 11
    doc = result.json()
    assert {k: doc[k] for k in ("schema_version", "command", "plugin", "server", "database", "migrations_table")} == {
        "schema_version": 1,
        "command": "down",
        "plugin": "catalog",
        "server": None,
        "database": str(tmp_path / "catalog.sqlite"),
        "migrations_table": "knex_migrations",
    }
    assert doc["error"]["code"] == "migration_not_run"
    unknown = knexwrap("status", "no-such-plugin", *sqlite(tmp_path), "--json").json()
    assert (unknown["command"], unknown["plugin"], unknown["database"]) == ("status", "no-such-plugin", None)


def test_a_failure_names_what_was_applied_before_it_as_a_list(tmp_path: Path) -> None:
    folder, data = tmp_path / "migrations", tmp_path / "db"
    data.mkdir()
    loose = "exports.config = { transaction: false };\n"
    write_migration(folder, "20240101000000_ok.js", "await knex.schema.createTable('t', t => t.increments());")
    write_migration(folder, "20240102000000_bad.js", "throw new Error('boom: fixture failure');")
    for path in folder.iterdir():
        path.write_text(path.read_text() + loose)
    (data / "x.sqlite").write_bytes(b"")
    result = knexwrap("latest", str(folder), *sqlite(data), "--database", "x", "--yes", "--json")
    assert result.code == 12
    error = result.json()["error"]
    assert (error["code"], error["applied"], error["lock_held"]) == (
        "migration_failed",
        ["20240101000000_ok.js"],
        False,
    )


def test_plan_to_is_structured(tmp_path: Path) -> None:
    """plan.to was prose ("the snapshot PATH of TIME"); now the kind, the path and the time."""
    dbs = tmp_path / "db"
    dbs.mkdir()
    opts = sqlite(dbs)
    assert knexwrap("up", "catalog", *opts, "--yes").code == 0
    snap = tmp_path / "snap.json"
    assert knexwrap("snapshot", *opts, "--out", str(snap)).code == 0
    assert knexwrap("latest", "catalog", *opts, "--yes").code == 0
    plan = knexwrap("plan", "--to", str(snap), *opts, "--json").json()
    assert plan["to"]["kind"] == "snapshot" and plan["to"]["path"] == str(snap)
    assert plan["to"]["taken_at"].endswith("+00:00")
    [catalog] = plan["sets"]
    assert (catalog["server"], catalog["database"], catalog["revert"], len(catalog["recorded"])) == (
        None,
        str(dbs / "catalog.sqlite"),
        [],  # the snapshot's install has every file: nothing to revert
        4,
    )


# ------------------------------------------------------------------------------ UTC times


@pytest.fixture
def maria_db(mariadb: MariaServer) -> Iterator[str]:
    name = unique_name("kw_tz")
    mysql_rows(mariadb, None, f"create database `{name}`")
    yield name
    mysql_rows(mariadb, None, f"drop database if exists `{name}`")


def test_mysql_times_are_utc_whatever_the_operators_time_zone(
    mariadb: MariaServer, maria_db: str, tmp_path: Path
) -> None:
    """migration_time read 05:55Z under UTC and 20:55Z the day before under Asia/Tokyo; knexwrap's own
    writes under Asia/Tokyo stored the instant nine hours off."""
    server = ("--client", "mysql2", "--host", mariadb.host, "--port", str(mariadb.port), "--user", mariadb.user)
    opts = (*server, "--database", maria_db)
    assert knexwrap("up", "catalog", *opts, "--yes", env={"TZ": "UTC"}).code == 0
    assert knexwrap("up", "catalog", *opts, "--yes", env={"TZ": "Asia/Tokyo"}).code == 0
    truth = mysql_rows(
        mariadb,
        maria_db,
        "select name, date_format(convert_tz(migration_time, @@session.time_zone, '+00:00'), "
        "'%Y-%m-%dT%H:%i:%s.000Z') from knex_migrations order by id",
    )
    assert len(truth) == 2
    for zone in ("UTC", "Asia/Tokyo", "America/New_York"):
        doc = knexwrap("status", "catalog", *opts, "--json", env={"TZ": zone}).json()
        seen = [(m["name"], m["migration_time"]) for m in doc["migrations"] if m["state"] == "applied"]
        assert seen == [tuple(row) for row in truth], zone
        assert doc["last_run"] == truth[-1][1]
    # Written within seconds of each other: a nine-hour shift would show here.
    first, second = (datetime.fromisoformat(t.replace("Z", "+00:00")) for _, t in truth)
    assert abs((second - first).total_seconds()) < 120


def test_snapshot_times_are_utc_under_another_time_zone(mariadb: MariaServer, tmp_path: Path) -> None:
    prefix = unique_name("kw_tz") + "_"
    opts = ("--client", "mysql2", "--host", mariadb.host, "--port", str(mariadb.port), "--user", mariadb.user)
    mysql_rows(mariadb, None, f"create database `{prefix}catalog`")
    try:
        assert knexwrap("up", "catalog", *opts, "--prefix", prefix, "--yes", env={"TZ": "Asia/Tokyo"}).code == 0
        ((truth,),) = mysql_rows(
            mariadb,
            f"{prefix}catalog",
            "select date_format(convert_tz(migration_time, @@session.time_zone, '+00:00'), "
            "'%Y-%m-%dT%H:%i:%s.000Z') from knex_migrations",
        )
        out = tmp_path / "snap.json"
        taken = knexwrap("snapshot", *opts, "--prefix", prefix, "--out", str(out), env={"TZ": "America/New_York"})
        assert taken.code == 0, taken.err
        [catalog] = [d for d in json.loads(out.read_text())["databases"] if d["plugin"] == "catalog"]
        [applied] = [a for s in catalog["sets"] for a in s["applied"]]
        assert applied["migration_time"] == truth
    finally:
        mysql_rows(mariadb, None, f"drop database if exists `{prefix}catalog`")
