"""Backstage's own configuration, end to end: a project holding only app-config files and a .env file.

`knexwrap status catalog` with no connection flags must reach the database the backend would use, on every
client: PostgreSQL (database and schema mode), MariaDB (mysql2) and SQLite files. The real Knex CLI does
the work; every step is checked in the database's own knex_migrations rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CATALOG, PLUGINS, PROJECT, knexwrap, sqlite_rows
from helpers import where as located
from servers import MariaServer, PgServer, create_database, drop_database, mysql_rows, psql_rows, unique_name

APP = ["20211229105307_init.js", "20240113144027_assets-namespace.js"]
PACKAGE = "@knexwrap-fixture/plugin-catalog-backend"
LINKED = ("knex", "pg", "mysql2", "better-sqlite3")
# Trust auth never asks for it, so any value works; it must never be shown.
PASSWORD = "Sup3r-S3cret-pw"

Rows = list[tuple[str, int]]


def make_project(root: Path, files: dict[str, str]) -> Path:
    """A Backstage-like project: knex and the drivers linked from the fixture project, the catalog and
    app plugins copied in as installed packages, and `files` (app-config.yaml, .env, ...) at the top."""
    modules = root / "node_modules"
    (modules / ".bin").mkdir(parents=True)
    (modules / ".bin" / "knex").symlink_to(PROJECT / "node_modules" / "knex" / "bin" / "cli.js")
    for module in LINKED:
        (modules / module).symlink_to(PROJECT / "node_modules" / module)
    for plugin in ("catalog", "app"):
        shutil.copytree(PLUGINS / plugin, modules / "@knexwrap-fixture" / f"plugin-{plugin}-backend")
    for name, text in files.items():
        (root / name).write_text(text)
    return root.resolve()


def pg_env_file(pg: PgServer, password: str = "") -> str:
    return f"POSTGRES_HOST={pg.host}\nPOSTGRES_PORT={pg.port}\nPOSTGRES_USER={pg.user}\nPOSTGRES_PASSWORD={password}\n"


# backend.database as packages/create-app/templates/default-app/app-config.production.yaml writes it.
PG_TEMPLATE = """\
backend:
  database:
    client: pg
    prefix: {prefix}
    connection:
      host: ${{POSTGRES_HOST}}
      port: ${{POSTGRES_PORT}}
      user: ${{POSTGRES_USER}}
      password: ${{POSTGRES_PASSWORD}}
"""


@pytest.fixture
def prefix(pg: PgServer) -> Iterator[str]:
    """A plugin database prefix of this test alone; every PostgreSQL database carrying it is dropped after."""
    value = unique_name("kw_ac") + "_"
    yield value
    for (name,) in psql_rows(pg, "postgres", f"select datname from pg_database where starts_with(datname, '{value}')"):
        drop_database(pg, name)


def where(target: str, plugin: str = "catalog", package: str = PACKAGE) -> str:
    return f"{plugin} ({package}) in {target}, table knex_migrations"


def listing(header: str, states: list[tuple[str, str]], summary: str) -> str:
    width = max(len("migration"), *(len(name) for name, _ in states))
    lines = [header, "", f"{'migration':<{width}}  state", f"{'-' * width}  -------"]
    lines += [f"{name:<{width}}  {state}" for name, state in states]
    return "\n".join([*lines, "", summary]) + "\n"


def simple_table(header: list[str], *rows: list[str]) -> str:
    """tabulate's "simple" format as knexwrap prints it: each column as wide as its widest cell or header, two
    spaces apart (knexwrap sets tabulate's MIN_PADDING to 0)."""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines) + "\n"


def all_pending(target: str) -> str:
    return listing(
        where(target), [(n, "pending") for n in CATALOG], "0 applied, 4 pending, 0 missing; current version none"
    )


def plan_of(err: str) -> str:
    """The plan as shown, without the guards' warnings (which depend on the client; tests/test_guards.py has them)."""
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith("warning: "))


def walk(project: Path, target: str, rows: Callable[[], Rows], when_applied: Callable[[], None] | None = None) -> None:
    """latest -> status --json -> down <newest> -> rollback -> status, the database's rows checked each step."""
    latest = knexwrap("latest", "catalog", "--yes", cwd=project)
    assert latest.code == 0, latest.err
    shown = f"About to apply 4 migrations of {where(target)}:\n" + "".join(f"  {n}\n" for n in CATALOG)
    assert plan_of(latest.err) == shown
    assert rows() == [(n, 1) for n in CATALOG]

    status = knexwrap("status", "catalog", "--json", cwd=project)
    assert status.code == 0, status.err
    doc = status.json()
    assert (doc["command"], doc["plugin"], doc["package"], located(doc)) == ("status", "catalog", PACKAGE, target)
    assert (doc["state"], doc["table_exists"], doc["current_version"], doc["locked"]) == (
        "in_sync",
        True,
        "20240401000000",
        False,
    )
    assert [(m["name"], m["state"], m["batch"]) for m in doc["migrations"]] == [(n, "applied", 1) for n in CATALOG]
    assert doc["counts"] == {"applied": 4, "pending": 0, "missing": 0}
    if when_applied is not None:
        when_applied()

    down = knexwrap("down", "catalog", "20240401000000_search", "--yes", cwd=project)
    assert down.code == 0, down.err
    # A revert backs the database up first (tests/test_backup.py): its size line, then where the backup went.
    assert plan_of(down.err).startswith(
        f"About to revert 1 migration of {where(target)}:\n  20240401000000_search.js\nbackup: "
    )
    assert rows() == [(n, 1) for n in CATALOG[:3]]

    rollback = knexwrap("rollback", "catalog", "--yes", cwd=project)
    assert rollback.code == 0, rollback.err
    assert plan_of(rollback.err).startswith(
        f"About to revert 3 migrations of {where(target)}:\n" + "".join(f"  {n}\n" for n in reversed(CATALOG[:3]))
    )
    assert f"knexwrap: backup of {target} written to " in rollback.err
    assert rows() == []

    final = knexwrap("status", "catalog", cwd=project)
    assert (final.code, final.err) == (0, "")
    assert final.out == all_pending(target)


def pg_rows(pg: PgServer, database: str, table: str = "knex_migrations") -> Callable[[], Rows]:
    def read() -> Rows:
        return [(n, int(b)) for n, b in psql_rows(pg, database, f"select name, batch from {table} order by id")]

    return read


def databases(doc: dict[str, Any]) -> dict[str, tuple[str, list[tuple[str, int, int, str]]]]:
    """A whole-install report as {database: (state, [(set table, applied, pending, set state)])}."""
    return {
        located(d): (
            d["state"],
            [(s["migrations_table"], s["counts"]["applied"], s["counts"]["pending"], s["state"]) for s in d["sets"]],
        )
        for d in doc["databases"]
    }


# ------------------------------------------------------------------------------------- PostgreSQL


def test_pg_database_mode_from_app_config_and_env_file(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    """The create-app template with its values in .env (empty password: trust auth) and no flags at all."""
    project = make_project(
        tmp_path / "backstage", {"app-config.yaml": PG_TEMPLATE.format(prefix=prefix), ".env": pg_env_file(pg)}
    )
    database = f"{prefix}catalog"
    create_database(pg, database)
    target = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{database}"

    first = knexwrap("status", "catalog", cwd=project)
    assert (first.code, first.err) == (0, "")
    assert first.out == all_pending(target)
    # Read-only: status created no table in the plugin database.
    assert psql_rows(pg, database, "select tablename from pg_tables where schemaname = 'public'") == []

    def whole_install() -> None:
        create_database(pg, f"{prefix}retired")  # no installed plugin claims it: an orphan of this prefix
        report = knexwrap("status", "--json", cwd=project)
        assert report.code == 0, report.err
        server = f"postgresql://{pg.user}@{pg.host}:{pg.port}"
        assert databases(report.json()) == {
            f"{server}/{prefix}app": ("absent", []),
            target: ("in_sync", [("knex_migrations", 4, 0, "in_sync")]),
            f"{server}/{prefix}retired": ("orphan", []),
        }

    walk(project, target, pg_rows(pg, database), whole_install)
    assert psql_rows(pg, database, "select count(*) from knex_migrations_lock where is_locked = 0") == [("1",)]


def test_pg_schema_mode_keeps_knex_migrations_in_the_plugin_schema(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    shared = f"{prefix}shared"
    # Backstage's database docs: one database for every plugin, a schema each.
    config = (
        PG_TEMPLATE.format(prefix=prefix)
        + f"      database: {shared}\n    pluginDivisionMode: schema\n    schemaPrefix: bs_\n"
    )
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    create_database(pg, shared)
    psql_rows(pg, shared, "create schema bs_catalog")  # Backstage creates the schema itself, before migrating
    target = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{shared} schema bs_catalog"
    knex_tables = "select schemaname, tablename from pg_tables where tablename like 'knex%' order by 1, 2"

    def whole_install() -> None:
        report = knexwrap("status", "--json", cwd=project)
        assert report.code == 0, report.err
        doc = report.json()
        assert databases(doc) == {
            f"postgresql://{pg.user}@{pg.host}:{pg.port}/{shared} schema bs_app": ("absent", []),
            target: ("in_sync", [("knex_migrations", 4, 0, "in_sync")]),
        }
        assert doc["summary"] == {
            "orphan": 0,
            "unused": 0,
            "wrong_folder": 0,
            "conflict": 0,
            "in_sync": 1,
            "absent": 1,
            "behind": 0,
            "locked": 0,
            "ahead": 0,
            "unreachable": 0,
        }

    def check_tables() -> None:
        assert psql_rows(pg, shared, knex_tables) == [
            ("bs_catalog", "knex_migrations"),
            ("bs_catalog", "knex_migrations_lock"),
        ]
        whole_install()

    walk(project, target, pg_rows(pg, shared, "bs_catalog.knex_migrations"), check_tables)
    assert psql_rows(pg, shared, knex_tables) == [
        ("bs_catalog", "knex_migrations"),
        ("bs_catalog", "knex_migrations_lock"),
    ]
    assert psql_rows(pg, shared, "select tablename from pg_tables where schemaname = 'public'") == []


def test_pg_schema_mode_refuses_a_schema_that_does_not_exist(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    """Exit 7 like a missing database: no read that looks like an empty schema, no knex failure half-way.

    ensureExists: false, so the backend would not create it either (test_appconfig_backend: when it would)."""
    shared = f"{prefix}shared"
    config = f"""\
backend:
  database:
    client: pg
    pluginDivisionMode: schema
    schemaPrefix: bs_
    ensureExists: false
    connection: postgresql://{pg.user}@{pg.host}:{pg.port}/{shared}
"""
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config})
    create_database(pg, shared)
    error = f'knexwrap: error: schema "bs_app" does not exist in database "{shared}"\n'
    for args in (["current", "app"], ["latest", "app", "--yes"], ["rollback", "app", "--yes"]):
        result = knexwrap(*args, cwd=project)
        assert (result.code, result.out, result.err) == (7, "", error), args
    # status says it as the state "absent", the schema being the plugin's database in schema mode.
    status = knexwrap("status", "app", "--json", cwd=project)
    assert (status.code, status.json()["schema"], status.json()["state"]) == (0, "bs_app", "absent")
    as_json = knexwrap("current", "app", "--json", cwd=project)
    assert as_json.json()["error"] == {
        "code": "database_missing",
        "message": error[len("knexwrap: error: ") : -1],
        "exit_code": 7,
    }
    assert psql_rows(pg, shared, "select nspname from pg_namespace where nspname like 'bs%'") == []
    assert psql_rows(pg, shared, "select tablename from pg_tables where schemaname = 'public'") == []


def test_connection_string_plugin_override_and_config_output(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    """A connection string (its database name ignored in database mode) and the catalog on a database of
    its own; `knexwrap config` says where each comes from, and the password shows nowhere."""
    other = f"{prefix}other"
    config = f"""\
backend:
  database:
    client: pg
    prefix: {prefix}
    connection: postgresql://{pg.user}:{PASSWORD}@{pg.host}:{pg.port}/ignored
    plugin:
      catalog:
        connection:
          database: {other}
"""
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config})
    create_database(pg, other)
    server = f"postgresql://{pg.user}@{pg.host}:{pg.port}"
    results = []

    status = knexwrap("status", "catalog", cwd=project)
    results.append(status)
    assert (status.code, status.out) == (0, all_pending(f"{server}/{other}"))
    latest = knexwrap("latest", "catalog", "--yes", "--json", cwd=project)
    results.append(latest)
    assert latest.code == 0, latest.err
    assert latest.json()["done"] == CATALOG
    assert pg_rows(pg, other)() == [(n, 1) for n in CATALOG]
    app = knexwrap("current", "app", cwd=project)  # prefix + plugin id, not the string's "ignored"
    results.append(app)
    assert (app.code, app.out, app.err) == (7, "", f'knexwrap: error: database "{prefix}app" does not exist\n')

    table = knexwrap("config", "--wide", cwd=project)
    results.append(table)
    assert table.code == 0, table.err
    from_base, from_plugin = "app-config.yaml: backend.database", "app-config.yaml: backend.database.plugin.catalog"
    assert (
        table.out
        == simple_table(
            ["plugin", "client", "where", "user", "password", "migrations tables", "from"],
            ["app", "pg", f"{pg.host}:{pg.port}/{prefix}app", pg.user, "set", "knex_migrations", from_base],
            ["catalog", "pg", f"{pg.host}:{pg.port}/{other}", pg.user, "set", "knex_migrations", from_plugin],
        )
        + f"repository: {project} (backend: none; knex 3.3.0)\n"
    )
    one = knexwrap("config", "catalog", "--json", cwd=project)
    results.append(one)
    assert one.json().pop("repository")["root"] == str(project)
    assert {k: v for k, v in one.json().items() if k != "repository"} == {
        "schema_version": 1,
        "command": "config",
        "plugins": [
            {
                "plugin": "catalog",
                "source": from_plugin,
                "client": "pg",
                "host": pg.host,
                "port": pg.port,
                "database": other,
                "schema": None,
                "sqlite_file": None,
                "user": pg.user,
                "migrations_tables": ["knex_migrations"],
                "password_set": True,
                "role": None,
                "skip_migrations": False,
                "ensure_exists": True,
                "knex_config": {},
                "shares_database_with": [],
                "notes": [],
                "missing": None,
            }
        ],
    }
    for result in results:
        assert PASSWORD not in result.out and PASSWORD not in result.err


def test_local_file_overrides_and_repeated_config(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    """app-config.local.yaml over app-config.yaml; --config files replace both, later ones winning."""
    wrong = unique_name("kw_ac_never") + "_"  # no database carries this prefix
    local = f"backend:\n  database:\n    prefix: {prefix}\n    connection:\n      port: {pg.port}\n"
    project = make_project(
        tmp_path / "backstage",
        {
            "app-config.yaml": PG_TEMPLATE.format(prefix=wrong),
            "app-config.local.yaml": local,
            "production.yaml": local,
            ".env": pg_env_file(pg).replace(f"POSTGRES_PORT={pg.port}", "POSTGRES_PORT=1"),
        },
    )
    create_database(pg, f"{prefix}catalog")
    target = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{prefix}catalog"

    both = knexwrap("status", "catalog", cwd=project)
    assert (both.code, both.out, both.err) == (0, all_pending(target), "")
    described = knexwrap("config", "catalog", "--json", cwd=project).json()["plugins"][0]
    assert (described["source"], described["port"], described["database"]) == (
        "app-config.yaml, app-config.local.yaml: backend.database",
        pg.port,
        f"{prefix}catalog",
    )

    alone = ["--config", "app-config.yaml"]
    described = knexwrap("config", "catalog", *alone, "--json", cwd=project).json()["plugins"][0]
    assert (described["source"], described["port"], described["database"]) == (
        "app-config.yaml: backend.database",
        1,
        f"{wrong}catalog",
    )
    refused = knexwrap("status", "catalog", *alone, cwd=project)
    assert (refused.code, refused.out) == (5, "")
    assert refused.err == f"knexwrap: error: connection refused by {pg.host}:1: is the database server running?\n"

    repeated = ["--config", "app-config.yaml", "--config", "production.yaml"]
    latest = knexwrap("latest", "catalog", *repeated, "--yes", cwd=project)
    assert latest.code == 0, latest.err
    assert pg_rows(pg, f"{prefix}catalog")() == [(n, 1) for n in CATALOG]
    described = knexwrap("config", "catalog", *repeated, "--json", cwd=project).json()["plugins"][0]
    assert described["source"] == "app-config.yaml, production.yaml: backend.database"

    missing = knexwrap("status", "catalog", "--config", "nowhere.yaml", cwd=project)
    assert (missing.code, missing.out) == (3, "")
    assert missing.err == "knexwrap: error: --config nowhere.yaml: no such file\n"


def test_flags_beat_app_config(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    config = PG_TEMPLATE.format(prefix=prefix).replace("${POSTGRES_HOST}", "db.knexwrap.invalid")
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    create_database(pg, f"{prefix}catalog")
    create_database(pg, f"{prefix}elsewhere")
    server = f"postgresql://{pg.user}@{pg.host}:{pg.port}"

    unreachable = knexwrap("status", "catalog", cwd=project)
    assert (unreachable.code, unreachable.err) == (5, "knexwrap: error: database host db.knexwrap.invalid not found\n")
    host = knexwrap("status", "catalog", "--host", pg.host, cwd=project)
    assert (host.code, host.out, host.err) == (0, all_pending(f"{server}/{prefix}catalog"), "")

    moved = ["--host", pg.host, "--database", f"{prefix}elsewhere"]
    latest = knexwrap("latest", "catalog", *moved, "--yes", cwd=project)
    assert latest.code == 0, latest.err
    assert pg_rows(pg, f"{prefix}elsewhere")() == [(n, 1) for n in CATALOG]
    assert psql_rows(pg, f"{prefix}catalog", "select tablename from pg_tables where schemaname = 'public'") == []
    described = knexwrap("config", "catalog", "--host", pg.host, "--json", cwd=project).json()["plugins"][0]
    assert (described["source"], described["host"], described["database"]) == (
        "app-config.yaml: backend.database + command line",
        pg.host,
        f"{prefix}catalog",
    )


# ---------------------------------------------------------------------------------------- MariaDB


@pytest.fixture
def maria_prefix(mariadb: MariaServer) -> Iterator[str]:
    value = unique_name("kw_ac") + "_"
    yield value
    for (name,) in mysql_rows(mariadb, None, "select schema_name from information_schema.schemata"):
        if name.startswith(value):
            mysql_rows(mariadb, None, f"drop database if exists `{name}`")


def test_mysql2_on_mariadb(mariadb: MariaServer, maria_prefix: str, tmp_path: Path) -> None:
    """packages/create-app's app-config.production.mysql.yaml shape, its values in .env."""
    config = f"""\
backend:
  database:
    client: mysql2
    prefix: {maria_prefix}
    connection:
      host: ${{MYSQL_HOST}}
      port: ${{MYSQL_PORT}}
      user: ${{MYSQL_USER}}
      password: ${{MYSQL_PASSWORD}}
"""
    env = f"MYSQL_HOST={mariadb.host}\nMYSQL_PORT={mariadb.port}\nMYSQL_USER={mariadb.user}\nMYSQL_PASSWORD=\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": env})
    database = f"{maria_prefix}catalog"
    mysql_rows(mariadb, None, f"create database `{database}`")
    server = f"mysql://{mariadb.user}@{mariadb.host}:{mariadb.port}"
    target = f"{server}/{database}"

    first = knexwrap("status", "catalog", cwd=project)
    assert (first.code, first.out, first.err) == (0, all_pending(target), "")
    assert mysql_rows(mariadb, database, "show tables") == []

    def rows() -> Rows:
        return [
            (n, int(b)) for n, b in mysql_rows(mariadb, database, "select name, batch from knex_migrations order by id")
        ]

    def whole_install() -> None:
        mysql_rows(mariadb, None, f"create database `{maria_prefix}retired`")
        report = knexwrap("status", "--json", cwd=project)
        assert report.code == 0, report.err
        assert databases(report.json()) == {
            f"{server}/{maria_prefix}app": ("absent", []),
            target: ("in_sync", [("knex_migrations", 4, 0, "in_sync")]),
            f"{server}/{maria_prefix}retired": ("orphan", []),
        }

    walk(project, target, rows, whole_install)
    assert mysql_rows(mariadb, database, "show tables") == [("knex_migrations",), ("knex_migrations_lock",)]


# ----------------------------------------------------------------------------------------- SQLite


def test_better_sqlite3_with_connection_directory(tmp_path: Path) -> None:
    config = "backend:\n  database:\n    client: better-sqlite3\n    connection:\n      directory: ./data/sqlite\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config})
    folder = project / "data" / "sqlite"
    db = folder / "catalog.sqlite"

    absent = knexwrap("current", "catalog", cwd=project)
    assert (absent.code, absent.err) == (7, f"knexwrap: error: SQLite database {db} does not exist\n")
    # Backstage makes the folder when the backend starts; knex would fail half-way without it.
    no_folder = knexwrap("latest", "catalog", "--yes", cwd=project)
    assert (no_folder.code, no_folder.out) == (7, "")
    assert no_folder.err == f"knexwrap: error: SQLite folder {folder} does not exist: create it first\n"
    assert not (project / "data").exists()
    folder.mkdir(parents=True)

    def rows() -> Rows:
        return sqlite_rows(db, "select name, batch from knex_migrations order by id")

    def whole_install() -> None:
        (folder / "retired.sqlite").touch()
        report = knexwrap("status", "--json", cwd=project / "data")  # from a folder below the project
        assert report.code == 0, report.err
        assert databases(report.json()) == {
            str(folder / "app.sqlite"): ("absent", []),
            str(db): ("in_sync", [("knex_migrations", 4, 0, "in_sync")]),
            str(folder / "retired.sqlite"): ("orphan", []),
        }

    walk(project, str(db), rows, whole_install)
    assert sorted(p.name for p in folder.iterdir()) == ["catalog.sqlite", "retired.sqlite"]

    described = knexwrap("config", "--json", cwd=project).json()
    assert [
        (p["plugin"], p["client"], p["sqlite_file"], p["host"], p["password_set"]) for p in described["plugins"]
    ] == [
        ("app", "better-sqlite3", str(folder / "app.sqlite"), None, False),
        ("catalog", "better-sqlite3", str(db), None, False),
    ]


# ------------------------------------------------------------------------------- bad configuration


@pytest.mark.parametrize(
    ("config", "error"),
    [
        pytest.param(
            "backend:\n  database:\n    client: pg\n    connection: {host: localhost\n",
            "app-config.yaml: line 5, column 1: YAML syntax error: expected ',' or '}', but got '<stream end>'",
            id="yaml-syntax",
        ),
        pytest.param(
            "backend:\n  database:\n    client: oracledb\n    connection:\n      host: localhost\n",
            "app-config.yaml: backend.database.client: unsupported client 'oracledb': "
            "Backstage accepts pg, better-sqlite3, sqlite3, mysql2, mysql",
            id="unknown-client",
        ),
        pytest.param(
            "backend:\n  database:\n    client: better-sqlite3\n    connection: ':memory:'\n",
            "app-config.yaml: backend.database.connection: ':memory:' is an in-memory SQLite database that only "
            "the Backstage process can open; set connection.directory to keep the plugin databases in files",
            id="sqlite-memory",
        ),
        pytest.param(
            # A connection a missing variable leaves out whole cannot be filled by any default.
            "backend:\n  database:\n    client: pg\n    connection: ${KNEXWRAP_UNSET_VAR}\n",
            "app-config.yaml: backend.database.connection: ${KNEXWRAP_UNSET_VAR} is not set",
            id="unset-variable",
        ),
    ],
)
def test_bad_configuration_is_one_line_and_exit_3(tmp_path: Path, config: str, error: str) -> None:
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config})
    for args in (["status", "catalog"], ["config"], ["status"], ["latest", "catalog", "--yes"]):
        result = knexwrap(*args, cwd=project, env={"KNEXWRAP_UNSET_VAR": None})
        assert (result.code, result.out, result.err) == (3, "", f"knexwrap: error: {error}\n"), args
    as_json = knexwrap("status", "catalog", "--json", cwd=project, env={"KNEXWRAP_UNSET_VAR": None})
    assert as_json.code == 3
    assert as_json.json()["error"] == {"code": "config", "message": error, "exit_code": 3}
    assert (as_json.json()["command"], as_json.json()["plugin"]) == ("status", "catalog")
    assert as_json.err == f"knexwrap: error: {error}\n"
