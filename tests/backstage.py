"""Real Backstage packages as test fixtures, fetched with `npm pack` at pinned versions.

The project commits none of Backstage's code, so the packages are downloaded on
first use and cached outside git (`.cache/`, or `$KNEXWRAP_TEST_CACHE`). Only
`package.json` and `migrations/**` are kept: that is all knex and knexwrap read,
and `npm pack` fetches one tarball without any dependency tree.

Standard library only, like servers.py, so it works before anything else is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Final

from servers import PgServer

ROOT: Final = Path(__file__).resolve().parents[1]
# Installed by `cd fixtures/project && npm ci`; the built projects borrow its modules.
FIXTURE_MODULES: Final = ROOT / "fixtures" / "project" / "node_modules"

CATALOG: Final = "@backstage/plugin-catalog-backend"
AUTH: Final = "@backstage/plugin-auth-backend"
SCAFFOLDER: Final = "@backstage/plugin-scaffolder-backend"
DEFAULTS: Final = "@backstage/backend-defaults"
INCREMENTAL: Final = "@backstage/plugin-catalog-backend-module-incremental-ingestion"
TASKS: Final = "@backstage/backend-tasks"
APP: Final = "@backstage/plugin-app-backend"
TECHDOCS: Final = "@backstage/plugin-techdocs-backend"
ANNOUNCEMENTS: Final = "@backstage-community/plugin-announcements-backend"

# Every package and version the tests use, checked against the tarballs:
# - catalog 1.24.0: 30 migrations, the first requires('uuid'); 4.0.5: 47 (17 more).
# - auth 0.17.4: 4 migrations and no backstage.pluginId; 0.31.0: 13, incl. 20230428155633_sessions.js.
# - scaffolder 4.3.0: 5 migrations (same files as 1.24.0).
# - backend-defaults 0.9.0: scheduler 2 + auth 1; 0.10.0 adds scheduler/20250411000000_last_run.js.
# - incremental ingestion 0.8.0: 2 migrations, table incremental_ingestion__knex_migrations.
# - backend-tasks 0.6.1: the scheduler's 2 migrations, byte-identical to backend-defaults 0.9.0's.
# - app-backend 0.5.20: 2 migrations; 20240113144027_assets-namespace.js's down deletes rows, drops a column.
# - techdocs 2.4.3: no migrations of its own (role backend-plugin, pluginId techdocs).
# - announcements 0.29.0: its migrations in db/migrations, handed to knex by its dist code.
PINNED: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        CATALOG: ("1.24.0", "4.0.5"),
        AUTH: ("0.17.4", "0.31.0"),
        SCAFFOLDER: ("4.3.0",),
        DEFAULTS: ("0.9.0", "0.10.0"),
        INCREMENTAL: ("0.8.0",),
        TASKS: ("0.6.1",),
        APP: ("0.5.20",),
        TECHDOCS: ("2.4.3",),
        ANNOUNCEMENTS: ("0.29.0",),
    }
)

# Migrations tables other than knex's default, as the packages' dist code names them.
SCHEDULER_TABLE: Final = "backstage_backend_tasks__knex_migrations"
KEYS_TABLE: Final = "backstage_backend_public_keys__knex_migrations"
INCREMENTAL_TABLE: Final = "incremental_ingestion__knex_migrations"

# Modules the built project links from FIXTURE_MODULES. uuid: catalog <= 3.5.x
# requires it inside a migration, resolved from the migration file's folder.
LINKED_MODULES: Final = ("knex", "pg", "better-sqlite3", "mysql2", "uuid")

# One slow registry answer must not hang the suite; npm gives up first and says why.
NPM_TIMEOUT_SECONDS: Final = 180
_NPM_FLAGS: Final = ("--ignore-scripts", "--fetch-timeout=60000", "--fetch-retries=1", "--loglevel=error")


class FetchFailed(RuntimeError):
    """npm could not deliver the package; the message carries npm's own words."""


class FixtureMissing(RuntimeError):
    """fixtures/project/node_modules lacks a module the built project links to."""


# ------------------------------------------------------------------------------ cache


def cache_root() -> Path:
    override = os.environ.get("KNEXWRAP_TEST_CACHE")
    return Path(override) if override else ROOT / ".cache" / "backstage"


def cache_dir(name: str, version: str, code: bool = False) -> Path:
    # A flat folder per package: "@scope/name" would otherwise nest a level deeper.
    return cache_root() / f"{name.replace('/', '+')}@{version}{'+code' if code else ''}"


def fetch(name: str, version: str, code: bool = False) -> Path:
    """The cached package folder (package.json + migrations/), downloaded once; with `code`, its built
    code (dist/**/*.js) and db/ too, for the tests that read how a package hands its sets to knex."""
    target = cache_dir(name, version, code)
    # A folder only ever appears by an atomic rename of a complete one, so its
    # presence alone proves it complete: no network on the second call.
    if (target / "package.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Staged next to the target: same filesystem, so the final rename is atomic.
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        tarball = _npm_pack(f"{name}@{version}", Path(tmp) / "pack")
        staged = Path(tmp) / "package"
        _extract(tarball, staged, code)
        _check_identity(staged, name, version)
        _publish(staged, target)
    return target


def _npm_pack(spec: str, dest: Path) -> Path:
    dest.mkdir()
    cmd = ["npm", "pack", spec, "--pack-destination", str(dest), *_NPM_FLAGS]
    try:
        # cwd=dest: anything npm writes next to its cwd lands in the throwaway folder.
        proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FetchFailed(f"`npm pack {spec}` gave no answer within {NPM_TIMEOUT_SECONDS}s") from exc
    except FileNotFoundError as exc:
        raise FetchFailed(f"`npm pack {spec}`: npm is not on PATH") from exc
    if proc.returncode != 0:
        raise FetchFailed(f"`npm pack {spec}` exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    tarballs = list(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise FetchFailed(f"`npm pack {spec}` left {len(tarballs)} tarballs; output: {proc.stdout.strip()[-500:]}")
    return tarballs[0]


def _wanted(member: str, code: bool = False) -> PurePosixPath | None:
    """The member's path inside the package if we keep it, else None."""
    parts = PurePosixPath(member).parts
    # npm tarballs put everything under package/; anything else, or any "..", is not ours.
    if len(parts) < 2 or parts[0] != "package" or ".." in parts:
        return None
    inner = PurePosixPath(*parts[1:])
    if inner == PurePosixPath("package.json") or (inner.parts[0] == "migrations" and len(inner.parts) > 1):
        return inner
    if (
        code
        and len(inner.parts) > 1
        and (inner.parts[0] == "db" or (inner.parts[0] == "dist" and inner.suffix == ".js"))
    ):
        return inner
    return None


def _extract(tarball: Path, dest: Path, code: bool = False) -> None:
    # Regular files only, written by us: links or device entries in a tarball never reach the disk.
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            inner = _wanted(member.name, code)
            if inner is None or not member.isfile():
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            out = dest.joinpath(*inner.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            with source, out.open("wb") as sink:
                shutil.copyfileobj(source, sink)


def _check_identity(staged: Path, name: str, version: str) -> None:
    # A range or dist-tag would resolve to some other version and poison the cache key.
    try:
        meta = json.loads((staged / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FetchFailed(f"{name}@{version}: the tarball has no readable package/package.json") from exc
    found = (meta.get("name"), meta.get("version"))
    if found != (name, version):
        raise FetchFailed(f"asked npm for {name}@{version}, got {found[0]}@{found[1]}")


def _publish(staged: Path, target: Path) -> None:
    try:
        staged.rename(target)
    except OSError:
        # Another test run published the same package first: theirs is as good as ours.
        if not (target / "package.json").is_file():
            raise


# ---------------------------------------------------------------------------- project


def package_dir(project: Path, name: str) -> Path:
    return project / "node_modules" / name


def make_project(root: Path, packages: Mapping[str, str], with_code: tuple[str, ...] = ()) -> Path:
    """A Backstage-like project at `root`: the given packages plus knex and the drivers (the packages
    named in `with_code` with their built code too)."""
    modules = root / "node_modules"
    (modules / ".bin").mkdir(parents=True, exist_ok=True)
    for module in LINKED_MODULES:
        _link(modules / module, _fixture_module(module))
    # What npm itself puts there; `node <project>/node_modules/.bin/knex` then runs the fixture's knex.
    _link(modules / ".bin" / "knex", _fixture_module("knex") / "bin" / "cli.js")
    for name, version in packages.items():
        _install(root, name, version, name in with_code)
    _write_manifest(root, dict(packages))
    return root


def swap(project: Path, name: str, version: str) -> Path:
    """Replace the installed `name` by `version`: the "upgrade/downgrade the code" step."""
    folder = _install(project, name, version)
    manifest = _read_manifest(project)
    manifest[name] = version
    _write_manifest(project, manifest)
    return folder


def _fixture_module(module: str) -> Path:
    path = FIXTURE_MODULES / module
    if not path.exists():
        raise FixtureMissing(f"{path} is missing: run `cd fixtures/project && npm ci` first")
    return path


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def _install(project: Path, name: str, version: str, code: bool = False) -> Path:
    # Fetched before anything is removed: a failed download leaves the project as it was.
    source = fetch(name, version, code)
    folder = package_dir(project, name)
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # A copy, not a symlink: Node resolves a migration's require() from its real
    # path, which must lie inside this project to find node_modules/uuid.
    shutil.copytree(source, folder)
    return folder


def _read_manifest(project: Path) -> dict[str, str]:
    meta = json.loads((project / "package.json").read_text(encoding="utf-8"))
    return dict(meta["dependencies"])


def _write_manifest(project: Path, dependencies: dict[str, str]) -> None:
    # A root package.json like a real backend's, so the project reads as one; knex does not need it.
    meta = {"name": "knexwrap-backstage-fixture", "private": True, "dependencies": dict(sorted(dependencies.items()))}
    (project / "package.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


KNEX_TIMEOUT_SECONDS: Final = 120


def knex(
    project: Path, pg: PgServer, db: str, command: str, folder: Path, table: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`node <project>/node_modules/.bin/knex <command>` the way knexwrap calls it."""
    cmd = ["node", str(project / "node_modules" / ".bin" / "knex"), command, "--client", "pg"]
    cmd += ["--connection", pg.url(db), "--migrations-directory", str(folder.resolve())]
    if table is not None:
        cmd += ["--migrations-table-name", table]
    # No colors, and no PG* variable of ours steering the driver to another server or user.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "FORCE_COLOR"}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        cmd, cwd=project, env=env, capture_output=True, text=True, timeout=KNEX_TIMEOUT_SECONDS, check=False
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """stdout of a knex call that must succeed; its stderr in the failure message otherwise."""
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return proc.stdout
