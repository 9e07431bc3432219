"""Backstage-shaped yarn workspaces repositories made by a real `yarn install` (yarn 1 from npm).

Real packages (tests/backstage.py's cache, and the fixture project's knex) are repacked without their
dependencies, so yarn installs them offline in about a second; what they would need at run time (knex's
own dependencies, the drivers) Node finds in a node_modules beside the repository, linked to the fixture
project's. Standard library only.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from backstage import FIXTURE_MODULES, ROOT

TOOLS: Final = ROOT / "fixtures" / "tools"
YARN1: Final = TOOLS / "node_modules" / "yarn" / "bin" / "yarn.js"
_DROPPED_FIELDS: Final = ("dependencies", "peerDependencies", "devDependencies", "optionalDependencies", "scripts")


def ensure_tools() -> None:
    """fixtures/tools installed from its package-lock.json (what `make node` does), once."""
    if not YARN1.is_file():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TOOLS, check=True, timeout=300)


def repack(source: Path, out: Path, **changes: Any) -> Path:
    """`source` as an npm tarball without its dependencies (and package.json fields changed as given)."""
    source = source.resolve()
    meta = json.loads((source / "package.json").read_text(encoding="utf-8"))
    for key in _DROPPED_FIELDS:
        meta.pop(key, None)
    meta.update(changes)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        data = json.dumps(meta, indent=2).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for path in sorted(source.rglob("*")):
            inner = path.relative_to(source)
            if path.is_file() and inner != Path("package.json") and "node_modules" not in inner.parts:
                tar.add(path, f"package/{inner.as_posix()}")
    return out


def knex_tarball(folder: Path) -> Path:
    """The fixture project's knex (the real one the tests run), repacked."""
    return repack(FIXTURE_MODULES / "knex", folder / "knex.tgz")


def write_package(folder: Path, meta: Mapping[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


def outer_modules(base: Path) -> None:
    """`base/node_modules` -> the fixture project's: knex's own dependencies and the drivers resolve there."""
    link = base / "node_modules"
    if not link.exists():
        link.symlink_to(FIXTURE_MODULES)


def yarn1_install(repo: Path, cache: Path) -> str:
    """A real `yarn install` (yarn 1.22, offline: every dependency is a local tarball or a workspace)."""
    ensure_tools()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YARN_", "npm_"))}
    cmd = ["node", str(YARN1), "install", "--offline", "--non-interactive", "--no-progress", "--ignore-scripts"]
    proc = subprocess.run(
        [*cmd, "--cache-folder", str(cache)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return proc.stdout


YARN4: Final = TOOLS / "node_modules" / "@yarnpkg" / "cli-dist" / "bin" / "yarn.js"
# As create-app sets yarn 4 up (node-modules linker), offline: every dependency is local.
YARNRC: Final = "nodeLinker: node-modules\nenableTelemetry: false\nenableGlobalCache: false\nenableNetwork: false\n"


def yarn4_install(repo: Path) -> str:
    """A real `yarn install` with yarn 4 (@yarnpkg/cli-dist) and its node-modules linker."""
    ensure_tools()
    (repo / ".yarnrc.yml").write_text(YARNRC, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YARN_", "npm_"))}
    env["YARN_IGNORE_PATH"] = "1"  # this yarn, not one a parent folder's .yarnrc.yml points at
    env["YARN_ENABLE_IMMUTABLE_INSTALLS"] = "false"  # under CI=true yarn 4 refuses to write the lockfile it makes
    proc = subprocess.run(
        ["node", str(YARN4), "install"], cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout
