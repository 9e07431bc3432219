"""Find the Backstage project and the migrations folder that belongs to a plugin."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import PluginAmbiguous, PluginNotFound, ToolMissing

KNEX_BIN = Path("node_modules", ".bin", "knex")


@dataclass(frozen=True)
class MigrationSet:
    plugin_id: str | None  # None: a bare folder outside any plugin package
    package: str | None
    version: str | None
    directory: str  # absolute
    table: str = "knex_migrations"
    role: str | None = None


def find_project(start: Path, explicit: str | None) -> Path:
    """The folder whose node_modules holds knex: --project-dir, else the cwd or its nearest parent."""
    if explicit is not None:
        project = Path(explicit).resolve()
        if not (project / KNEX_BIN).exists():
            raise ToolMissing(f"--project-dir {explicit}: no {KNEX_BIN} there (run npm install in it)")
        return project
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / KNEX_BIN).exists():
            return folder
    raise ToolMissing(
        f"no {KNEX_BIN} in {start} or any parent folder: run knexwrap inside the Backstage project "
        "(after npm install / yarn install) or pass --project-dir"
    )


def _read_package(folder: Path) -> MigrationSet | None:
    try:
        meta = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    backstage = meta.get("backstage") if isinstance(meta, dict) else None
    plugin_id = backstage.get("pluginId") if isinstance(backstage, dict) else None
    return MigrationSet(
        plugin_id=plugin_id if isinstance(plugin_id, str) else None,
        package=meta.get("name"),
        version=meta.get("version"),
        directory=str((folder / "migrations").resolve()),
        role=backstage.get("role") if isinstance(backstage, dict) else None,
    )


def _package_folders(node_modules: Path) -> list[Path]:
    folders: list[Path] = []
    for entry in sorted(os.scandir(node_modules), key=lambda e: e.name):
        if entry.name.startswith("@") and entry.is_dir():
            folders.extend(Path(sub.path) for sub in sorted(os.scandir(entry.path), key=lambda e: e.name))
        elif not entry.name.startswith("."):
            folders.append(Path(entry.path))
    return folders


def discover(project: Path) -> list[MigrationSet]:
    """Every package in node_modules that declares a Backstage plugin id and ships migrations/."""
    found = []
    for folder in _package_folders(project / "node_modules"):
        # A stat per package before any JSON parsing: real installs hold thousands of packages.
        if (folder / "migrations").is_dir():
            package = _read_package(folder)
            if package is not None and package.plugin_id is not None:
                found.append(package)
    return found


def _by_path(spec: str) -> MigrationSet:
    directory = Path(spec).resolve()
    if not directory.is_dir():
        raise PluginNotFound(f"{spec}: no such migrations folder")
    owner = _read_package(directory.parent) if (directory.parent / "package.json").is_file() else None
    if owner is not None and owner.directory == str(directory):
        return owner
    return MigrationSet(plugin_id=None, package=None, version=None, directory=str(directory))


def _by_package(project: Path, name: str) -> MigrationSet:
    folder = project / "node_modules" / name
    package = _read_package(folder) if folder.is_dir() else None
    if package is None:
        raise PluginNotFound(f"package {name} is not installed in {project / 'node_modules'}")
    if not Path(package.directory).is_dir():
        raise PluginNotFound(f"package {name} ships no migrations folder")
    return package


def _describe(sets: list[MigrationSet]) -> str:
    return ", ".join(f"{s.plugin_id} ({s.package})" for s in sets) or "none"


def _by_id(project: Path, plugin_id: str) -> MigrationSet:
    found = discover(project)
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
        return _by_path(os.path.expanduser(spec))
    if spec.startswith("@"):
        return _by_package(project, spec)
    try:
        return _by_id(project, spec)
    except PluginNotFound:
        if (project / "node_modules" / spec / "package.json").is_file():
            return _by_package(project, spec)
        raise
