"""up --to and down --to on real PostgreSQL, SQLite and MariaDB with migration files of the test's own; the
out-of-order warning of `up NAME`; "no such migration" with the closest names.

Every migration writes to a `log` table the test made (outside the migrations) as its up and its down run, so
the order knex ran them in is read from the database, not from knexwrap's report.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from helpers import Result, knexwrap, write_migration
from races import paused, sqlite_fingerprint
from servers import MariaServer, PgServer, mysql_rows, pg_env, psql_rows, unique_name

WORDS = {
    f"2024010{i}000000_{word}.js": word for i, word in enumerate(("accounts", "billing", "credits", "discounts"), 1)
}
A, B, C, D = WORDS


def files(tmp_path: Path, loose: tuple[str, ...] = ()) -> Path:
    """Four migrations: each creates its table and logs its up; its down drops the table and logs the down.
    LOOSE: the files that run without a transaction."""
    folder = tmp_path / "migrations"
    for name, word in WORDS.items():
        log = "await knex('log').insert({{ entry: '{} {}' }});"
        write_migration(
            folder,
            name,
            f"await knex.schema.createTable('t_{word}', t => {{ t.increments('id'); }}); {log.format('up', word)}",
            f"await knex.schema.dropTable('t_{word}'); {log.format('down', word)}",
        )
        if name in loose:
            (folder / name).write_text((folder / name).read_text() + "exports.config = { transaction: false };\n")
    return folder


def sqlite_db(tmp_path: Path) -> tuple[Path, list[str]]:
    data = tmp_path / "db"
    data.mkdir()
    with sqlite3.connect(data / "x.sqlite") as db:
        db.execute("create table log (id integer primary key autoincrement, entry text)")
    return data / "x.sqlite", ["--client", "better-sqlite3", "--sqlite-dir", str(data), "--database", "x"]


def lite(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute(sql))


def lite_rows(path: Path) -> list[tuple[object, ...]]:
    return lite(path, "select name, batch from knex_migrations order by id")


def lite_tables(path: Path) -> list[str]:
    tables = "select name from sqlite_master where name like 't\\_%' escape '\\' order by 1"
    return [str(r[0]) for r in lite(path, tables)]


def lite_log(path: Path) -> list[str]:
    return [str(r[0]) for r in lite(path, "select entry from log order by id")]


def ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def test_up_to_and_down_to_on_postgresql_row_by_row(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    """Out-of-order rows in the table (C applied before B): --to follows knex's order (file names), not id order."""
    env, folder = pg_env(pg), files(tmp_path)
    where = [str(folder), "--database", pg_database]
    psql_rows(pg, pg_database, "create table log (id serial primary key, entry text)")

    def rows() -> list[tuple[str, ...]]:
        return psql_rows(pg, pg_database, "select name, batch from knex_migrations order by id")

    def tables() -> list[str]:
        listed = "select tablename from pg_tables where tablename like 't\\_%' order by 1"
        return [r[0] for r in psql_rows(pg, pg_database, listed)]

    ok(knexwrap("up", *where, A, "--yes", env=env))
    ok(knexwrap("up", *where, C, "--yes", env=env))
    assert rows() == [(A, "1"), (C, "2")]

    up = ok(knexwrap("up", *where, "--to", D, "--yes", "--json", env=env)).json()
    assert (up["command"], up["action"], up["planned"], up["done"], up["batch"]) == ("up", "apply", [B, D], [B, D], 3)
    assert rows() == [(A, "1"), (C, "2"), (B, "3"), (D, "3")]  # one batch, like latest
    assert tables() == ["t_accounts", "t_billing", "t_credits", "t_discounts"]

    down = ok(knexwrap("down", *where, "--to", A, "--yes", "--json", env=env)).json()
    assert (down["action"], down["planned"], down["done"]) == ("revert", [D, C, B], [D, C, B])
    assert len(down["backups"]) == 1 and Path(down["backups"][0]).is_file()
    assert rows() == [(A, "1")]  # NAME itself stays applied
    assert tables() == ["t_accounts"]
    log = [r[0] for r in psql_rows(pg, pg_database, "select entry from log order by id")]
    ups = ["up accounts", "up credits", "up billing", "up discounts"]
    assert log == [*ups, "down discounts", "down credits", "down billing"]


def test_up_to_and_down_to_on_sqlite_with_dry_run_exact_output_and_journal(tmp_path: Path) -> None:
    folder = files(tmp_path, loose=(B,))
    database, opts = sqlite_db(tmp_path)
    where = [str(folder), *opts, "--state-dir", str(tmp_path / "state")]
    up = ok(knexwrap("up", *where, "--to", C.removesuffix(".js"), "--yes"))
    assert up.out == (
        f"(no plugin) in {database}, table knex_migrations\n"
        "applied 3 migrations:\n"
        "migration                   batch\n"
        "--------------------------  -----\n"
        f"{A}      1\n"
        f"{B}       1\n"
        f"{C}       1\n"
    )  # its warning was shown with the plan, before it ran (below), and is not repeated after
    assert up.err.splitlines() == [
        f"About to apply 3 migrations of (no plugin) in {database}, table knex_migrations:",
        *(f"  {n}" for n in (A, B, C)),
        f"warning: {B} runs without a transaction: a failure can leave it half done",
    ]
    assert lite_rows(database) == [(A, 1), (B, 1), (C, 1)]
    assert lite_tables(database) == ["t_accounts", "t_billing", "t_credits"]

    before = sqlite_fingerprint(database)
    dry = ok(knexwrap("down", *where, "--to", A, "--dry-run", "--json")).json()
    assert (dry["planned"], dry["done"], dry["dry_run"], dry["backups"]) == ([C, B], [], True, [])
    sql = ok(knexwrap("down", *where, "--to", A, "--sql", "--dry-run", "--json")).json()
    [preview] = sql["sql"]
    assert [(m["name"], m["direction"]) for m in preview["migrations"]] == [(C, "down"), (B, "down")]
    assert sqlite_fingerprint(database) == before

    down = ok(knexwrap("down", *where, "--to", A, "--yes", "--no-backup"))
    assert down.out == (
        f"(no plugin) in {database}, table knex_migrations\n"
        "reverted 2 migrations:\n"
        "migration\n"
        "-------------------------\n"
        f"{C}\n{B}\n"
    )
    assert "backup" not in down.out + down.err
    assert lite_rows(database) == [(A, 1)]
    assert lite_tables(database) == ["t_accounts"]
    assert lite_log(database) == ["up accounts", "up billing", "up credits", "down credits", "down billing"]
    journal = [json.loads(line) for line in (tmp_path / "state" / "journal.jsonl").read_text().splitlines()]
    assert [(r["command"], r["arguments"]["to"], r["arguments"]["name"], r["outcome"]) for r in journal] == [
        ("up", C.removesuffix(".js"), None, "done"),
        ("down", A, None, "done"),
    ]
    assert [(r["name"], r["status"]) for r in journal[0]["ran"]] == [(A, "applied"), (B, "applied"), (C, "applied")]
    assert [(r["name"], r["status"]) for r in journal[1]["ran"]] == [(C, "reverted"), (B, "reverted")]
    assert journal[1]["plan"]["listed"] == [C, B]

    again = ok(knexwrap("down", *where, "--to", A, "--yes"))
    assert again.out == f"(no plugin) in {database}, table knex_migrations\nnothing to revert\n"
    assert lite_rows(database) == [(A, 1)]


def test_up_to_and_down_to_on_mariadb(mariadb: MariaServer, tmp_path: Path) -> None:
    name = unique_name("kw_to")
    mysql_rows(mariadb, None, f"create database `{name}`")
    try:
        mysql_rows(mariadb, name, "create table log (id int auto_increment primary key, entry text)")
        server = ["--client", "mysql2", "--host", mariadb.host, "--port", str(mariadb.port), "--user", mariadb.user]
        where = [str(files(tmp_path)), *server, "--database", name]
        ok(knexwrap("up", *where, "--to", C, "--yes", "--json"))
        rows = "select name, batch from knex_migrations order by id"
        assert mysql_rows(mariadb, name, rows) == [(A, "1"), (B, "1"), (C, "1")]
        ok(knexwrap("up", *where, "--yes"))  # D, batch 2
        down = ok(knexwrap("down", *where, "--to", B, "--yes", "--no-backup", "--json")).json()
        assert down["done"] == [D, C]
        assert mysql_rows(mariadb, name, rows) == [(A, "1"), (B, "1")]
        assert mysql_rows(mariadb, name, "show tables like 't\\_%'") == [("t_accounts",), ("t_billing",)]
        log = [r[0] for r in mysql_rows(mariadb, name, "select entry from log order by id")]
        assert log[-2:] == ["down discounts", "down credits"]
    finally:
        mysql_rows(mariadb, None, f"drop database `{name}`")


def test_up_name_with_earlier_files_pending_warns_and_asks(tmp_path: Path) -> None:
    folder = files(tmp_path)
    database, opts = sqlite_db(tmp_path)
    where = [str(folder), *opts]
    warning = (
        f"warning: out of order: {A}, {B} are still pending and come before {C} in knex's order "
        f"(up --to {C} applies them first)"
    )
    declined = knexwrap("up", *where, C, input="n\n")
    assert declined.code == 14
    assert declined.err.splitlines() == [
        f"About to apply 1 migration of (no plugin) in {database}, table knex_migrations:",
        f"  {C}",
        warning,
        "Go ahead? [y/N]: n",
        "knexwrap: error: cancelled: nothing was changed",
    ]
    assert lite(database, "select count(*) from sqlite_master where name like 'knex%'") == [(0,)]
    shown = ok(knexwrap("up", *where, C, "--dry-run", "--json")).json()
    assert shown["warnings"] == [warning.removeprefix("warning: ")]
    ok(knexwrap("up", *where, A, "--yes"))
    one = ok(knexwrap("up", *where, C, "--yes"))
    assert f"warning: out of order: {B} is still pending and comes before {C} in knex's order" in one.err
    assert "warning" not in one.out  # said before it ran, with the plan: not again after
    assert lite_rows(database) == [(A, 1), (C, 2)]
    behind = knexwrap("up", *where, "--to", C, "--yes")
    assert (behind.code, behind.err) == (
        11,
        f'knexwrap: error: migration "{C}" is already applied: nothing to run (still pending before it: {B})\n',
    )
    no_warning = ok(knexwrap("up", *where, "--to", D, "--yes"))
    assert "out of order" not in no_warning.out + no_warning.err
    assert lite_rows(database) == [(A, 1), (C, 2), (B, 3), (D, 3)]


def test_no_such_migration_names_the_closest(tmp_path: Path) -> None:
    folder = files(tmp_path)
    _, opts = sqlite_db(tmp_path)
    where = [str(folder), *opts]
    ok(knexwrap("up", *where, A, "--yes"))
    typo = knexwrap("up", *where, "--to", "20240102000000_biling", "--yes")
    assert (typo.code, typo.err) == (
        11,
        f"knexwrap: error: no such migration 20240102000000_biling in {folder}; closest: {B}\n",
    )
    gone = knexwrap("down", *where, "20240104000000_discount.js", "--yes", "--json")
    assert gone.code == 11
    assert gone.json()["error"] == {
        "code": "migration_not_found",
        "message": f"no such migration 20240104000000_discount.js in {folder}; closest: {D}, {A}",
        "exit_code": 11,
        "closest": [D, A],  # the words weigh, not the shared digits: "count" makes accounts close, credits not
    }
    far = knexwrap("down", *where, "--to", "nothing-like-it", "--yes")
    assert (far.code, far.err) == (
        11,
        f"knexwrap: error: no such migration nothing-like-it in {folder}; no migration name is close to it\n",
    )
    not_run = knexwrap("down", *where, "--to", B, "--yes")
    assert (not_run.code, not_run.err) == (
        11,
        f'knexwrap: error: migration "{B}" has not been run: nothing to revert\n',
    )
    done = knexwrap("up", *where, "--to", A, "--yes")
    assert (done.code, done.err) == (11, f'knexwrap: error: migration "{A}" is already applied: nothing to run\n')


def test_name_and_to_together_is_a_usage_error(tmp_path: Path) -> None:
    for verb in ("up", "down"):
        both = knexwrap(verb, "catalog", A, "--to", B, "--client", "better-sqlite3", "--sqlite-dir", str(tmp_path))
        assert (both.code, both.err, both.out) == (2, "knexwrap: error: give NAME or --to NAME, not both\n", "")


def test_up_to_refuses_when_a_later_file_was_applied_since_the_plan(tmp_path: Path) -> None:
    """knex is shown only the planned files; one hidden from it that another run applied in between is caught
    (the table is not the plan's): nothing runs, exit 19."""
    folder = files(tmp_path)
    database, opts = sqlite_db(tmp_path)
    where = [str(folder), *opts]
    ok(knexwrap("up", *where, A, "--yes"))
    first = paused(["up", *where, "--to", B, "--yes"], tmp_path / "a", {}, stop_at=("confirmed",))
    first.wait_at("confirmed")
    ok(knexwrap("up", *where, D, "--yes"))
    before = sqlite_fingerprint(database)
    first.release("confirmed")
    code, _, err = first.finish()
    assert code == 19, err
    assert err.splitlines()[-1] == (
        f"knexwrap: error: the migrations table knex_migrations changed since the plan was shown (applied since: {D}); "
        "knexwrap ran nothing it had not shown: applied before it stopped: none; look again (knexwrap status) and "
        "run the command again"
    )
    assert sqlite_fingerprint(database) == before
    assert lite_rows(database) == [(A, 1), (D, 2)]


def test_down_to_refuses_when_a_planned_file_was_reverted_since_the_plan(tmp_path: Path) -> None:
    """Without the check knex would revert the listed files still applied (D, C): the plan was D, C, B."""
    folder = files(tmp_path)
    database, opts = sqlite_db(tmp_path)
    where = [str(folder), *opts]
    ok(knexwrap("latest", *where, "--yes"))
    first = paused(["down", *where, "--to", A, "--yes", "--no-backup"], tmp_path / "a", {}, stop_at=("confirmed",))
    first.wait_at("confirmed")
    ok(knexwrap("down", *where, B, "--yes", "--no-backup"))
    before = sqlite_fingerprint(database)
    first.release("confirmed")
    code, _, err = first.finish()
    assert code == 19, err
    assert f"changed since the plan was shown (reverted since: {B}); knexwrap ran nothing it had not shown" in err
    assert sqlite_fingerprint(database) == before
    assert lite_rows(database) == [(A, 1), (C, 1), (D, 1)]


def test_closest_names_weigh_the_words_not_the_timestamps() -> None:
    """What an operator types by mistake: another case, the words alone, a letter missing (review findings)."""
    from knexwrap.upgrade.names import closest

    found = (
        "20240101000000_init.js",
        "20240201000000_locations.js",
        "20240301000000_refresh_state.js",
        "20240401000000_search.js",
    )
    assert closest("20240201000000_LOCATIONS", found) == ["20240201000000_locations.js"]
    assert closest("locations", found) == ["20240201000000_locations.js"]
    assert closest("20240301000000_refresh", found) == ["20240301000000_refresh_state.js"]
    assert closest("20240401000000_serch", found) == ["20240401000000_search.js"]
    assert closest("20990101000000_nope", found) == []


def test_down_to_a_pending_name_and_up_of_an_applied_one_say_what_they_are(tmp_path: Path) -> None:
    """Review findings: `down --to` a pending NAME is no place to stop (not "nothing to revert"), and an
    applied NAME for `up` is `already_applied` in JSON, not a typo's `migration_not_found`."""
    folder = files(tmp_path)
    database, opts = sqlite_db(tmp_path)
    where = [str(folder), *opts]
    ok(knexwrap("up", *where, "--to", B, "--yes"))
    ok(knexwrap("up", *where, D, "--yes"))  # C stays pending, D after it is applied
    pending = knexwrap("down", *where, "--to", C, "--yes")
    assert (pending.code, pending.err) == (
        11,
        f'knexwrap: error: migration "{C}" is pending, not applied: down --to needs an applied migration to stop at '
        f"(applied after it: {D})\n",
    )
    applied = knexwrap("up", *where, A, "--yes", "--json")
    assert (applied.code, applied.json()["error"]["code"]) == (11, "already_applied")
    assert lite_rows(database) == [(A, 1), (B, 1), (D, 2)]
