"""Bad and hostile input: one line on stderr, the documented exit code, no traceback, bounded time and memory.

An alias bomb, aliases counted as Backstage's YAML parser counts them (fixtures/yaml/alias-cases.json holds
the verdicts of the real `yaml` package), recursive `$include`, deep nesting, a Latin-1 `.env`, and YAML
errors on a password's line.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from backstage import SCAFFOLDER, make_project, package_dir
from helpers import PROJECT, ROOT, knexwrap, sqlite_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import PgServer, unique_name

from knexwrap import errors
from knexwrap.config.yaml12 import _parse_yaml

PASSWORD = "hunter2"


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def config_file(folder: Path, body: str, name: str = "app-config.yaml") -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def database_config(connection: str) -> str:
    return f"backend:\n  database:\n    client: pg\n    connection:\n{connection}"


def bomb() -> str:
    """The billion laughs: each level nine aliases of the one before (9**9 values from ~350 bytes)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once_in_bounded_memory(tmp_path: Path) -> None:
    path = config_file(tmp_path, bomb() + "#" * (514 - len(bomb())) + "\n")
    assert path.stat().st_size == 515

    def limit_memory() -> None:  # 1 GiB of address space: the bomb needs many times that
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "knexwrap", "config", "--config", str(path)],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_memory,
        check=False,
    )
    assert time.monotonic() - started < 20
    assert done.returncode == 3, done.stderr
    assert one_line(done.stderr) == (
        f"knexwrap: error: {path}: line 4, column 8: YAML syntax error: excessive alias count "
        "(more than 100, as Backstage's YAML parser counts them)"
    )


def test_aliases_are_counted_as_backstages_yaml_parser_counts_them() -> None:
    cases = json.loads((ROOT / "fixtures" / "yaml" / "alias-cases.json").read_text())["cases"]
    verdicts = {}
    for case in cases:
        try:
            _parse_yaml(case["yaml"], case["name"])
            verdicts[case["name"]] = "ok"
        except errors.ConfigError as refused:
            assert "excessive alias count" in refused.message, refused.message
            verdicts[case["name"]] = "refused"
    assert verdicts == {c["name"]: c["verdict"] for c in cases}
    assert sorted(set(verdicts.values())) == ["ok", "refused"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (f"*{PASSWORD}", "line 7, column 17: YAML syntax error: found undefined alias"),
        (f"!{PASSWORD}", "line 7, column 17: YAML syntax error: could not determine a constructor for the tag"),
        (f"@{PASSWORD}", "line 7, column 17: YAML syntax error: found character that cannot start any token"),
        (f'"{PASSWORD}\\q"', "line 7, column 26: YAML syntax error: found unknown escape character"),
    ],
)
def test_a_yaml_error_on_the_passwords_line_never_quotes_it(tmp_path: Path, line: str, problem: str) -> None:
    body = database_config(f"      host: localhost\n      user: backstage\n      password: {line}\n")
    path = config_file(tmp_path, body + "  listen: 7007\n")
    result = knexwrap("config", "--config", str(path))
    assert result.code == 3
    assert one_line(result.err) == f"knexwrap: error: {path}: {problem}"
    assert PASSWORD not in result.err


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {
                "app-config.yaml": database_config("      $include: inc.yaml\n"),
                "inc.yaml": "host:\n  $include: inc.yaml\n",
            },
            "app-config.yaml: backend.database.connection.host: $include inc.yaml is already being included: a cycle",
        ),
        (
            {
                "app-config.yaml": database_config("      $include: one.yaml\n"),
                "one.yaml": "host:\n  $include: two.yaml\n",
                "two.yaml": "port:\n  $include: one.yaml\n",
            },
            "app-config.yaml: backend.database.connection.host.port: $include one.yaml is already being included: "
            "a cycle",
        ),
        (
            {"app-config.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n"},
            "app-config.yaml: line 1, column 103: YAML syntax error: nested deeper than 100 levels",
        ),
        (
            {"app-config.yaml": "a:\n" + "".join("  " * i + "k:\n" for i in range(1, 200))},
            "app-config.yaml: line 100, column 199: YAML syntax error: nested deeper than 100 levels",
        ),
        (
            {
                "app-config.yaml": database_config("      $include: deep.json\n"),
                "deep.json": '{"a":' * 5000 + "1" + "}" * 5000,
            },
            "app-config.yaml: backend.database.connection: $include deep.json: nested deeper than 100 levels",
        ),
        (
            # 98 levels in each file is fine; together they are too deep.
            {
                "app-config.yaml": "x:\n  y:\n    a:\n      $include: b.yaml\n",
                "b.yaml": "b: " + "[" * 98 + "1" + "]" * 98,
            },
            "app-config.yaml: x.y.a.b" + "[0]" * 96 + ": nested deeper than 100 levels",
        ),
    ],
    ids=["include-itself", "include-cycle", "deep-flow", "deep-block", "deep-json-include", "deep-across-files"],
)
def test_cycles_and_deep_nesting_are_one_line(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, body in files.items():
        config_file(tmp_path, body, name)
    result = knexwrap("config", "--project-dir", str(PROJECT), "--config", "app-config.yaml", cwd=tmp_path)
    assert (result.code, one_line(result.err)) == (3, f"knexwrap: error: {message}")


def test_a_deep_app_config_variable_is_one_line(tmp_path: Path) -> None:
    config_file(tmp_path, database_config("      host: localhost\n"))
    deep = "[" * 5000 + "]" * 5000
    result = knexwrap(
        "config",
        "--project-dir",
        str(PROJECT),
        "--config",
        "app-config.yaml",
        cwd=tmp_path,
        env={"APP_CONFIG_backend_database_extra": deep},
    )
    assert (result.code, one_line(result.err)) == (
        3,
        "knexwrap: error: APP_CONFIG_backend_database_extra: nested deeper than 100 levels",
    )


def test_a_latin1_byte_in_dot_env_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"POSTGRES_HOST=localhost\nPOSTGRES_USER=caf\xe9\n")
    result = knexwrap("config", "--project-dir", str(PROJECT), "--env-file", str(tmp_path / ".env"))
    assert (result.code, one_line(result.err)) == (
        3,
        f"knexwrap: error: {tmp_path / '.env'}: not UTF-8 text (byte 0xe9 on line 2)",
    )


# Pieces of YAML, some broken, some holding the password where a value goes: any mix of them is read or
# refused with a ConfigError whose message never holds the password.
_PIECES = [
    "a: 1\n",
    "b:\n  - x\n  - y\n",
    "c: &anchor [1, 2]\n",
    "d: *anchor\n",
    "e: [*anchor, *anchor, *anchor]\n",
    "f: {g: h}\n",
    "  indented: oops\n",
    "[",
    "]",
    "{",
    "- ",
    ": ",
    "? ",
    "\t",
    "'",
    '"',
    "%YAML 1.2\n",
    "---\n",
    "$include: nothing.yaml\n",
    f"password: *{PASSWORD}\n",
    f"password: !{PASSWORD}\n",
    f"password: &{PASSWORD}\n",
    f"password: @{PASSWORD}\n",
    f"password: `{PASSWORD}\n",
    f"password: !!{PASSWORD}\n",
    f"password: !<{PASSWORD}> x\n",
    f'password: "{PASSWORD}\\q"\n',
    f"password: {PASSWORD}: x\n",
    f"password: [{PASSWORD}\n",
]


@settings(max_examples=300, deadline=2000)
@given(st.lists(st.sampled_from(_PIECES), max_size=12))
def test_any_mix_of_yaml_pieces_is_read_or_refused_without_the_password(pieces: list[str]) -> None:
    text = "".join(pieces)
    try:
        _parse_yaml(text, "app-config.yaml")
    except errors.ConfigError as refused:
        assert PASSWORD not in refused.message, (text, refused.message)
        assert "\n" not in refused.message


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` and all below it read-only, for root too (the immutable attribute), restored afterwards."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-R", "+i", str(folder)], check=True)
    else:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-R", "-i", str(folder)], check=True)
        else:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_read_only_state_folder_stops_a_downgrade_before_any_change_with_exit_3(tmp_path: Path) -> None:
    project = make_project(tmp_path / "new", {SCAFFOLDER: "4.3.0"})
    older = make_project(tmp_path / "old", {SCAFFOLDER: "4.3.0"})
    (package_dir(older, SCAFFOLDER) / "migrations" / "20240401213200_workspace.js").unlink()
    (tmp_path / "db").mkdir()
    flags = ("--client", "better-sqlite3", "--sqlite-dir", str(tmp_path / "db"))
    assert knexwrap("latest", "scaffolder", "--yes", *flags, cwd=project).code == 0
    database = tmp_path / "db" / "scaffolder.sqlite"
    before = sqlite_rows(database, "select name from knex_migrations order by id")
    with read_only(project / ".knexwrap"):
        result = knexwrap("downgrade", "--to", str(older), "--yes", *flags, cwd=project)
    assert result.code == 3, result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    (error,) = [line for line in result.err.splitlines() if line.startswith("knexwrap: error:")]
    assert error.startswith(f"knexwrap: error: cannot use the state folder {project / '.knexwrap'}")
    assert error.endswith(": Operation not permitted")
    assert sqlite_rows(database, "select name from knex_migrations order by id") == before


@pytest.mark.parametrize("command", ["plan", "downgrade"])
def test_a_wrong_password_is_exit_6_for_plan_and_downgrade(scram_pg: PgServer, command: str) -> None:
    env = {
        "POSTGRES_HOST": scram_pg.host,
        "POSTGRES_PORT": str(scram_pg.port),
        "POSTGRES_USER": scram_pg.user,
        "POSTGRES_PASSWORD": "not the password",
    }
    prefix = unique_name("kw_auth") + "_"
    extra = ["--yes"] if command == "downgrade" else []
    result = knexwrap(command, "--to", str(PROJECT), "--prefix", prefix, *extra, env=env)
    assert result.code == 6, result.err
    where = f"postgresql://{scram_pg.user}@{scram_pg.host}:{scram_pg.port}/{prefix}"
    assert one_line(result.err).startswith(f"knexwrap: error: {where}")
    assert one_line(result.err).endswith(f': authentication failed for user "{scram_pg.user}"')
