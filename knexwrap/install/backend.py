"""Which plugins run: the backend package(s) of the repository name them, resolved as Node loads them.

A backend package (backstage.role "backend") loads its direct dependencies whose role is
"backend-plugin" or "backend-plugin-module", with or without migrations of their own. A repository
with no backend package (a plain folder with node_modules) counts every backend plugin installed in
its node_modules. The core services' packages (scheduler, plugin keys) are resolved from the backend
too, so a copy nested under packages/backend/node_modules wins over the root's, as it does in Node.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from . import resolve, workspace
from .resolve import Package

PLUGIN_ROLES = ("backend-plugin", "backend-plugin-module")
# Packages that hold the sets every plugin database may carry, newest home first (sets.KNOWN).
CORE_PACKAGES = ("@backstage/backend-defaults", "@backstage/backend-app-api", "@backstage/backend-tasks")


@dataclass(frozen=True)
class OtherCopy:
    """An installed copy of a used package that the backend does not load (another version or place)."""

    name: str
    version: str | None
    folder: Path
    used_version: str | None
    used_folder: Path


@dataclass(frozen=True)
class Install:
    """The install as the backend sees it. Paths are real paths; tuples are sorted by name."""

    root: Path
    backends: tuple[Path, ...]  # backend package folders; () when the repository has none
    plugins: tuple[Package, ...]  # backend plugins and modules that run
    core: tuple[Package, ...]  # the core services' packages the backend loads
    not_loaded: tuple[Package, ...]  # backend plugins installed in node_modules that no backend loads
    others: tuple[OtherCopy, ...]  # other copies of used packages, never the ones used
    knex: Package | None  # the knex the backend loads

    @property
    def packages(self) -> tuple[Package, ...]:
        return self.plugins + self.core


def _is_plugin(package: Package | None) -> bool:
    return package is not None and package.role in PLUGIN_ROLES


def _may_be_plugin(folder: Path) -> bool:
    # One stat or a name test per package instead of reading thousands of package.json files:
    # backend plugins are named *-backend* by Backstage's convention, or ship migrations.
    return "backend" in folder.name or os.path.isdir(folder / "migrations")


def installed_plugins(project: Path) -> list[Package]:
    """Every backend plugin or module in the root's node_modules, sorted by name."""
    found = []
    for folder in resolve.package_folders(project / "node_modules"):
        if _may_be_plugin(folder):
            package = resolve.load(folder)
            if package is not None and (_is_plugin(package) or package.plugin_id or _holds_sets(package)):
                found.append(package)
    return found


def _holds_sets(package: Package) -> bool:
    # Packages of the known-sets table whose older releases carry no backstage.role (auth 0.17).
    return os.path.isdir(package.folder / "migrations") and package.name.startswith("@backstage/plugin-")


def _from_backends(backends: tuple[workspace.Workspace, ...]) -> list[Package]:
    used: dict[Path, Package] = {}
    for backend in backends:
        for name in resolve.dependencies(backend.meta):
            package = resolve.resolve(backend.folder, name)
            if package is not None and (_is_plugin(package) or _holds_sets(package)):
                used.setdefault(package.folder, package)
    return sorted(used.values(), key=lambda p: (p.name, str(p.folder)))


def _core(starts: list[Path]) -> list[Package]:
    """Each core package as the first of `starts` (backends, then plugins) resolves it."""
    found = []
    for name in CORE_PACKAGES:
        for start in starts:
            package = resolve.resolve(start, name)
            if package is not None:
                found.append(package)
                break
    return found


def _others(project: Path, used: list[Package], workspaces: tuple[workspace.Workspace, ...]) -> list[OtherCopy]:
    roots = [project, *(w.folder for w in workspaces)]
    others = []
    for package in used:
        for copy in resolve.copies(package.name, roots):
            if copy.folder != package.folder:
                others.append(OtherCopy(copy.name, copy.version, copy.folder, package.version, package.folder))
    return others


@functools.lru_cache(maxsize=8)
def load(project: Path) -> Install:
    """The install rooted at `project` (see module docstring); cached per root for one run."""
    workspaces = workspace.workspaces(project)
    backends = tuple(w for w in workspaces if w.role == workspace.BACKEND_ROLE)
    if backends:
        plugins = _from_backends(backends)
        starts = [b.folder for b in backends] + [p.folder for p in plugins]
        loaded = {p.folder for p in plugins}
        not_loaded = [p for p in installed_plugins(project) if p.folder not in loaded and _is_plugin(p)]
        knex = resolve.resolve(backends[0].folder, "knex")
    else:
        plugins = installed_plugins(project)
        starts, not_loaded = [project], []
        knex = resolve.load(project / "node_modules" / "knex") if (project / "node_modules" / "knex").exists() else None
    core = _core(starts)
    others = _others(project, plugins + core, workspaces) if backends else []
    return Install(
        root=project,
        backends=tuple(b.folder for b in backends),
        plugins=tuple(plugins),
        core=tuple(core),
        not_loaded=tuple(not_loaded),
        others=tuple(others),
        knex=knex,
    )
