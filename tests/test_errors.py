"""Bad input and missing tools: one line on stderr, the documented exit code, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import PROJECT, knexwrap
from servers import PgServer

FIXTURE_MODULES = PROJECT / "node_modules"


def sqlite(folder: Path) -> list[str]:
    return ["--client", "better-sqlite3", "--sqlite-dir", str(folder)]


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_node_not_on_path(tmp_path: Path) -> None:
    (tmp_path / "catalog.sqlite").touch()
    result = knexwrap("status", "catalog", *sqlite(tmp_path), env={"PATH": str(tmp_path)})
    assert result.code == 4
    assert one_error_line(result.err) == (
        "knexwrap: error: node is not installed or not on PATH (knexwrap runs the project's knex with it)"
    )


def test_knex_not_installed(tmp_path: Path) -> None:
    result = knexwrap("status", "catalog", "--project-dir", str(tmp_path), *sqlite(tmp_path))
    assert result.code == 4
    assert one_error_line(result.err) == (
        f"knexwrap: error: --project-dir {tmp_path}: no node_modules/.bin/knex there (run npm install in it)"
    )
    nowhere = knexwrap("status", "catalog", *sqlite(tmp_path), cwd=tmp_path)
    assert nowhere.code == 4
    assert "no node_modules/.bin/knex in" in one_error_line(nowhere.err)


def test_database_driver_not_installed(tmp_path: Path) -> None:
    (tmp_path / "catalog.sqlite").touch()
    result = knexwrap("current", "catalog", "--client", "sqlite3", "--sqlite-dir", str(tmp_path), "--json")
    assert result.code == 4
    assert one_error_line(result.err) == (
        "knexwrap: error: the database driver 'sqlite3' is not installed in the project: run npm install sqlite3"
    )
    assert result.json()["error"]["code"] == "driver_missing"


def test_usage_errors_are_one_line_with_code_2() -> None:
    result = knexwrap("status", "catalog", "--no-such-option")
    assert result.code == 2
    assert one_error_line(result.err) == "knexwrap: error: No such option '--no-such-option'."
    missing = knexwrap("down")
    assert missing.code == 2
    assert one_error_line(missing.err) == "knexwrap: error: Missing argument 'PLUGIN'."


def test_unknown_client_and_bad_timeout(tmp_path: Path) -> None:
    unknown = knexwrap("status", "catalog", "--client", "oracle")
    assert (unknown.code, one_error_line(unknown.err)) == (
        3,
        "knexwrap: error: unknown client 'oracle': use one of pg, better-sqlite3, sqlite3, mysql2",
    )
    timeout = knexwrap("status", "catalog", *sqlite(tmp_path), "--timeout", "0")
    assert (timeout.code, one_error_line(timeout.err)) == (
        3,
        "knexwrap: error: --timeout must be a positive number of seconds",
    )


def make_project(root: Path, plugins: dict[str, tuple[str, str]]) -> Path:
    """A project with knex linked in and plugin packages of our own: name -> (plugin id, role)."""
    modules = root / "node_modules"
    (modules / ".bin").mkdir(parents=True)
    (modules / ".bin" / "knex").symlink_to(FIXTURE_MODULES / "knex" / "bin" / "cli.js")
    (modules / "knex").symlink_to(FIXTURE_MODULES / "knex")
    for name, (plugin_id, role) in plugins.items():
        folder = modules / name
        (folder / "migrations").mkdir(parents=True)
        meta = {"name": name, "version": "1.0.0", "backstage": {"role": role, "pluginId": plugin_id}}
        (folder / "package.json").write_text(json.dumps(meta))
    return root


def test_ambiguous_plugin_lists_what_was_found(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, {"@a/plugin-x-backend": ("x", "backend-plugin"), "@b/plugin-x-backend": ("x", "backend-plugin")}
    )
    result = knexwrap("status", "x", *sqlite(tmp_path), cwd=project)
    assert (result.code, one_error_line(result.err)) == (
        3,
        "knexwrap: error: plugin id 'x' is declared by several packages with migrations: x (@a/plugin-x-backend), "
        "x (@b/plugin-x-backend); name the package instead",
    )
    by_package = knexwrap("status", "@b/plugin-x-backend", *sqlite(tmp_path), cwd=project)
    assert (by_package.code, by_package.out.splitlines()[0]) == (  # resolved; its SQLite file does not exist yet
        0,
        f"x (@b/plugin-x-backend) in {tmp_path}/x.sqlite, table knex_migrations",
    )


def test_a_module_sharing_the_plugin_id_does_not_make_it_ambiguous(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        {
            "@a/plugin-x-backend": ("x", "backend-plugin"),
            "@a/plugin-x-backend-module-y": ("x", "backend-plugin-module"),
        },
    )
    result = knexwrap("current", "x", *sqlite(tmp_path), cwd=project)
    assert result.err == f"knexwrap: error: SQLite database {tmp_path}/x.sqlite does not exist\n"


def test_env_file_and_the_real_environment(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    env_file = tmp_path / "db.env"
    env_file.write_text(f"POSTGRES_HOST={pg.host}\nPOSTGRES_PORT={pg.port}\nPOSTGRES_USER={pg.user}\n")
    from_file = knexwrap("current", "catalog", "--database", pg_database, "--env-file", str(env_file), "--json")
    assert from_file.code == 0, from_file.err
    doc = from_file.json()
    assert (doc["server"], doc["database"]) == (f"postgresql://{pg.user}@{pg.host}:{pg.port}", pg_database)
    # A variable set in the shell wins over the file: here it points at a closed port.
    shell_wins = knexwrap(
        "current", "catalog", "--database", pg_database, "--env-file", str(env_file), env={"POSTGRES_PORT": "1"}
    )
    assert shell_wins.code == 5
    missing = knexwrap("status", "catalog", "--env-file", str(tmp_path / "nope.env"))
    assert (missing.code, one_error_line(missing.err)) == (
        3,
        f"knexwrap: error: --env-file {tmp_path}/nope.env: no such file",
    )


def test_dot_env_in_the_project_folder(pg: PgServer, pg_database: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, {"@a/plugin-x-backend": ("x", "backend-plugin")})
    (project / ".env").write_text(f"POSTGRES_HOST={pg.host}\nPOSTGRES_PORT={pg.port}\nPOSTGRES_USER={pg.user}\n")
    (project / "node_modules" / "pg").symlink_to(FIXTURE_MODULES / "pg")
    result = knexwrap("status", "x", "--database", pg_database, "--json", cwd=project)
    assert result.code == 0, result.err
    assert result.json()["state"] == "in_sync"


def test_ask_password_prompts_and_keeps_it_out_of_output(pg: PgServer, pg_database: str) -> None:
    env = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
    result = knexwrap("current", "catalog", "--database", pg_database, "--ask-password", env=env, input="s3cr3t pw\n")
    assert result.code == 0, result.err
    assert "s3cr3t pw" not in result.out + result.err
    assert result.err.startswith("Database password:")


@pytest.mark.parametrize("command", ["status", "current", "latest", "down", "rollback", "unlock", "up"])
def test_every_command_gives_a_json_error_document(command: str) -> None:
    result = knexwrap(command, "no-such-plugin", "--json", env={"POSTGRES_HOST": "x", "POSTGRES_USER": "y"})
    assert result.code == 3
    doc = result.json()
    assert doc["error"]["code"] == "plugin_not_found" and doc["error"]["exit_code"] == 3
    where = {k: doc[k] for k in ("schema_version", "command", "plugin", "server", "database")}
    assert where == {
        "schema_version": 1,
        "command": command,
        "plugin": "no-such-plugin",
        "server": None,
        "database": None,
    }
    assert os.linesep not in doc["error"]["message"]
