"""knexwrap status PLUGIN against the raw `knex migrate:list` that gives the same answer, in one run.

Runs on the fixture project against the local PostgreSQL (a scratch database it creates and drops)
and against a SQLite file, alternating the two commands so that machine noise hits both alike.
Prints the medians and the ratio knexwrap / raw; the target is at most 1.3.

    .venv/bin/python bench/bench_status.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "fixtures" / "project"
KNEX = PROJECT / "node_modules" / ".bin" / "knex"
KNEXWRAP = Path(sys.executable).parent / "knexwrap"
MIGRATIONS = PROJECT / "plugins" / "catalog" / "migrations"
TARGET = 1.3


def run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench: {argv[0]} failed ({done.returncode}): {done.stderr.decode()[:500]}")
    return elapsed


def compare(name: str, raw: list[str], wrapped: list[str], env: dict[str, str], rounds: int) -> float:
    for argv in (raw, wrapped):  # warm the file cache and the server
        run(argv, env)
    raw_times, wrapped_times = [], []
    for _ in range(rounds):
        raw_times.append(run(raw, env))
        wrapped_times.append(run(wrapped, env))
    raw_ms, wrapped_ms = statistics.median(raw_times) * 1000, statistics.median(wrapped_times) * 1000
    ratio = wrapped_ms / raw_ms
    verdict = "ok" if ratio <= TARGET else f"OVER the {TARGET}x target"
    print(f"{name:<10} raw knex {raw_ms:7.1f} ms   knexwrap {wrapped_ms:7.1f} ms   ratio {ratio:.2f}x  {verdict}")
    return ratio


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True, capture_output=True)


def bench_pg(rounds: int) -> float:
    database = f"knexwrap_bench_{uuid.uuid4().hex[:8]}"
    psql(f'create database "{database}"')
    try:
        env = {**os.environ, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_USER": "postgres", "NO_COLOR": "1"}
        url = f"postgresql://postgres@127.0.0.1:5432/{database}"
        base = ["--client", "pg", "--connection", url, "--migrations-directory", str(MIGRATIONS)]
        run([str(KNEX), "migrate:latest", *base], env)
        raw = [str(KNEX), "migrate:list", *base]
        return compare("postgres", raw, [str(KNEXWRAP), "status", "catalog", "--database", database], env, rounds)
    finally:
        psql(f'drop database if exists "{database}" with (force)')


def bench_sqlite(rounds: int) -> float:
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
    print(f"knexwrap status catalog vs knex migrate:list, median of {args.rounds} alternating runs")
    ratios = [bench_pg(args.rounds), bench_sqlite(args.rounds)]
    return 0 if max(ratios) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
