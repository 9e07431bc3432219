"""app-config as the backend uses it: the settings beside the connection, end to end on real servers.

Each test is one of issue 8's failures: a relative SQLite directory taken from the folder the backend
runs in, knexConfig (global and per plugin) in both the reader and the knexfile, role (SET ROLE),
skipMigrations, unset variables that leave keys out, a bare migrations folder read with app-config's
client, two plugins configured to one database. PostgreSQL (database and schema mode), MariaDB and SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import CATALOG, PLUGINS, knexwrap, sqlite_rows
from servers import MariaServer, PgServer, create_database, drop_database, mysql_rows, psql_rows, unique_name
from test_appconfig_e2e import PG_TEMPLATE, all_pending, make_project, pg_env_file, pg_rows, prefix

from knexwrap.config.connection import Options

__all__ = ["prefix"]  # the fixture, shared with test_appconfig_e2e

SQLITE_CONFIG = "backend:\n  database:\n    client: better-sqlite3\n    connection:\n      directory: ./db\n"


def repository(root: Path, files: dict[str, str]) -> Path:
    """make_project as a yarn-workspaces repository: a root package.json and packages/backend (role backend)."""
    project = make_project(root, files)
    (project / "package.json").write_text(json.dumps({"private": True, "workspaces": ["packages/*"]}))
    backend = project / "packages" / "backend"
    backend.mkdir(parents=True)
    dependencies = {f"@knexwrap-fixture/plugin-{p}-backend": "1.0.0" for p in ("app", "catalog")}
    manifest = {"name": "backend", "backstage": {"role": "backend"}, "dependencies": dependencies}
    (backend / "package.json").write_text(json.dumps(manifest))
    return project


def apply_catalog(project: Path, file: Path) -> None:
    """The catalog's migrations in ``file``, as the backend would have left them (knexwrap, file named outright)."""
    done = knexwrap("latest", "catalog", "--client", "better-sqlite3", "--database", str(file), "--yes", cwd=project)
    assert done.code == 0, done.err


# ----------------------------------------------------------------------------------------- SQLite


def test_relative_sqlite_directory_is_where_the_backend_made_its_files(tmp_path: Path) -> None:
    project = repository(tmp_path / "backstage", {"app-config.yaml": SQLITE_CONFIG})
    backend = project / "packages" / "backend"
    (backend / "db").mkdir()
    in_backend = backend / "db" / "catalog.sqlite"
    apply_catalog(project, in_backend)  # the backend started with `yarn start` runs in packages/backend

    status = knexwrap("status", "catalog", "--json", cwd=project)
    assert status.code == 0, status.err
    assert (status.json()["server"], status.json()["database"], status.json()["state"]) == (
        None,
        str(in_backend),
        "in_sync",
    )
    described = {p["plugin"]: p for p in knexwrap("config", "--json", cwd=project).json()["plugins"]}
    assert described["catalog"]["sqlite_file"] == str(in_backend)
    assert described["catalog"]["notes"] == [f"db/catalog.sqlite is relative: found under {backend}"]
    assert described["app"]["sqlite_file"] == str(backend / "db" / "app.sqlite")
    assert described["app"]["notes"] == [
        f"db/app.sqlite is relative and absent: taken under {backend} (its folder is there)"
    ]

    # The production image runs `node packages/backend` from the root: a second file there is a real choice.
    (project / "db").mkdir()
    at_root = project / "db" / "catalog.sqlite"
    at_root.touch()
    both = knexwrap("status", "catalog", cwd=project)
    assert (both.code, both.out) == (3, "")
    assert both.err == (
        f"knexwrap: error: db/catalog.sqlite exists under both {project} and {backend}: pass --backend-cwd with "
        "the folder the backend runs in (packages/backend under yarn start, the root under node packages/backend)\n"
    )
    root = knexwrap("status", "catalog", "--backend-cwd", ".", cwd=project)
    assert (root.code, root.err) == (0, "")
    assert root.out == all_pending(str(at_root))
    chosen = knexwrap("config", "catalog", "--json", "--backend-cwd", "packages/backend", cwd=project).json()
    assert chosen["plugins"][0]["sqlite_file"] == str(in_backend)
    assert chosen["plugins"][0]["notes"] == [f"db/catalog.sqlite is relative: taken from --backend-cwd {backend}"]
    assert sqlite_rows(in_backend, "select count(*) from knex_migrations") == [(len(CATALOG),)]


def test_sqlite_skip_migrations_per_plugin_is_shown_and_doctor_names_the_fix(tmp_path: Path) -> None:
    config = SQLITE_CONFIG + "    skipMigrations: false\n    plugin:\n      catalog:\n        skipMigrations: true\n"
    project = repository(tmp_path / "backstage", {"app-config.yaml": config})
    (project / "db").mkdir()
    file = project / "db" / "catalog.sqlite"
    sqlite_rows(file, "select 1")  # the backend made the file and applied nothing (skipMigrations)

    status = knexwrap("status", "catalog", "--json", cwd=project).json()
    assert (status["skip_migrations"], status["counts"]["pending"]) == (True, len(CATALOG))
    text = knexwrap("status", "catalog", cwd=project).out
    assert text.endswith("skipMigrations: the backend will not apply the pending migrations (knexwrap latest does)\n")
    whole = knexwrap("status", "--json", cwd=project).json()
    assert {d["plugin"]: d["skip_migrations"] for d in whole["databases"]} == {"app": False, "catalog": True}
    whole_text = knexwrap("status", cwd=project).out
    assert f"{file}: skipMigrations: the backend will not apply its pending migrations\n" in whole_text

    doctor = knexwrap("doctor", "--json", cwd=project)
    skipped = [f for f in doctor.json()["findings"] if f["problem"] == "skipped"]
    assert skipped == [
        {
            "server": None,
            "database": str(file),
            "schema": None,
            "migrations_table": "knex_migrations",
            "problem": "skipped",
            "message": f"app-config sets skipMigrations for catalog: the backend will never apply these {len(CATALOG)} "
            "pending migrations here",
            "files": CATALOG,
            "fix": "knexwrap latest catalog",
        }
    ]
    fixed = knexwrap(*skipped[0]["fix"].split()[1:], "--yes", cwd=project)
    assert fixed.code == 0, fixed.err
    after = knexwrap("doctor", "--json", cwd=project).json()
    assert [f for f in after["findings"] if f["problem"] == "skipped"] == []


# ------------------------------------------------------------------------------------- PostgreSQL


def test_pg_knex_config_search_path_keeps_the_tables_in_its_schema(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    config = PG_TEMPLATE.format(prefix=prefix) + "    knexConfig:\n      searchPath: [tenant]\n"
    config += "    plugin:\n      catalog:\n        knexConfig:\n"
    config += "          migrations: {disableMigrationsListValidation: true}\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    database = f"{prefix}catalog"
    create_database(pg, database)
    psql_rows(pg, database, "create schema tenant")
    target = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{database} schema tenant"

    first = knexwrap("status", "catalog", cwd=project)
    assert (first.code, first.out, first.err) == (0, all_pending(target), "")
    latest = knexwrap("latest", "catalog", "--yes", cwd=project)
    assert latest.code == 0, latest.err
    assert pg_rows(pg, database, "tenant.knex_migrations")() == [(n, 1) for n in CATALOG]
    assert psql_rows(pg, database, "select to_regclass('public.knex_migrations') is null") == [("t",)]
    status = knexwrap("status", "catalog", "--json", cwd=project).json()
    placed = (status["server"], status["database"], status["schema"])
    assert placed == (f"postgresql://{pg.user}@{pg.host}:{pg.port}", database, "tenant")
    assert (status["state"], status["counts"]["applied"]) == ("in_sync", len(CATALOG))

    described = {p["plugin"]: p for p in knexwrap("config", "--json", cwd=project).json()["plugins"]}
    assert described["catalog"]["knex_config"] == {
        "searchPath": ["tenant"],
        "migrations": {"disableMigrationsListValidation": True},
    }
    assert described["app"]["knex_config"] == {"searchPath": ["tenant"]}
    # The knexfile gets knexConfig.migrations under the set's own folder and table, as knex.migrate.latest
    # ({directory}) merges it in the backend.
    from knexwrap.state.plugin import open_target

    opened = open_target("catalog", Options(), cwd=project)
    assert opened.knex_config()["migrations"] == {
        "disableMigrationsListValidation": True,
        "directory": str(project / "node_modules" / "@knexwrap-fixture" / "plugin-catalog-backend" / "migrations"),
        "tableName": "knex_migrations",
    }
    assert opened.knex_config()["searchPath"] == ["tenant"]

    # And it is honoured: like the backend, knex applies the pending file although the table records one
    # that is not in the folder (without it: "the migration directory is corrupt").
    down = knexwrap("down", "catalog", CATALOG[-1], "--yes", cwd=project)
    assert down.code == 0, down.err
    newer = "20990101000000_newer.js"
    psql_rows(
        pg, database, f"insert into tenant.knex_migrations (name, batch, migration_time) values ('{newer}', 2, now())"
    )
    again = knexwrap("latest", "catalog", "--yes", cwd=project)
    assert again.code == 0, again.err
    assert pg_rows(pg, database, "tenant.knex_migrations")() == [
        *((n, 1) for n in CATALOG[:3]),
        (newer, 2),
        (CATALOG[3], 3),
    ]
    # The app's database is absent: created, it would not hold the schema knexConfig names (the backend
    # fails there half-way); knexwrap says so and creates nothing.
    app = knexwrap("latest", "app", "--yes", cwd=project)
    assert (app.code, app.out) == (7, "")
    assert app.err == (
        f'knexwrap: error: database "{prefix}app" does not exist, and knexConfig.searchPath puts the tables in '
        'schema "tenant", which a new database would not have: create the database and the schema first\n'
    )
    assert psql_rows(pg, "postgres", f"select count(*) from pg_database where datname = '{prefix}app'") == [("0",)]


def test_pg_schema_mode_merges_knex_config_search_path(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    config = PG_TEMPLATE.format(prefix=prefix).replace(
        "    prefix:", "    pluginDivisionMode: schema\n    schemaPrefix: kw_\n    prefix:"
    )
    config = config.replace("      password:", f"      database: {prefix}shared\n      password:")
    config += "    knexConfig:\n      searchPath: [ignored, public]\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    database = f"{prefix}shared"
    create_database(pg, database)
    psql_rows(pg, database, "create schema kw_catalog")
    latest = knexwrap("latest", "catalog", "--yes", cwd=project)
    assert latest.code == 0, latest.err
    # lodash.merge puts the plugin's schema over the first entry: [kw_catalog, public].
    assert pg_rows(pg, database, "kw_catalog.knex_migrations")() == [(n, 1) for n in CATALOG]
    described = knexwrap("config", "catalog", "--json", cwd=project).json()["plugins"][0]
    assert (described["schema"], described["knex_config"]) == ("kw_catalog", {"searchPath": ["kw_catalog", "public"]})


@pytest.fixture
def role(pg: PgServer) -> Iterator[str]:
    name = unique_name("kw_role")
    psql_rows(pg, "postgres", f"create role {name} nologin")
    yield name
    psql_rows(pg, "postgres", f"drop role if exists {name}")


def test_pg_role_is_set_on_every_connection(pg: PgServer, prefix: str, role: str, tmp_path: Path) -> None:
    config = PG_TEMPLATE.format(prefix=prefix) + f"    plugin:\n      catalog:\n        role: {role}\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    database = f"{prefix}catalog"
    create_database(pg, database)
    # With SET ROLE, the default search_path "$user", public finds the role's own schema first.
    psql_rows(pg, database, f"create schema {role} authorization {role}")
    try:
        latest = knexwrap("latest", "catalog", "--yes", cwd=project)
        assert latest.code == 0, latest.err
        owners = psql_rows(
            pg, database, "select schemaname, tableowner from pg_tables where tablename = 'knex_migrations'"
        )
        assert owners == [(role, role)]
        status = knexwrap("status", "catalog", "--json", cwd=project).json()
        assert (status["state"], status["counts"]["applied"]) == ("in_sync", len(CATALOG))
        described = {p["plugin"]: p["role"] for p in knexwrap("config", "--json", cwd=project).json()["plugins"]}
        assert described == {"app": None, "catalog": role}
    finally:
        drop_database(pg, database)


def test_pg_unset_password_and_port_are_left_out_like_backstage(pg: PgServer, prefix: str, tmp_path: Path) -> None:
    env = f"POSTGRES_HOST={pg.host}\nPOSTGRES_USER={pg.user}\n"  # trust auth: no password, and no port
    project = make_project(tmp_path / "backstage", {"app-config.yaml": PG_TEMPLATE.format(prefix=prefix), ".env": env})
    create_database(pg, f"{prefix}catalog")
    status = knexwrap("status", "catalog", cwd=project)
    assert (status.code, status.err) == (0, "")
    assert status.out == all_pending(f"postgresql://{pg.user}@{pg.host}:5432/{prefix}catalog")
    described = knexwrap("config", "catalog", "--json", cwd=project).json()["plugins"][0]
    assert (described["port"], described["password_set"]) == (5432, False)
    assert described["notes"] == [
        "backend.database.connection.port: ${POSTGRES_PORT} is not set in app-config.yaml; using the default 5432"
    ]


def test_two_plugins_configured_to_one_database_are_reported_as_sharing_it(
    pg: PgServer, prefix: str, tmp_path: Path
) -> None:
    config = PG_TEMPLATE.format(prefix=prefix)
    config += f"    plugin:\n      app:\n        connection:\n          database: {prefix}catalog\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    create_database(pg, f"{prefix}catalog")
    described = {
        p["plugin"]: p["shares_database_with"] for p in knexwrap("config", "--json", cwd=project).json()["plugins"]
    }
    assert described == {"app": ["catalog"], "catalog": ["app"]}
    whole = knexwrap("status", "--json", cwd=project)
    assert whole.code == 0, whole.err
    where = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{prefix}catalog"
    note = f"app, catalog share the database {where}: one knex_migrations table holds all their migrations"
    assert note in whole.json()["notes"]
    assert f"note: {note}\n" in knexwrap("status", cwd=project).out


def test_pg_ensure_exists_only_a_change_verb_creates_and_its_plan_says_so(
    pg: PgServer, prefix: str, tmp_path: Path
) -> None:
    config = PG_TEMPLATE.format(prefix=prefix) + "    plugin:\n      app:\n        ensureExists: false\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    database = f"{prefix}catalog"
    server = f"postgresql://{pg.user}@{pg.host}:{pg.port}"

    def exists(name: str) -> bool:
        return psql_rows(pg, "postgres", f"select count(*) from pg_database where datname = '{name}'") == [("1",)]

    for args in (
        ["status", "catalog"],
        ["current", "catalog"],
        ["status"],
        ["doctor"],
        ["latest", "catalog", "--dry-run"],
    ):
        knexwrap(*args, cwd=project)
        assert not exists(database), args
    dry = knexwrap("latest", "catalog", "--dry-run", "--json", cwd=project).json()
    creates = f'create database "{database}" in {server} (app-config ensureExists, as the backend does)'
    assert (dry["creates"], dry["planned"]) == (creates, CATALOG)

    latest = knexwrap("latest", "catalog", "--yes", cwd=project)
    assert latest.code == 0, latest.err
    assert latest.err == (
        f"About to {creates}, then:\nAbout to apply 4 migrations of catalog (@knexwrap-fixture/plugin-catalog-backend)"
        f" in {server}/{database}, table knex_migrations:\n" + "".join(f"  {n}\n" for n in CATALOG)
    )
    assert pg_rows(pg, database)() == [(n, 1) for n in CATALOG]

    # ensureExists: false for app: the backend would not create it, nor does knexwrap.
    refused = knexwrap("latest", "app", "--yes", cwd=project)
    assert (refused.code, refused.err) == (7, f'knexwrap: error: database "{prefix}app" does not exist\n')
    assert not exists(f"{prefix}app")


def test_pg_schema_mode_ensure_creates_the_schema_owned_by_the_role(
    pg: PgServer, prefix: str, role: str, tmp_path: Path
) -> None:
    shared = f"{prefix}shared"
    config = PG_TEMPLATE.format(prefix=prefix).replace("    prefix:", "    pluginDivisionMode: schema\n    prefix:")
    config = config.replace("      password:", f"      database: {shared}\n      password:") + f"    role: {role}\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    create_database(pg, shared)
    psql_rows(pg, shared, f"grant create on database {shared} to {role}")
    try:
        status = knexwrap("status", "catalog", "--json", cwd=project)  # absent: a state, not an error
        assert (status.code, status.json()["state"]) == (0, "absent")
        assert psql_rows(pg, shared, "select count(*) from pg_namespace where nspname = 'catalog'") == [("0",)]
        latest = knexwrap("latest", "catalog", "--yes", cwd=project)
        assert latest.code == 0, latest.err
        assert latest.err.startswith(f'About to create schema "catalog" in postgresql://{pg.user}@{pg.host}:{pg.port}/')
        owner = psql_rows(pg, shared, "select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'catalog'")
        assert owner == [(role,)]
        assert pg_rows(pg, shared, "catalog.knex_migrations")() == [(n, 1) for n in CATALOG]
    finally:
        drop_database(pg, shared)


# -------------------------------------------------------------------------- a bare migrations folder


def test_bare_folder_uses_app_config_client_and_server(mariadb: MariaServer, tmp_path: Path) -> None:
    config = (
        "backend:\n  database:\n    client: mysql2\n    connection:\n      host: ${MYSQL_HOST}\n"
        "      port: ${MYSQL_PORT}\n      user: ${MYSQL_USER}\n"
    )
    env = f"MYSQL_HOST={mariadb.host}\nMYSQL_PORT={mariadb.port}\nMYSQL_USER={mariadb.user}\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": env})
    database = unique_name("kw_bare")
    mysql_rows(mariadb, None, f"create database `{database}`")
    folder = str(PLUGINS / "catalog" / "migrations")
    target = f"mysql://{mariadb.user}@{mariadb.host}:{mariadb.port}/{database}"
    try:
        for extra in ([], ["--client", "mysql2"]):
            status = knexwrap("status", folder, "--database", database, *extra, cwd=project)
            assert (status.code, status.err) == (0, ""), extra
            assert status.out.startswith(f"(no plugin) in {target}, table knex_migrations\n"), extra
    finally:
        mysql_rows(mariadb, None, f"drop database if exists `{database}`")


def test_mysql2_ensure_exists_creates_the_plugin_database_on_latest(mariadb: MariaServer, tmp_path: Path) -> None:
    prefix = unique_name("kw_ens") + "_"
    config = (
        f"backend:\n  database:\n    client: mysql2\n    prefix: {prefix}\n    skipMigrations: true\n"
        "    connection:\n      host: ${MYSQL_HOST}\n      port: ${MYSQL_PORT}\n      user: ${MYSQL_USER}\n"
        "      password: ${MYSQL_PASSWORD}\n"
    )
    env = f"MYSQL_HOST={mariadb.host}\nMYSQL_PORT={mariadb.port}\nMYSQL_USER={mariadb.user}\n"
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": env})
    database = f"{prefix}catalog"
    server = f"mysql://{mariadb.user}@{mariadb.host}:{mariadb.port}"

    def databases() -> list[tuple[str, ...]]:
        sql = f"select schema_name from information_schema.schemata where schema_name like '{prefix}%'"
        return mysql_rows(mariadb, None, sql)

    try:
        absent = knexwrap("status", "catalog", "--json", cwd=project)  # a state, not an error
        assert (absent.code, absent.json()["state"]) == (0, "absent")
        assert databases() == []
        latest = knexwrap("latest", "catalog", "--yes", "--json", cwd=project)
        assert latest.code == 0, latest.err
        creates = f'create database "{database}" in {server} (app-config ensureExists, as the backend does)'
        assert (latest.json()["creates"], latest.json()["done"]) == (creates, CATALOG)
        assert databases() == [(database,)]
        rows = mysql_rows(mariadb, database, "select name from knex_migrations order by id")
        assert rows == [(n,) for n in CATALOG]
        assert knexwrap("status", "catalog", "--json", cwd=project).json()["skip_migrations"] is True
    finally:
        for (name,) in databases():
            mysql_rows(mariadb, None, f"drop database if exists `{name}`")


def test_pg_schema_mode_a_missing_database_is_created_with_the_plugins_schema(
    pg: PgServer, prefix: str, tmp_path: Path
) -> None:
    """Review finding: the plan created only the database, then knex failed in it (no schema to create in):
    a half-done change. The backend creates both; so does knexwrap, and its plan says so."""
    shared = f"{prefix}shared"
    config = PG_TEMPLATE.format(prefix=prefix).replace("    prefix:", "    pluginDivisionMode: schema\n    prefix:")
    config = config.replace("      password:", f"      database: {shared}\n      password:")
    project = make_project(tmp_path / "backstage", {"app-config.yaml": config, ".env": pg_env_file(pg)})
    server = f"postgresql://{pg.user}@{pg.host}:{pg.port}"
    creates = (
        f'create database "{shared}" in {server}, then schema "catalog" in it (app-config ensureExists, as the '
        "backend does)"
    )
    try:
        dry = knexwrap("latest", "catalog", "--dry-run", "--json", cwd=project).json()
        assert (dry["creates"], dry["planned"]) == (creates, CATALOG)
        latest = knexwrap("latest", "catalog", "--yes", cwd=project)
        assert latest.code == 0, latest.err
        assert latest.err.startswith(f"About to {creates}, then:\n")
        assert pg_rows(pg, shared, "catalog.knex_migrations")() == [(n, 1) for n in CATALOG]
    finally:
        drop_database(pg, shared)
