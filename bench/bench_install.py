"""`knexwrap status` for a whole install against the raw Knex CLI calls that give the same answer.

Builds a project of 10 generated plugins (5 migrations each) plus a scheduler set living in every
plugin database, migrates 10 PostgreSQL databases with the real knex, then times, in one run:
- knexwrap status (the whole install, one node process),
- the raw sequence: one `knex migrate:list` per database x set, one after another,
- knexwrap status PLUGIN against one raw `knex migrate:list`.
Targets: whole install at most 0.15x the raw sequence; status PLUGIN at most 1.3x one raw call.

    .venv/bin/python bench/bench_install.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_MODULES = ROOT / "fixtures" / "project" / "node_modules"
KNEXWRAP = Path(sys.executable).parent / "knexwrap"
PLUGINS = 10
SCHEDULER = "backstage_backend_tasks__knex_migrations"
MIGRATION = (
    "exports.up = async k => k.schema.createTable('{t}', t => t.increments());\n"
    "exports.down = async k => k.schema.dropTable('{t}');\n"
)


def write_package(folder: Path, name: str, meta: Mapping[str, object], migrations: Mapping[str, str]) -> None:
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", **meta}))
    for sub, prefix in migrations.items():
        (folder / sub).mkdir(parents=True)
        for i in range(5):
            (folder / sub / f"2024010{i}000000_{prefix}_{i}.js").write_text(MIGRATION.format(t=f"{prefix}_{i}"))


def make_project(root: Path) -> Path:
    modules = root / "node_modules"
    (modules / ".bin").mkdir(parents=True)
    for name in ("knex", "pg"):
        (modules / name).symlink_to(FIXTURE_MODULES / name)
    (modules / ".bin" / "knex").symlink_to(FIXTURE_MODULES / "knex" / "bin" / "cli.js")
    for n in range(PLUGINS):
        meta = {"backstage": {"role": "backend-plugin", "pluginId": f"p{n}"}}
        write_package(
            modules / "@bench" / f"plugin-p{n}-backend", f"@bench/plugin-p{n}-backend", meta, {"migrations": f"p{n}"}
        )
    # A stand-in of the scheduler's set (our own files), where knexwrap's table of sets expects it.
    write_package(
        modules / "@backstage" / "backend-defaults",
        "@backstage/backend-defaults",
        {},
        {"migrations/scheduler": "tasks"},
    )
    return root


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed: {done.stderr.decode()[:400]}")
    return time.perf_counter() - start


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True, capture_output=True)


def raw_calls(project: Path, prefix: str) -> list[list[str]]:
    calls = []
    for n in range(PLUGINS):
        url = f"postgresql://postgres@127.0.0.1:5432/{prefix}p{n}"
        own = project / "node_modules" / "@bench" / f"plugin-p{n}-backend" / "migrations"
        tasks = project / "node_modules" / "@backstage" / "backend-defaults" / "migrations" / "scheduler"
        base = [str(project / "node_modules" / ".bin" / "knex"), "migrate:list", "--client", "pg", "--connection", url]
        calls.append([*base, "--migrations-directory", str(own)])
        calls.append([*base, "--migrations-directory", str(tasks), "--migrations-table-name", SCHEDULER])
    return calls


def median_ms(argvs: list[list[str]], cwd: Path, env: dict[str, str], rounds: int) -> float:
    return statistics.median(sum(run(a, cwd, env) for a in argvs) for _ in range(rounds)) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    prefix = f"kwbench_{uuid.uuid4().hex[:6]}_"
    env = {**os.environ, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_USER": "postgres", "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        for n in range(PLUGINS):
            psql(f'create database "{prefix}p{n}"')
        try:
            calls = raw_calls(project, prefix)
            for call in calls:  # apply everything, so the answers are non-trivial
                run([call[0], "migrate:latest", *call[2:]], project, env)
            whole = [str(KNEXWRAP), "status", "--prefix", prefix]
            one = [str(KNEXWRAP), "status", "p0", "--prefix", prefix]
            run(whole, project, env)
            raw_ms, whole_ms = median_ms(calls, project, env, rounds), median_ms([whole], project, env, rounds)
            one_raw, one_ms = median_ms(calls[:1], project, env, rounds * 4), median_ms([one], project, env, rounds * 4)
        finally:
            for n in range(PLUGINS):
                psql(f'drop database if exists "{prefix}p{n}" with (force)')
    print(f"whole install, {PLUGINS} databases x 2 sets, median of {rounds}:")
    print(
        f"  raw knex sequence ({len(calls)} calls) {raw_ms:8.1f} ms   knexwrap status {whole_ms:7.1f} ms   "
        f"ratio {whole_ms / raw_ms:.3f}x (target 0.15x)"
    )
    print(
        f"  one raw migrate:list {one_raw:7.1f} ms   knexwrap status p0 {one_ms:7.1f} ms   "
        f"ratio {one_ms / one_raw:.2f}x (target 1.3x)"
    )
    return 0 if whole_ms / raw_ms <= 0.15 and one_ms / one_raw <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
