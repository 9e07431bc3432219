"""Packages resolved the way Node resolves `require(name)` from a package: nearest node_modules first.

Node looks in `<folder>/node_modules/<name>` for the requiring package's real folder and then each
parent; symlinks (yarn's workspace links) are followed first, so a workspace plugin resolves its own
dependencies from its folder under plugins/, not from the root's node_modules link.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .root import read_meta, role_of


@dataclass(frozen=True)
class Package:
    """One installed copy of a package: name, version, real folder and what its package.json declares."""

    name: str
    version: str | None
    folder: Path  # real path (symlinks followed)
    role: str | None  # backstage.role
    plugin_id: str | None  # backstage.pluginId of package.json; None when it names none
    meta: dict[str, Any] = field(repr=False, compare=False, hash=False)


def load(folder: Path) -> Package | None:
    """The package in `folder` (symlinks followed), or None when it has no package.json with a name."""
    real = folder.resolve()
    meta = read_meta(real)
    name = meta.get("name")
    if not isinstance(name, str):
        return None
    version = meta.get("version")
    backstage = meta.get("backstage")
    plugin_id = backstage.get("pluginId") if isinstance(backstage, dict) else None
    return Package(
        name=name,
        version=version if isinstance(version, str) else None,
        folder=real,
        role=role_of(meta),
        plugin_id=plugin_id if isinstance(plugin_id, str) else None,
        meta=meta,
    )


def resolve(from_folder: Path, name: str) -> Package | None:
    """The copy of `name` that `require(name)` loads from a package in `from_folder`, or None."""
    start = from_folder.resolve()
    for folder in (start, *start.parents):
        if folder.name == "node_modules":
            continue  # Node never looks in node_modules/node_modules
        candidate = folder / "node_modules" / name
        if (candidate / "package.json").is_file():
            return load(candidate)
    return None


def dependencies(meta: dict[str, Any]) -> list[str]:
    """The names a package.json depends on at run time (dependencies), sorted."""
    deps = meta.get("dependencies")
    return sorted(deps) if isinstance(deps, dict) else []


def package_folders(node_modules: Path) -> list[Path]:
    """The package folders directly in a node_modules folder (scoped ones included), sorted by name."""
    folders: list[Path] = []
    try:
        entries = sorted(os.scandir(node_modules), key=lambda e: e.name)
    except OSError:
        return folders
    for entry in entries:
        if entry.name.startswith("@") and entry.is_dir():
            folders.extend(Path(sub.path) for sub in sorted(os.scandir(entry.path), key=lambda e: e.name))
        elif not entry.name.startswith("."):
            folders.append(Path(entry.path))
    return folders


@functools.lru_cache(maxsize=32)
def nested_modules(modules: Path) -> tuple[Path, ...]:
    # One scan per node_modules folder, not one per package name asked about: real installs hold thousands.
    return tuple(p / "node_modules" for p in package_folders(modules) if os.path.isdir(p / "node_modules"))


def copies(name: str, roots: list[Path]) -> list[Package]:
    """Every installed copy of `name` in `<root>/node_modules/<name>` and one level of nesting below
    (`<root>/node_modules/<pkg>/node_modules/<name>`), each copy once, sorted by folder."""
    found: dict[Path, Package] = {}
    for root in roots:
        modules = root / "node_modules"
        places = [modules / name, *(nested / name for nested in nested_modules(modules))]
        for place in places:
            if (place / "package.json").is_file():
                one = load(place)
                if one is not None and one.name == name:
                    found.setdefault(one.folder, one)
    return [found[k] for k in sorted(found)]
