"""knexwrap status PLUGIN against the raw `knex migrate:list` that gives the same answer, in one run.

Runs on the fixture project against the local PostgreSQL (a scratch database it creates and drops)
and against a SQLite file, alternating the two commands so that machine noise hits both alike.
Prints the medians, the ratio knexwrap / raw with its spread (the ratios of the middle half of the
pairs), and where knexwrap's time goes. Targets: at most 1.10x on PostgreSQL, 1.20x on SQLite.

    .venv/bin/python bench/bench_status.py [--rounds 20]
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "fixtures" / "project"
KNEX = PROJECT / "node_modules" / ".bin" / "knex"
KNEX_JS = PROJECT / "node_modules" / "knex" / "knex.js"
KNEXWRAP = Path(sys.executable).parent / "knexwrap"
READER = ROOT / "knexwrap" / "knex" / "js" / "read_state.js"
MIGRATIONS = PROJECT / "plugins" / "catalog" / "migrations"
TARGETS = {"postgres": 1.10, "sqlite": 1.20}


def run(argv: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=PROJECT, env=env, input=stdin, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench: {argv[0]} failed ({done.returncode}): {done.stderr[:500]}")
    return elapsed


def median_ms(measure: Callable[[], float], rounds: int) -> float:
    return statistics.median(measure() for _ in range(rounds)) * 1000


def compare(name: str, raw: list[str], wrapped: list[str], env: dict[str, str], rounds: int) -> bool:
    for argv in (raw, wrapped):  # warm the file cache and the server
        run(argv, env)
    pairs = [(run(raw, env), run(wrapped, env)) for _ in range(rounds)]
    raw_ms = statistics.median(p[0] for p in pairs) * 1000
    wrapped_ms = statistics.median(p[1] for p in pairs) * 1000
    ratio, target = wrapped_ms / raw_ms, TARGETS[name]
    quartiles = statistics.quantiles(sorted(w / r for r, w in pairs), n=4)
    verdict = "ok" if ratio <= target else f"OVER the {target:.2f}x target"
    print(
        f"{name:<9} raw knex {raw_ms:6.1f} ms   knexwrap {wrapped_ms:6.1f} ms   ratio {ratio:.2f}x "
        f"(pairs' middle half {quartiles[0]:.2f}-{quartiles[2]:.2f}x)  target {target:.2f}x: {verdict}"
    )
    return ratio <= target


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True, capture_output=True)


def breakdown(wrapped: list[str], env: dict[str, str], request: dict[str, object], rounds: int) -> None:
    """Where `knexwrap status PLUGIN` spends its time: each part timed alone, all parts once per round
    (so that load drifting during the run hits them alike), medians in ms."""
    py, node = str(Path(sys.executable)), "node"
    reader_env = {**env, "KNEX_PATH": str(KNEX_JS)}
    loads = f"require({json.dumps(str(KNEX_JS))}); require('pg')"
    parts: dict[str, Callable[[], float]] = {
        "python": lambda: run([py, "-c", "pass"], env),
        "imports": lambda: run([py, "-c", "import knexwrap.cli.main, knexwrap.cli.text, tabulate"], env),
        "node": lambda: run([node, "-e", "0"], env),
        "requires": lambda: run([node, "-e", loads], env),
        "reader": lambda: run([node, str(READER)], reader_env, json.dumps(request)),
        "knexwrap": lambda: run(wrapped, env),
    }
    samples: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(rounds):
        for name, measure in parts.items():
            samples[name].append(measure())
    ms = {name: statistics.median(times) * 1000 for name, times in samples.items()}
    render = render_ms()
    print(f"where the time of `knexwrap status catalog` (PostgreSQL) goes, each part alone, medians of {rounds}:")
    imports = ms["imports"] - ms["python"]
    print(f"  Python start {ms['python']:6.1f} ms, imports (click, knexwrap, tabulate) {imports:6.1f} ms")
    print(f"  node start {ms['node']:6.1f} ms, knex + pg requires {ms['requires'] - ms['node']:6.1f} ms")
    print(f"  connect, queries and exit of the reader {ms['reader'] - ms['requires']:6.1f} ms; render {render:.1f} ms")
    serial = ms["imports"] + ms["reader"] + render
    print(f"  in series {serial:6.1f} ms; knexwrap, with its reader started first, {ms['knexwrap']:6.1f} ms")


def render_ms() -> float:
    """The table of a four-migration status, rendered as knexwrap prints it."""
    from knexwrap.cli import text
    from knexwrap.install.sets import MigrationSet
    from knexwrap.state import plugin, read, report

    files = tuple(sorted(os.listdir(MIGRATIONS)))
    applied = tuple(read.Applied(f, 1, "2024-01-01T00:00:00.000Z") for f in files[:2])
    state = read.SetState(True, applied, files, False)
    migrations = MigrationSet("catalog", "@knexwrap-fixture/plugin-catalog-backend", "1.0.0", str(MIGRATIONS))
    header = {
        "plugin": "catalog",
        "package": migrations.package,
        "client": "pg",
        "database": "postgresql://postgres@127.0.0.1:5432/backstage_plugin_catalog",
        "migrations_table": "knex_migrations",
        "migrations_directory": str(MIGRATIONS),
    }
    status = plugin.Status(header, report.set_report(migrations, state))
    text.render(status, "simple", False)  # tabulate's first call sets itself up
    samples = []
    for _ in range(20):
        begin = time.perf_counter()
        text.render(status, "simple", False)
        samples.append(time.perf_counter() - begin)
    return statistics.median(samples) * 1000


def bench_pg(rounds: int) -> bool:
    database = f"knexwrap_bench_{uuid.uuid4().hex[:8]}"
    psql(f'create database "{database}"')
    try:
        env = {**os.environ, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_USER": "postgres", "NO_COLOR": "1"}
        url = f"postgresql://postgres@127.0.0.1:5432/{database}"
        base = ["--client", "pg", "--connection", url, "--migrations-directory", str(MIGRATIONS)]
        run([str(KNEX), "migrate:latest", *base], env)
        wrapped = [str(KNEXWRAP), "status", "catalog", "--database", database]
        met = compare("postgres", [str(KNEX), "migrate:list", *base], wrapped, env, rounds)
        connection: dict[str, object] = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": database}
        config: dict[str, object] = {"client": "pg", "connection": connection}
        target = {"id": "t", "config": config, "tables": ["knex_migrations"]}
        request: dict[str, object] = {"targets": [target], "secrets": {}}
        breakdown(wrapped, env, request, max(rounds // 2, 5))
        return met
    finally:
        psql(f'drop database if exists "{database}" with (force)')


def bench_sqlite(rounds: int) -> bool:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "NO_COLOR": "1"}
        base = ["--client", "better-sqlite3", "--connection", f"{folder}/catalog.sqlite"]
        base += ["--migrations-directory", str(MIGRATIONS)]
        run([str(KNEX), "migrate:latest", *base], env)
        raw = [str(KNEX), "migrate:list", *base]
        wrapped = [str(KNEXWRAP), "status", "catalog", "--client", "better-sqlite3", "--sqlite-dir", folder]
        return compare("sqlite", raw, wrapped, env, rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if args.rounds < 15:
        parser.error("--rounds: at least 15 pairs")
    print(f"knexwrap status catalog vs knex migrate:list, medians of {args.rounds} interleaved pairs")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    met = [bench_sqlite(args.rounds), bench_pg(args.rounds)]
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other work on the machine shares its cores)")
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
