"""knexwrap.appconfig: Backstage's app-config database settings, read the way Backstage reads them.

The files are written in the shapes of Backstage's create-app templates and database docs. Expected values
were checked against @backstage/config-loader 1.11.5 and @backstage/backend-defaults 0.19.0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from knexwrap.config.appconfig import (
    BackendSettings,
    LoadedConfig,
    PluginDatabase,
    find_config_files,
    load,
    plugin_database,
)
from knexwrap.errors import ConfigError

# packages/create-app/templates/default-app/app-config.production.yaml
PRODUCTION = """\
app:
  baseUrl: http://localhost:7007

backend:
  baseUrl: http://localhost:7007
  listen:
    port: 7007
    host: 0.0.0.0

  # config options: https://node-postgres.com/api/client
  database:
    client: pg
    connection:
      host: ${POSTGRES_HOST}
      port: ${POSTGRES_PORT}
      user: ${POSTGRES_USER}
      password: ${POSTGRES_PASSWORD}
"""

# packages/create-app/templates/default-app/app-config.production.mysql.yaml
PRODUCTION_MYSQL = """\
backend:
  baseUrl: http://localhost:7007
  listen: ':7007'
  database:
    client: mysql2
    connection:
      host: ${MYSQL_HOST}
      port: ${MYSQL_PORT}
      user: ${MYSQL_USER}
      password: ${MYSQL_PASSWORD}
"""

SCHEMA_MODE = BackendSettings(schema_mode=True)
PG_ENV = {
    "POSTGRES_HOST": "db.internal",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "backstage",
    "POSTGRES_PASSWORD": "s3cret!",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project folder, also the working directory, so messages name files as `app-config.yaml`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def database_for(
    project: Path, text: str, plugin: str = "catalog", env: dict[str, str] | None = None
) -> PluginDatabase | None:
    config = load([write(project, "app-config.yaml", text)], env or {})
    return plugin_database(config, plugin, base=project)


def config_error(project: Path, text: str, plugin: str = "catalog", env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        database_for(project, text, plugin, env)
    assert caught.value.exit_code == 3
    assert "\n" not in caught.value.message
    return caught.value.message


def pg(**changes: object) -> PluginDatabase:
    values: dict[str, object] = {
        "client": "pg",
        "host": "db.internal",
        "port": 5432,
        "user": "backstage",
        "password": "s3cret!",
        "database": "backstage_plugin_catalog",
        "schema": None,
        "filename": None,
        "extra": {},
        "source": "app-config.yaml: backend.database",
    }
    values.update(changes)
    return PluginDatabase(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- PostgreSQL


def test_production_template_with_postgres_variables(project: Path) -> None:
    config = load([write(project, "app-config.production.yaml", PRODUCTION)], PG_ENV)
    database = plugin_database(config, "catalog", base=project)
    assert database == pg(source="app-config.production.yaml: backend.database")
    assert "s3cret!" not in repr(database)
    assert database is not None
    assert database.knex_connection() == {
        "host": "db.internal",
        "port": 5432,
        "user": "backstage",
        "database": "backstage_plugin_catalog",
    }


def test_each_plugin_gets_prefix_plus_its_id(project: Path) -> None:
    config = load([write(project, "app-config.yaml", PRODUCTION)], PG_ENV)
    user_settings = plugin_database(config, "user-settings", base=project)
    assert user_settings is not None
    assert user_settings.database == "backstage_plugin_user-settings"


def test_custom_prefix(project: Path) -> None:
    text = PRODUCTION.replace("    client: pg\n", "    client: pg\n    prefix: bs_\n")
    assert database_for(project, text, env=PG_ENV) == pg(database="bs_catalog")


def test_connection_string_is_parsed_with_percent_decoding(project: Path) -> None:
    text = """\
backend:
  database:
    client: pg
    connection: postgresql://back%40stage:p%40ss%2Fword@db.example.com:5433/ignored?sslmode=require
"""
    assert database_for(project, text) == pg(
        host="db.example.com",
        port=5433,
        user="back@stage",
        password="p@ss/word",
        extra={"sslmode": "require", "ssl": {}},
    )


def test_connection_string_from_a_variable(project: Path) -> None:
    text = "backend:\n  database:\n    client: pg\n    connection: ${DATABASE_URL}\n"
    env = {"DATABASE_URL": "postgres://backstage:pw@pg:5432/backstage?sslmode=disable"}
    assert database_for(project, text, env=env) == pg(
        host="pg", password="pw", extra={"sslmode": "disable", "ssl": False}
    )


def test_plugin_override_to_another_database(project: Path) -> None:
    text = (
        PRODUCTION
        + """\
    plugin:
      catalog:
        connection:
          database: catalog_db
      scaffolder:
        connection:
          host: scaffolder-db.internal
          password: other
"""
    )
    config = load([write(project, "app-config.yaml", text)], PG_ENV)
    assert plugin_database(config, "catalog", base=project) == pg(
        database="catalog_db", source="app-config.yaml: backend.database.plugin.catalog"
    )
    assert plugin_database(config, "scaffolder", base=project) == pg(
        host="scaffolder-db.internal",
        password="other",
        database="backstage_plugin_scaffolder",
        source="app-config.yaml: backend.database.plugin.scaffolder",
    )
    assert plugin_database(config, "auth", base=project) == pg(database="backstage_plugin_auth")


def test_plugin_connection_string_override(project: Path) -> None:
    text = PRODUCTION + "    plugin:\n      catalog:\n        connection: postgres://cat:catpw@catalog-db/cat\n"
    # The parsed URL has port '' and replaces the base port whole: pg then uses its default.
    assert database_for(project, text, env=PG_ENV) == pg(
        host="catalog-db",
        port=None,
        user="cat",
        password="catpw",
        database="cat",
        source="app-config.yaml: backend.database.plugin.catalog",
    )


def test_schema_mode_with_schema_prefix(project: Path) -> None:
    text = """\
backend:
  database:
    client: pg
    pluginDivisionMode: schema
    schemaPrefix: backstage_
    connection:
      host: ${POSTGRES_HOST}
      port: ${POSTGRES_PORT}
      user: ${POSTGRES_USER}
      password: ${POSTGRES_PASSWORD}
      database: backstage
"""
    assert database_for(project, text, env=PG_ENV) == pg(
        database="backstage", schema="backstage_catalog", settings=SCHEMA_MODE
    )


def test_schema_mode_without_a_database_name_leaves_it_to_the_server(project: Path) -> None:
    text = PRODUCTION.replace("    client: pg\n", "    client: pg\n    pluginDivisionMode: schema\n")
    assert database_for(project, text, env=PG_ENV) == pg(database=None, schema="catalog", settings=SCHEMA_MODE)


def test_role_is_the_base_role(project: Path) -> None:
    text = PRODUCTION.replace("    client: pg\n", "    client: pg\n    role: backstage_owner\n")
    database = database_for(project, text, env=PG_ENV)
    assert database is not None
    assert database.role == "backstage_owner"


def test_ssl_settings_are_kept_and_merged_deeply(project: Path) -> None:
    text = (
        PRODUCTION
        + """\
      ssl:
        ca: CERT
        rejectUnauthorized: true
    plugin:
      catalog:
        connection:
          ssl:
            rejectUnauthorized: false
"""
    )
    database = database_for(project, text, env=PG_ENV)
    assert database is not None
    assert database.extra == {"ssl": {"ca": "CERT", "rejectUnauthorized": False}}


def test_plugin_switching_to_pg_still_inherits_base_keys_like_backstage(project: Path) -> None:
    # buildPgDatabaseConfig lodash-merges the whole base connection under the plugin's own.
    text = """\
backend:
  database:
    client: mysql2
    connection:
      host: mysql.internal
      port: 3306
      user: root
      password: mysql-pw
    plugin:
      catalog:
        client: pg
        connection:
          host: pg.internal
          password: pg-pw
"""
    assert database_for(project, text) == pg(
        host="pg.internal",
        port=3306,
        user="root",
        password="pg-pw",
        source="app-config.yaml: backend.database.plugin.catalog",
    )


def test_plugin_switching_to_another_client_does_not_inherit(project: Path) -> None:
    text = (
        PRODUCTION
        + """\
    plugin:
      auth:
        client: better-sqlite3
        connection:
          directory: ./sqlite-data
"""
    )
    assert database_for(project, text, "auth", env=PG_ENV) == PluginDatabase(
        client="better-sqlite3",
        host=None,
        port=None,
        user=None,
        password=None,
        database=None,
        schema=None,
        filename=str(project / "sqlite-data" / "auth.sqlite"),
        extra={},
        source="app-config.yaml: backend.database.plugin.auth",
        sqlite_path="sqlite-data/auth.sqlite",
    )


# ------------------------------------------------------------------------------------------- SQLite


def test_better_sqlite3_with_a_directory(project: Path) -> None:
    text = "backend:\n  database:\n    client: better-sqlite3\n    connection:\n      directory: ./sqlite-data\n"
    assert database_for(project, text) == PluginDatabase(
        client="better-sqlite3",
        host=None,
        port=None,
        user=None,
        password=None,
        database=None,
        schema=None,
        filename=str(project / "sqlite-data" / "catalog.sqlite"),
        extra={},
        source="app-config.yaml: backend.database",
        sqlite_path="sqlite-data/catalog.sqlite",
    )


def test_sqlite_plugin_filename_joins_the_directory(project: Path) -> None:
    text = """\
backend:
  database:
    client: sqlite3
    connection:
      directory: /var/lib/backstage
    plugin:
      catalog:
        connection:
          filename: catalog.db
"""
    database = database_for(project, text)
    assert database is not None
    assert (database.client, database.filename) == ("sqlite3", "/var/lib/backstage/catalog.db")


def test_sqlite_without_a_directory_uses_the_project_folder(project: Path) -> None:
    text = "backend:\n  database:\n    client: better-sqlite3\n    connection: {}\n"
    database = database_for(project, text, "scaffolder")
    assert database is not None
    assert database.filename == str(project / "scaffolder.sqlite")


# -------------------------------------------------------------------------------------------- MySQL


def test_mysql2_production_template(project: Path) -> None:
    env = {"MYSQL_HOST": "mysql.internal", "MYSQL_PORT": "3306", "MYSQL_USER": "root", "MYSQL_PASSWORD": "pw"}
    config = load([write(project, "app-config.production.yaml", PRODUCTION_MYSQL)], env)
    assert plugin_database(config, "auth", base=project) == PluginDatabase(
        client="mysql2",
        host="mysql.internal",
        port=3306,
        user="root",
        password="pw",
        database="backstage_plugin_auth",
        schema=None,
        filename=None,
        extra={},
        source="app-config.production.yaml: backend.database",
    )


def test_mysql_connection_string_keeps_percent_escapes_like_backstage(project: Path) -> None:
    # parseMysqlConnectionString reads Node's URL.username/.password, which stay percent-encoded.
    text = """\
backend:
  database:
    client: mysql
    connection: mysql://root:p%40ss@mysql.internal:3307/ignored?ssl=Amazon%20RDS
"""
    assert database_for(project, text, "auth") == PluginDatabase(
        client="mysql2",
        host="mysql.internal",
        port=3307,
        user="root",
        password="p%40ss",
        database="backstage_plugin_auth",
        schema=None,
        filename=None,
        extra={"ssl": "Amazon RDS"},
        source="app-config.yaml: backend.database",
    )


# ------------------------------------------------------------------------------------- substitution


def test_fallback_is_used_when_the_variable_is_unset_or_empty(project: Path) -> None:
    text = """\
backend:
  database:
    client: pg
    connection:
      host: ${POSTGRES_HOST:-localhost}
      port: ${POSTGRES_PORT:-5432}
      user: ${POSTGRES_USER:-postgres}
      password: ${POSTGRES_PASSWORD}
"""
    env = {"POSTGRES_HOST": "", "POSTGRES_PASSWORD": "pw"}
    assert database_for(project, text, env=env) == pg(host="localhost", user="postgres", password="pw")


def test_double_dollar_is_a_literal(project: Path) -> None:
    text = PRODUCTION.replace("${POSTGRES_PASSWORD}", "pa$${not_a_variable}")
    database = database_for(project, text, env=PG_ENV)
    assert database is not None
    assert database.password == "pa${not_a_variable}"


def test_env_include(project: Path) -> None:
    text = PRODUCTION.replace("${POSTGRES_PASSWORD}", "\n        $env: DB_SECRET")
    database = database_for(project, text, env={**PG_ENV, "DB_SECRET": " from-env "})
    assert database is not None
    assert database.password == "from-env"


def test_file_include_is_relative_to_the_config_file(project: Path) -> None:
    write(project, "config/secrets/pg-password", "from-file\n")
    text = PRODUCTION.replace("${POSTGRES_PASSWORD}", "\n        $file: secrets/pg-password")
    config = load([write(project, "config/app-config.yaml", text)], PG_ENV)
    assert plugin_database(config, "catalog", base=project) == pg(
        password="from-file", source="config/app-config.yaml: backend.database"
    )


def test_yaml_is_read_as_yaml_1_2(project: Path) -> None:
    text = PRODUCTION.replace("${POSTGRES_USER}", "yes").replace("${POSTGRES_PASSWORD}", "2024-01-01")
    database = database_for(project, text, env=PG_ENV)
    assert database is not None
    assert (database.user, database.password) == ("yes", "2024-01-01")


# -------------------------------------------------------------------------------- merging and files


def test_app_config_environment_override(project: Path) -> None:
    env = {
        **PG_ENV,
        "APP_CONFIG_backend_database_connection_host": "override.internal",
        "APP_CONFIG_backend_database_connection_port": "6543",
    }
    config = load([write(project, "app-config.yaml", PRODUCTION)], env)
    assert config["backend"]["database"]["connection"]["port"] == 6543  # a JSON value
    assert plugin_database(config, "catalog", base=project) == pg(
        host="override.internal",
        port=6543,
        source="app-config.yaml, APP_CONFIG_backend_database_connection_host, "
        "APP_CONFIG_backend_database_connection_port: backend.database",
    )


def test_two_files_later_wins_and_objects_merge(project: Path) -> None:
    write(
        project,
        "app-config.yaml",
        """\
backend:
  database:
    client: pg
    connection:
      host: localhost
      port: 5432
      user: postgres
      password: ${POSTGRES_PASSWORD}
""",
    )
    write(
        project,
        "app-config.local.yaml",
        "backend:\n  database:\n    connection:\n      host: dev-db\n      password: local-pw\n",
    )
    files = find_config_files(project, [], env={})
    assert files == [project / "app-config.yaml", project / "app-config.local.yaml"]
    config = load(files, {})  # POSTGRES_PASSWORD is unset, but the local file gives the password
    assert plugin_database(config, "catalog", base=project) == pg(
        host="dev-db",
        user="postgres",
        password="local-pw",
        source="app-config.yaml, app-config.local.yaml: backend.database",
    )


@pytest.mark.parametrize(
    ("base", "local", "changed"),
    [
        ("", "prefix: dev_", {"database": "dev_catalog"}),
        ("", "pluginDivisionMode: schema", {"database": None, "schema": "catalog", "settings": SCHEMA_MODE}),
        (
            "    pluginDivisionMode: schema\n",
            "schemaPrefix: kw_",
            {"database": None, "schema": "kw_catalog", "settings": SCHEMA_MODE},
        ),
    ],
)
def test_source_names_a_file_that_only_changes_how_the_database_is_named(
    project: Path, base: str, local: str, changed: dict[str, object]
) -> None:
    """`knexwrap config`'s "from" column: a local file that only renames the plugin's database is named too."""
    first = write(project, "app-config.yaml", PRODUCTION + base)
    second = write(project, "app-config.local.yaml", f"backend:\n  database:\n    {local}\n")
    assert plugin_database(load([first, second], PG_ENV), "catalog", base=project) == pg(
        **changed, source="app-config.yaml, app-config.local.yaml: backend.database"
    )


def test_null_in_a_later_file_removes_a_key(project: Path) -> None:
    first = write(project, "app-config.yaml", PRODUCTION + "    prefix: bs_\n")
    second = write(project, "app-config.local.yaml", "backend:\n  database:\n    prefix: null\n")
    database = plugin_database(load([first, second], PG_ENV), "catalog", base=project)
    assert database is not None
    assert database.database == "backstage_plugin_catalog"


def test_find_config_files_with_backstage_env_and_explicit_files(project: Path) -> None:
    for name in ("app-config.yaml", "app-config.production.yaml", "app-config.local.yaml", "other.yaml"):
        write(project, name, "{}\n")
    assert find_config_files(project, [], env={"BACKSTAGE_ENV": "production"}) == [
        project / "app-config.yaml",
        project / "app-config.production.yaml",
        project / "app-config.local.yaml",
    ]
    assert find_config_files(project, ["other.yaml", "app-config.yaml"]) == [
        project / "other.yaml",
        project / "app-config.yaml",
    ]
    with pytest.raises(ConfigError, match=r"^--config missing\.yaml: no such file$"):
        find_config_files(project, ["missing.yaml"])


def test_no_config_files_and_no_database_section(project: Path) -> None:
    assert find_config_files(project, [], env={}) == []
    assert plugin_database(load([], {}), "catalog", base=project) is None
    assert database_for(project, "app:\n  title: Backstage\n") is None


def test_load_returns_the_merged_config(project: Path) -> None:
    config = load([write(project, "app-config.yaml", PRODUCTION)], {"POSTGRES_HOST": "h"})
    assert isinstance(config, LoadedConfig)
    assert config["backend"]["database"] == {"client": "pg", "connection": {"host": "h"}}


# ------------------------------------------------------------------------------------------- errors


def test_unset_password_is_dropped_as_backstage_drops_it(project: Path) -> None:
    # A trust-auth server needs no password: Backstage leaves the key out and connects.
    env = {k: v for k, v in PG_ENV.items() if k != "POSTGRES_PASSWORD"}
    config = load([write(project, "app-config.production.yaml", PRODUCTION)], env)
    database = plugin_database(config, "catalog", base=project)
    assert database == pg(password=None, source="app-config.production.yaml: backend.database")


def test_unset_host_and_port_take_the_driver_defaults_and_say_so(project: Path) -> None:
    env = {"POSTGRES_USER": "backstage"}
    database = database_for(project, PRODUCTION, env=env)
    assert database == pg(
        host="localhost",
        port=5432,
        password=None,
        defaults=(
            "backend.database.connection.host: ${POSTGRES_HOST} is not set in app-config.yaml; "
            "using the default localhost",
            "backend.database.connection.port: ${POSTGRES_PORT} is not set in app-config.yaml; using the default 5432",
        ),
    )
    no_user = database_for(project, PRODUCTION, env={k: v for k, v in PG_ENV.items() if k != "POSTGRES_USER"})
    assert no_user is not None
    assert (no_user.user, no_user.defaults) == (
        None,
        (
            "backend.database.connection.user: ${POSTGRES_USER} is not set in app-config.yaml; "
            "the driver connects as the operating system user ($USER)",
        ),
    )


def test_error_missing_variable_for_the_whole_connection(project: Path) -> None:
    text = "backend:\n  database:\n    client: pg\n    connection: ${DATABASE_URL}\n"
    assert config_error(project, text) == "app-config.yaml: backend.database.connection: ${DATABASE_URL} is not set"


def test_unset_env_include_is_dropped(project: Path) -> None:
    text = PRODUCTION.replace("${POSTGRES_PASSWORD}", "\n        $env: DB_SECRET")
    assert database_for(project, text, env=PG_ENV) == pg(password=None)


def test_error_yaml_syntax(project: Path) -> None:
    text = "backend:\n  database:\n    client: pg\n   connection: x\n"
    assert config_error(project, text) == (
        "app-config.yaml: line 4, column 4: YAML syntax error: expected <block end>, but found '<block mapping start>'"
    )


def test_error_duplicate_key(project: Path) -> None:
    text = "backend:\n  database:\n    client: pg\n    client: mysql2\n"
    assert (
        config_error(project, text) == "app-config.yaml: line 4, column 5: duplicate key 'client': keys must be unique"
    )


def test_error_unknown_client(project: Path) -> None:
    text = PRODUCTION.replace("client: pg", "client: postgres")
    assert config_error(project, text, env=PG_ENV) == (
        "app-config.yaml: backend.database.client: unsupported client 'postgres': "
        "Backstage accepts pg, better-sqlite3, sqlite3, mysql2, mysql"
    )


def test_error_memory_connection_string(project: Path) -> None:
    # the create-app template's app-config.yaml
    text = "backend:\n  database:\n    client: better-sqlite3\n    connection: ':memory:'\n"
    assert config_error(project, text) == (
        "app-config.yaml: backend.database.connection: ':memory:' is an in-memory SQLite database that only the "
        "Backstage process can open; set connection.directory to keep the plugin databases in files"
    )


def test_error_memory_filename(project: Path) -> None:
    text = """\
backend:
  database:
    client: better-sqlite3
    connection:
      directory: ./sqlite-data
    plugin:
      catalog:
        connection:
          filename: ':memory:'
"""
    assert config_error(project, text) == (
        "app-config.yaml: backend.database.plugin.catalog.connection.filename: ':memory:' is an in-memory SQLite "
        "database that only the Backstage process can open; set connection.directory to keep the plugin databases "
        "in files"
    )


def test_error_base_sqlite_filename(project: Path) -> None:
    text = "backend:\n  database:\n    client: better-sqlite3\n    connection:\n      filename: backstage.db\n"
    assert config_error(project, text) == (
        "app-config.yaml: backend.database.connection.filename: a file name is not supported for the base SQLite "
        "connection: use connection.directory, or set backend.database.plugin.<pluginId>.connection.filename"
    )


def test_error_file_include_missing(project: Path) -> None:
    text = PRODUCTION.replace("${POSTGRES_PASSWORD}", "\n        $file: secrets/missing")
    assert config_error(project, text, env=PG_ENV) == (
        "app-config.yaml: backend.database.connection.password: $file secrets/missing does not exist"
    )


def test_error_schema_mode_on_sqlite(project: Path) -> None:
    text = """\
backend:
  database:
    client: better-sqlite3
    pluginDivisionMode: schema
    connection:
      directory: ./sqlite-data
"""
    assert config_error(project, text) == (
        "app-config.yaml: backend.database.pluginDivisionMode: 'schema' is only supported by the pg client, "
        "not better-sqlite3"
    )


def test_error_schema_mode_on_mysql(project: Path) -> None:
    text = PRODUCTION_MYSQL.replace("client: mysql2", "client: mysql2\n    pluginDivisionMode: schema")
    env = {"MYSQL_HOST": "h", "MYSQL_PORT": "3306", "MYSQL_USER": "u", "MYSQL_PASSWORD": "p"}
    assert config_error(project, text, env=env) == (
        "app-config.yaml: backend.database.pluginDivisionMode: 'schema' is only supported by the pg client, not mysql2"
    )


def test_error_client_missing(project: Path) -> None:
    text = "backend:\n  database:\n    connection:\n      host: localhost\n"
    assert config_error(project, text) == "app-config.yaml: backend.database.client: is required and not set"


def test_error_connection_missing(project: Path) -> None:
    text = "backend:\n  database:\n    client: pg\n"
    assert config_error(project, text) == "app-config.yaml: backend.database.connection: is required and not set"


def test_error_bad_port_names_the_key(project: Path) -> None:
    env = {**PG_ENV, "POSTGRES_PORT": "five"}
    assert config_error(project, PRODUCTION, env=env) == (
        "app-config.yaml: backend.database.connection.port: must be a port number from 1 to 65535, not 'five'"
    )


def test_error_bad_connection_string_never_shows_the_password(project: Path) -> None:
    text = "backend:\n  database:\n    client: pg\n    connection: postgresql://u:hunter2@db:port/x\n"
    message = config_error(project, text)
    assert message == (
        "app-config.yaml: backend.database.connection: cannot parse the PostgreSQL connection string: "
        "the port is not a number from 0 to 65535"
    )
    assert "hunter2" not in message


def test_error_mysql_connection_string_with_another_protocol(project: Path) -> None:
    text = "backend:\n  database:\n    client: mysql2\n    connection: postgres://u:hunter2@db/x\n"
    message = config_error(project, text)
    assert message == (
        "app-config.yaml: backend.database.connection: cannot parse the MySQL connection string: "
        "unknown protocol 'postgres:' (mysql://user:password@host:port/database)"
    )


@pytest.mark.parametrize(
    ("kind", "provider"),
    [("cloudsql", "Google Cloud SQL IAM login"), ("azure", "Azure Entra ID token"), ("rds", "AWS RDS IAM token")],
)
def test_error_cloud_connection_type(project: Path, kind: str, provider: str) -> None:
    text = PRODUCTION.replace("      host:", f"      type: {kind}\n      host:")
    assert config_error(project, text, env=PG_ENV) == (
        f"app-config.yaml: backend.database.connection.type: connection type '{kind}' ({provider}) gets a "
        "short-lived password from the cloud provider when the backend connects, which knexwrap does not do: "
        "pass --config with an app-config file whose connection names a database user and password instead"
    )


KNEX_CONFIG = (
    PRODUCTION
    + """    knexConfig:
      searchPath: [tenant, public]
      pool: {max: 5}
      client: mysql2
      connection: {host: elsewhere}
    skipMigrations: yes
    ensureExists: false
    role: base_role
    plugin:
      catalog:
        role: catalog_role
        skipMigrations: 0
        ensureExists: true
        knexConfig:
          searchPath: [catalog_schema]
          migrations: {disableMigrationsListValidation: true}
"""
)


def test_knex_config_is_deep_merged_base_then_plugin_like_backstage(project: Path) -> None:
    catalog = database_for(project, KNEX_CONFIG, env=PG_ENV)
    app = database_for(project, KNEX_CONFIG, "app", env=PG_ENV)
    assert catalog is not None and app is not None
    # lodash.merge: lists by index; client and connection are Backstage's own and never come from knexConfig.
    assert catalog.settings == BackendSettings(
        knex_config={
            "searchPath": ["catalog_schema", "public"],
            "pool": {"max": 5},
            "migrations": {"disableMigrationsListValidation": True},
        },
        role="catalog_role",
        skip_migrations=False,
        ensure_exists=True,
    )
    assert catalog.schema == "catalog_schema"
    assert app.settings == BackendSettings(
        knex_config={"searchPath": ["tenant", "public"], "pool": {"max": 5}},
        role="base_role",
        skip_migrations=True,
        ensure_exists=False,
    )
    assert (app.schema, app.database) == ("tenant", "backstage_plugin_app")


def test_schema_mode_puts_the_plugin_schema_over_the_first_search_path_entry(project: Path) -> None:
    text = KNEX_CONFIG.replace("    client: pg\n", "    client: pg\n    pluginDivisionMode: schema\n")
    app = database_for(project, text, "app", env=PG_ENV)
    assert app is not None
    assert (app.schema, app.settings.knex_config["searchPath"]) == ("app", ["app", "public"])


def test_role_is_ignored_by_sqlite_like_the_backend(project: Path) -> None:
    text = "backend:\n  database:\n    client: better-sqlite3\n    role: owner\n    connection: {directory: db}\n"
    database = database_for(project, text)
    assert database is not None and database.settings.role is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "    knexConfig: [1]\n",
            "app-config.yaml: backend.database.knexConfig: must be a mapping, not a list",
        ),
        (
            "    skipMigrations: sometimes\n",
            "app-config.yaml: backend.database.skipMigrations: must be a boolean, not a string",
        ),
        (
            "    knexConfig: {migrations: {tableName: other}}\n",
            "app-config.yaml: backend.database.knexConfig.migrations.tableName: moves the migrations table of every "
            "plugin that names none, which knexwrap does not follow yet: remove it, or run knex for this plugin by "
            "hand",
        ),
    ],
)
def test_error_backend_settings(project: Path, text: str, error: str) -> None:
    assert config_error(project, PRODUCTION + text, env=PG_ENV) == error


def test_error_invalid_app_config_variable(project: Path) -> None:
    path = write(project, "app-config.yaml", PRODUCTION)
    with pytest.raises(ConfigError) as caught:
        load([path], {**PG_ENV, "APP_CONFIG_backend__database": "1"})
    assert caught.value.message == "APP_CONFIG_backend__database: 'backend__database' is not a valid config key"


def test_error_app_config_variable_value_is_never_shown(project: Path) -> None:
    path = write(project, "app-config.yaml", PRODUCTION)
    with pytest.raises(ConfigError) as caught:
        load([path], {"APP_CONFIG_backend_database_connection_password": "null"})
    assert caught.value.message == "APP_CONFIG_backend_database_connection_password: the value may not be null"


def test_error_names_the_environment_variable_that_set_a_bad_value(project: Path) -> None:
    env = {**PG_ENV, "APP_CONFIG_backend_database_client": "oracle"}
    config = load([write(project, "app-config.yaml", PRODUCTION)], env)
    with pytest.raises(ConfigError) as caught:
        plugin_database(config, "catalog", base=project)
    assert caught.value.message == (
        "APP_CONFIG_backend_database_client: backend.database.client: unsupported client 'oracle': "
        "Backstage accepts pg, better-sqlite3, sqlite3, mysql2, mysql"
    )


def test_knex_config_reaches_the_knex_settings_under_what_knexwrap_owns() -> None:
    from knexwrap.config.connection import Connection

    settings = BackendSettings(
        knex_config={"debug": True, "pool": {"max": 3}, "acquireConnectionTimeout": 1, "searchPath": ["s", "public"]},
        role="owner",
    )
    connection = Connection("pg", "db", "h", 5432, "u", schema="s", settings=settings)
    # debug would print queries onto the output knexwrap parses; the time limit is knexwrap's own.
    assert connection.knex_config(5000) == {
        "pool": {"max": 3},
        "acquireConnectionTimeout": 5000,
        "searchPath": ["s", "public"],
        "client": "pg",
        "connection": {"host": "h", "port": 5432, "user": "u", "database": "db"},
        "useNullAsDefault": False,
        "knexwrapRole": "owner",
    }
    sqlite = Connection("better-sqlite3", "/x/catalog.sqlite", settings=settings)
    assert "knexwrapRole" not in sqlite.knex_config(5000)


def test_client_flag_other_than_app_config_says_which_client_app_config_names(project: Path) -> None:
    from knexwrap.config.connection import Options, build

    config = load([write(project, "app-config.yaml", PRODUCTION)], PG_ENV)
    with pytest.raises(ConfigError) as caught:
        build(Options(client="mysql2"), "catalog", PG_ENV, config, project)
    assert caught.value.message == "the mysql2 client needs --host and --user (app-config's client is pg, not mysql2)"
    mysql = load([write(project, "app-config.yaml", PRODUCTION_MYSQL)], {"MYSQL_HOST": "m", "MYSQL_USER": "root"})
    built = build(Options(client="mysql2"), "catalog", {}, mysql, project)
    assert (built.host, built.user, built.port, built.database) == ("m", "root", 3306, "backstage_plugin_catalog")
    assert built.notes == (
        "backend.database.connection.port: ${MYSQL_PORT} is not set in app-config.yaml; using the default 3306",
    )


def test_downgrade_plan_counts_nothing_applied_at_start_under_skip_migrations() -> None:
    from knexwrap.state.report import DatabaseReport, MigrationRow, SetReport
    from knexwrap.upgrade.plan import _set_plan
    from knexwrap.upgrade.target import Destination, TargetInstall

    rows = (MigrationRow("1_a.js", "applied", 1), MigrationRow("3_c.js", "applied", 1))
    found = SetReport("p", "2.0.0", "knex_migrations", "/nowhere", "in_sync", True, "3", False, 1, None, {}, rows)
    key = ("catalog", "knex_migrations")
    target = TargetInstall(Destination("install", "older"), {key: ("1_a.js", "2_b.js")}, {key: "1.0.0"}, {})
    for skip, on_start in ((False, ("2_b.js",)), (True, ())):
        db = DatabaseReport("catalog", "pg", "postgresql://x", "in_sync", None, (found,), skip)
        planned = _set_plan(db, found, target, key)
        assert planned is not None
        assert (planned.revert, planned.applies_on_start) == (("3_c.js",), on_start)


def test_sqlite_flags_keep_the_backend_settings_of_app_config(project: Path) -> None:
    from knexwrap.config.connection import Options, build

    text = (
        "backend:\n  database:\n    client: better-sqlite3\n    skipMigrations: true\n    connection: {directory: db}\n"
    )
    config = load([write(project, "app-config.yaml", text)], {})
    (project / "elsewhere").mkdir()
    built = build(Options(sqlite_dir="elsewhere"), "catalog", {}, config, project)
    assert (built.database, built.source) == (str(project / "elsewhere" / "catalog.sqlite"), "command line")
    assert built.settings.skip_migrations is True
