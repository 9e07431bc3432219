"""Backstage's own readers as judges: @backstage/config-loader and pg-connection-string, pinned.

They are installed with `npm ci` from fixtures/judges (package.json + package-lock.json) on first use,
or by `make judges`; knexwrap never runs them. Standard library only, like servers.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

JUDGES: Final = Path(__file__).resolve().parents[1] / "fixtures" / "judges"
_STAMP: Final = JUDGES / "node_modules" / ".installed"


def install() -> None:
    """npm ci the pinned judges once (about 5 s); a failure fails the test that needed them."""
    lock = JUDGES / "package-lock.json"
    if _STAMP.is_file() and _STAMP.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=JUDGES,
        check=True,
        timeout=300,
    )
    _STAMP.touch()


def load_database(cwd: Path, files: Sequence[Path], env: Mapping[str, str]) -> dict[str, Any]:
    """backend.database as @backstage/config-loader loads it: {"database": tree|None} or {"error": text}.

    ``env`` is the whole environment of the loader (substitution and APP_CONFIG_* read it), plus PATH.
    """
    install()
    run = subprocess.run(
        ["node", str(JUDGES / "load_config.js"), *map(str, files)],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def parse_pg_urls(texts: Sequence[str]) -> list[dict[str, Any]]:
    """pg-connection-string's parse() of each text: {"fields": {...}} or {"error": text}."""
    install()
    run = subprocess.run(
        ["node", str(JUDGES / "parse_pg_url.js")],
        input=json.dumps(list(texts)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: list[dict[str, Any]] = json.loads(run.stdout)
    return result
