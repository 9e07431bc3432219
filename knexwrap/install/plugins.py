"""Find the Backstage project and the migrations folder that belongs to a plugin."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import PluginAmbiguous, PluginNotFound
from .root import find_root
from .sets import EVERY_PLUGIN, MigrationSet, discover_all

KNEX_BIN = Path("node_modules", ".bin", "knex")  # where find_root looks for knex


def find_project(start: Path, explicit: str | None) -> Path:
    """The folder whose node_modules holds knex: --project-dir, else the cwd or its nearest parent (root.py)."""
    return Path(find_root(str(start), explicit))


def _by_path(project: Path, spec: str) -> MigrationSet:
    directory = Path(spec).resolve()
    if not directory.is_dir():
        raise PluginNotFound(f"{spec}: no such migrations folder")
    for known in discover_all(project):
        if known.directory == str(directory):
            return known
    return MigrationSet(plugin_id=None, package=None, version=None, directory=str(directory))


def _by_package(project: Path, name: str) -> MigrationSet:
    if not (project / "node_modules" / name / "package.json").is_file():
        raise PluginNotFound(f"package {name} is not installed in {project / 'node_modules'}")
    found = [s for s in discover_all(project) if s.package == name]
    if not found:
        raise PluginNotFound(f"package {name} ships no migrations folder knexwrap knows of")
    if len(found) > 1:
        folders = ", ".join(s.directory for s in found)
        raise PluginAmbiguous(f"package {name} ships several migration sets: name one folder: {folders}")
    return found[0]


def _describe(sets: list[MigrationSet]) -> str:
    return ", ".join(f"{s.plugin_id} ({s.package})" for s in sets) or "none"


def _by_id(project: Path, plugin_id: str) -> MigrationSet:
    found = [s for s in discover_all(project) if s.plugin_id not in (EVERY_PLUGIN, None)]
    matches = [s for s in found if s.plugin_id == plugin_id]
    # A plugin's modules share its id (catalog's incremental ingestion): the plugin itself wins.
    plugins = [s for s in matches if s.role == "backend-plugin"]
    if len(matches) == 1 or len(plugins) == 1:
        return matches[0] if len(matches) == 1 else plugins[0]
    if matches:
        raise PluginAmbiguous(
            f"plugin id {plugin_id!r} is declared by several packages with migrations: {_describe(matches)}; "
            "name the package instead"
        )
    raise PluginNotFound(f"no installed package with migrations has plugin id {plugin_id!r}; found: {_describe(found)}")


def resolve(project: Path, spec: str) -> MigrationSet:
    """PLUGIN as the user typed it: a folder path, a package name or a plugin id."""
    if spec.startswith((".", "/", "~")) or (os.sep in spec and not spec.startswith("@")):
        return _by_path(project, os.path.expanduser(spec))
    if spec.startswith("@"):
        return _by_package(project, spec)
    try:
        return _by_id(project, spec)
    except PluginNotFound:
        if (project / "node_modules" / spec / "package.json").is_file():
            return _by_package(project, spec)
        raise
