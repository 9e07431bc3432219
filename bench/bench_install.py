"""`knexwrap status` of a whole install against the raw Knex CLI calls that give the same answer.

Builds two projects of generated plugins (5 migrations each) plus the scheduler's and the plugin keys'
sets, which live in every plugin database: 10 plugins (10 databases x 3 sets) and 50 (50 x 3). One
database is migrated with the real knex and cloned (CREATE DATABASE ... TEMPLATE) for the others. Then,
in interleaved rounds:
- the raw sequence: one `knex migrate:list` per database x set of the 10-plugin install, one after another,
- knexwrap status of the 10-plugin install, and of the 50-plugin install.
Targets: 10 x 3 at most 0.10x the raw sequence; 50 x 3 at most 2.5x the time of 10 x 3.

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
SMALL, LARGE = 10, 50
DEFAULTS = "@backstage/backend-defaults"
# The shared sets and their tables, where knexwrap's table of sets (install/sets.py) expects them.
SHARED = {
    "migrations/scheduler": "backstage_backend_tasks__knex_migrations",
    "migrations/auth": "backstage_backend_public_keys__knex_migrations",
}
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


def plugin_folder(project: Path, n: int) -> Path:
    return project / "node_modules" / "@bench" / f"plugin-p{n}-backend"


def make_project(root: Path, plugins: int) -> Path:
    modules = root / "node_modules"
    (modules / ".bin").mkdir(parents=True)
    for name in ("knex", "pg"):
        (modules / name).symlink_to(FIXTURE_MODULES / name)
    (modules / ".bin" / "knex").symlink_to(FIXTURE_MODULES / "knex" / "bin" / "cli.js")
    for n in range(plugins):
        meta = {"backstage": {"role": "backend-plugin", "pluginId": f"p{n}"}}
        # Every plugin's own tables are named alike, so that one migrated database serves as all of them.
        write_package(plugin_folder(root, n), f"@bench/plugin-p{n}-backend", meta, {"migrations": "own"})
    shared = {sub: sub.split("/")[1] for sub in SHARED}  # stand-ins of Backstage's sets: our own files
    write_package(modules / "@backstage" / "backend-defaults", DEFAULTS, {}, shared)
    return root


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed: {done.stderr.decode()[:400]}")
    return time.perf_counter() - start


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True, capture_output=True)


def list_calls(project: Path, database: str, n: int) -> list[list[str]]:
    """The raw `knex migrate:list` of each set of plugin pN's database."""
    knex = str(project / "node_modules" / ".bin" / "knex")
    base = [knex, "migrate:list", "--client", "pg", "--connection", f"postgresql://postgres@127.0.0.1:5432/{database}"]
    calls = [[*base, "--migrations-directory", str(plugin_folder(project, n) / "migrations")]]
    for sub, table in SHARED.items():
        folder = project / "node_modules" / "@backstage" / "backend-defaults" / sub
        calls.append([*base, "--migrations-directory", str(folder), "--migrations-table-name", table])
    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    run_id = uuid.uuid4().hex[:6]
    template, small, large = f"kwbench_{run_id}_t", f"kwbench_{run_id}_s_", f"kwbench_{run_id}_l_"
    env = {**os.environ, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_USER": "postgres", "NO_COLOR": "1"}
    made = [template]
    with tempfile.TemporaryDirectory() as tmp:
        project_s, project_l = make_project(Path(tmp, "small"), SMALL), make_project(Path(tmp, "large"), LARGE)
        psql(f'create database "{template}"')
        try:
            for call in list_calls(project_s, template, 0):  # apply everything: the answers are non-trivial
                run([call[0], "migrate:latest", *call[2:]], project_s, env)
            for name in [f"{small}p{n}" for n in range(SMALL)] + [f"{large}p{n}" for n in range(LARGE)]:
                psql(f'create database "{name}" template "{template}"')
                made.append(name)
            raw = [c for n in range(SMALL) for c in list_calls(project_s, f"{small}p{n}", n)]
            whole_s, whole_l = (
                [str(KNEXWRAP), "status", "--prefix", small],
                [str(KNEXWRAP), "status", "--prefix", large],
            )
            run(whole_s, project_s, env)  # warm the caches
            run(whole_l, project_l, env)
            times: dict[str, list[float]] = {"raw": [], "small": [], "large": []}
            for _ in range(rounds):
                times["raw"].append(sum(run(c, project_s, env) for c in raw))
                times["small"].append(run(whole_s, project_s, env))
                times["large"].append(run(whole_l, project_l, env))
        finally:
            for name in made:
                psql(f'drop database if exists "{name}" with (force)')
    raw_ms, small_ms, large_ms = (statistics.median(times[k]) * 1000 for k in ("raw", "small", "large"))
    ratio, growth = small_ms / raw_ms, large_ms / small_ms
    print(f"whole install, medians of {rounds} interleaved rounds (load average {os.getloadavg()[0]:.2f} at the end):")
    print(
        f"  {SMALL} databases x 3 sets: raw knex sequence ({len(raw)} calls) {raw_ms:8.1f} ms   "
        f"knexwrap status {small_ms:7.1f} ms   ratio {ratio:.3f}x (target 0.10x)"
    )
    print(
        f"  {LARGE} databases x 3 sets: knexwrap status {large_ms:7.1f} ms   "
        f"{LARGE}x3 / {SMALL}x3 = {growth:.2f}x (target 2.5x)"
    )
    return 0 if ratio <= 0.10 and growth <= 2.5 else 1


if __name__ == "__main__":
    sys.exit(main())
