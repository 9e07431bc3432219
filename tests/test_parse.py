"""The parsers and the failure classifier over outputs captured from real knex runs (fixtures/knex-output)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT

from knexwrap import errors
from knexwrap.knex.failures import classify
from knexwrap.knex.parse import Change, Listing, clean, parse_change, parse_current, parse_list, parse_unlock

CAPTURES = ROOT / "fixtures" / "knex-output"
VERSIONS = ["3.3.0", "2.5.1"]
INIT, LOCATIONS, REFRESH, SEARCH = (
    "20240101000000_init.js",
    "20240201000000_locations.js",
    "20240301000000_refresh_state.js",
    "20240401000000_search.js",
)


def captured(version: str, case: str) -> tuple[str, str, int]:
    folder = CAPTURES / version
    read = (folder / f"{case}.stdout").read_text, (folder / f"{case}.stderr").read_text
    return read[0](), read[1](), int((folder / f"{case}.exit").read_text())


def stdout(version: str, case: str) -> str:
    out, _, code = captured(version, case)
    assert code == 0
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("list_mixed", Listing((INIT, LOCATIONS), (REFRESH, SEARCH), ())),
        ("list_none_completed", Listing((), (INIT, LOCATIONS, REFRESH, SEARCH), ())),
        ("list_all_completed", Listing((INIT, LOCATIONS, REFRESH, SEARCH), (), ())),
        ("list_sqlite", Listing((INIT,), (LOCATIONS, REFRESH, SEARCH), ())),
        ("knexfile_list", Listing((INIT, LOCATIONS), (REFRESH, SEARCH), ())),
        (
            "knexfile_list_missing",
            Listing((INIT, LOCATIONS, REFRESH, SEARCH, "20240501000000_gone.js"), (), ()),
        ),
    ],
)
def test_list(version: str, case: str, expected: Listing) -> None:
    assert parse_list(stdout(version, case)) == expected


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("case", "expected"),
    [("current_version", "20240201000000"), ("current_none", None), ("knexfile_current", "20240201000000")],
)
def test_current(version: str, case: str, expected: str | None) -> None:
    assert parse_current(stdout(version, case)) == expected


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("latest_run", Change(2, (), ())),
        ("latest_run_verbose", Change(2, (REFRESH, SEARCH), ())),
        ("latest_up_to_date", Change(None, (), ())),
        ("up_name", Change(2, (SEARCH,), ())),
        ("up_next", Change(2, (REFRESH,), ())),
        ("up_up_to_date", Change(None, (), ())),
        ("rollback_verbose", Change(2, (SEARCH, REFRESH), ())),
        ("rollback_all_verbose", Change(2, (SEARCH, REFRESH, LOCATIONS, INIT), ())),
        ("rollback_at_base", Change(None, (), ())),
        ("down_name", Change(2, (LOCATIONS,), ())),
        ("down_last", Change(2, (SEARCH,), ())),
    ],
)
def test_change(version: str, case: str, expected: Change) -> None:
    assert parse_change(stdout(version, case)) == expected


@pytest.mark.parametrize("version", VERSIONS)
def test_unlock(version: str) -> None:
    parse_unlock(stdout(version, "unlock"))  # raises when the confirmation is absent


def test_output_that_is_not_a_list_is_refused_not_guessed() -> None:
    with pytest.raises(errors.KnexFailed) as failure:
        parse_list("Using environment: development\nFound 2 Completed Migration file/files.\na.js\n")
    assert failure.value.output.startswith("Using environment")
    with pytest.raises(errors.KnexFailed):
        parse_change("Using environment: development\nsomething else\n")


def test_colours_and_warnings_are_kept_apart_from_names() -> None:
    text = "\x1b[35mUsing environment:\x1b[39m dev\nwarning: fs option\n" + stdout("3.3.0", "list_mixed")
    assert clean("\x1b[31mred\x1b[39m") == "red"
    assert parse_list(text).notes == ("warning: fs option",)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("case", "kind", "message"),
    [
        ("err_down_not_run", errors.MigrationNotRun, 'migration "20240401000000_search.js" has not been run'),
        ("err_up_not_found", errors.MigrationNotFound, 'migration "20990101000000_no_such_file.js" is not'),
        (
            "err_corrupt_list",
            errors.CorruptDirectory,
            "the database is ahead of its migration files: 1 recorded",
        ),
        (
            "err_corrupt_latest",
            errors.CorruptDirectory,
            "the database is ahead of its migration files: 1 recorded migration(s) are missing from the folder: "
            "20240501000000_gone.js",
        ),
        ("err_locked_latest", errors.Locked, "the migration lock is held"),
        ("err_locked_sqlite", errors.Locked, "the migration lock is held"),
        (
            "err_migration_failed_throw",
            errors.MigrationFailed,
            'migration "20240102000000_boom.js" failed: boom: fixture failure',
        ),
        (
            "err_migration_failed_sql",
            errors.MigrationFailed,
            'migration "20240102000000_bad_sql.js" failed: SELECT * FROM no_such_table - relation',
        ),
        ("err_conn_refused", errors.Unreachable, "connection refused by 127.0.0.1:5433"),
        ("err_host_not_found", errors.HostNotFound, "database host no-such-host.invalid not found"),
        ("err_db_missing", errors.DatabaseMissing, 'database "knexwrap_capture_no_such_db" does not exist'),
        ("err_auth_failed", errors.AuthFailed, 'authentication failed for user "postgres"'),
        ("err_role_missing", errors.AuthFailed, 'the database user "knexwrap_capture_no_such_role" does not'),
        ("err_driver_missing", errors.DriverMissing, "the database driver 'mysql' is not installed"),
        ("err_dir_missing", errors.ConfigError, "migrations folder /tmp/knexwrap-capture/"),
        ("err_no_local_knex", errors.ToolMissing, "knex is not installed in /tmp/knexwrap-capture/"),
    ],
)
def test_failures(version: str, case: str, kind: type[errors.KnexwrapError], message: str) -> None:
    out, err, code = captured(version, case)
    assert code == 1
    error = classify(out, err, code)
    assert type(error) is kind
    assert error.message.startswith(message)
    assert "\n" not in error.message


def test_corrupt_names_every_missing_file() -> None:
    out, err, code = captured("3.3.0", "err_corrupt_list")
    error = classify(out, err, code)
    assert isinstance(error, errors.CorruptDirectory)
    assert error.missing == ("20240501000000_gone.js",)


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_failure_keeps_what_knex_printed(version: str) -> None:
    out, err, code = captured(version, "err_bad_url")
    error = classify(out, err, code)
    assert type(error) is errors.KnexFailed
    assert error.message.startswith("knex exited with code 1: ")
    assert error.message.endswith("no PostgreSQL user name specified in startup packet")
    assert error.output.startswith(err.strip().splitlines()[0])


def test_every_capture_is_covered() -> None:
    """A new capture without a test here would be a parser case nobody checks."""
    names = {p.stem for p in (CAPTURES / "3.3.0").glob("*.exit")}
    assert names == {p.stem for p in (CAPTURES / "2.5.1").glob("*.exit")}
    source = Path(__file__).read_text()
    assert sorted(n for n in names if f'"{n}"' not in source) == []
