"""The README's install for an operator's repository: `python -m build`, then `pip install` of the wheel into
a fresh virtualenv, then `knexwrap --version` and a status from the repository's root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from contract import validate
from helpers import CLEAN_ENV, PROJECT, ROOT


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_built_wheel_installs_and_runs_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=tmp_path)
    [wheel] = dist.glob("knexwrap-*.whl")
    assert [p.name for p in dist.glob("knexwrap-*.tar.gz")] == [wheel.name.split("-py3")[0] + ".tar.gz"]
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert {"knexwrap/knex/js/knexfile.js", "knexwrap/knex/js/read_state.js", "knexwrap/knex/js/utc.js"} <= shipped
    schemas = {f"knexwrap/cli/schemas/{p.name}" for p in (ROOT / "knexwrap" / "cli" / "schemas").glob("*.json")}
    assert schemas and schemas <= shipped

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    _run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], cwd=tmp_path)
    command = str(venv / "bin" / "knexwrap")
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV and k != "VIRTUAL_ENV"}
    version = _run([command, "--version"], cwd=PROJECT, env=env).splitlines()
    assert version[0] == "knexwrap 0.1.0" and version[1].startswith("node 20.")
    assert version[2] == f"knex 3.3.0 ({PROJECT})"

    data = tmp_path / "db"
    data.mkdir()
    sqlite = ["--client", "better-sqlite3", "--sqlite-dir", str(data)]
    _run([command, "up", "catalog", *sqlite, "--yes"], cwd=PROJECT, env=env)
    out = _run([command, "status", *sqlite, "--json"], cwd=PROJECT, env=env)
    document = json.loads(out)
    validate(document)
    assert {d["plugin"]: d["state"] for d in document["databases"]} == {
        "app": "absent",
        "catalog": "behind",
        "user-settings": "absent",
    }
