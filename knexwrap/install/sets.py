"""Every migration set installed in a Backstage project, from one table of what Backstage ships.

A plugin database can hold several sets, each with its own migrations table: the plugin's own
(`knex_migrations`), the scheduler's and the plugin keys' (in every plugin database that uses them),
and some modules' (catalog's incremental ingestion). Which package keeps which set where is data,
below, not code.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from . import backend
from .root import read_meta

EVERY_PLUGIN = "*"  # a set that lives in every plugin database that uses it


@dataclass(frozen=True)
class MigrationSet:
    plugin_id: str | None  # the plugin database; EVERY_PLUGIN; None for a bare folder
    package: str | None
    version: str | None
    directory: str  # absolute
    table: str = "knex_migrations"
    role: str | None = None


@dataclass(frozen=True)
class Known:
    package: str
    folder: str  # inside the package
    table: str
    plugin_id: str  # EVERY_PLUGIN, or the plugin database it belongs to (for packages that do not say)


KNOWN: tuple[Known, ...] = (
    # Core sets, newest home first: with two homes installed, the first one found wins.
    Known("@backstage/backend-defaults", "migrations/scheduler", "backstage_backend_tasks__knex_migrations", "*"),
    Known("@backstage/backend-tasks", "migrations", "backstage_backend_tasks__knex_migrations", "*"),
    Known("@backstage/backend-defaults", "migrations/auth", "backstage_backend_public_keys__knex_migrations", "*"),
    Known("@backstage/backend-app-api", "migrations/auth", "backstage_backend_public_keys__knex_migrations", "*"),
    Known("@backstage/backend-app-api", "migrations", "backstage_backend_public_keys__knex_migrations", "*"),
    Known(
        "@backstage/plugin-catalog-backend-module-incremental-ingestion",
        "migrations",
        "incremental_ingestion__knex_migrations",
        "catalog",
    ),
    # Plugins whose older releases carry no backstage.pluginId (auth-backend before 0.22).
    Known("@backstage/plugin-auth-backend", "migrations", "knex_migrations", "auth"),
    Known("@backstage/plugin-catalog-backend", "migrations", "knex_migrations", "catalog"),
    Known("@backstage/plugin-scaffolder-backend", "migrations", "knex_migrations", "scaffolder"),
    Known("@backstage/plugin-app-backend", "migrations", "knex_migrations", "app"),
)


def _meta(folder: Path) -> dict[str, object]:
    return read_meta(folder)


def _plugin_id(meta: dict[str, object]) -> str | None:
    backstage = meta.get("backstage")
    value = backstage.get("pluginId") if isinstance(backstage, dict) else None
    return value if isinstance(value, str) else None


def _known_sets(folder: Path, meta: dict[str, object]) -> list[tuple[int, MigrationSet]]:
    name, found = meta.get("name"), []
    for rank, known in enumerate(KNOWN):
        directory = folder / known.folder
        if known.package == name and directory.is_dir():
            plugin = _plugin_id(meta) if known.plugin_id != EVERY_PLUGIN else None
            found.append((rank, _set(meta, directory, known.table, plugin or known.plugin_id)))
    return found


def _set(meta: dict[str, object], directory: Path, table: str, plugin_id: str) -> MigrationSet:
    backstage = meta.get("backstage")
    role = backstage.get("role") if isinstance(backstage, dict) else None
    return MigrationSet(
        plugin_id=plugin_id,
        package=str(meta.get("name")),
        version=str(meta.get("version")) if meta.get("version") else None,
        directory=str(directory.resolve()),
        table=table,
        role=role if isinstance(role, str) else None,
    )


@functools.lru_cache(maxsize=8)
def discover_all(project: Path) -> tuple[MigrationSet, ...]:
    """Every set of the packages the backend loads (install/backend.py): known ones by the table
    above, others by backstage.pluginId and their migrations folder."""
    candidates: list[tuple[int, MigrationSet]] = []
    for package in backend.load(project).packages:
        folder, meta = package.folder, package.meta
        if not os.path.isdir(folder / "migrations"):
            continue
        found = _known_sets(folder, meta)
        plugin = _plugin_id(meta)
        if not found and plugin:
            found = [(len(KNOWN), _set(meta, folder / "migrations", "knex_migrations", plugin))]
        candidates.extend(found)
    # Two homes of one set (backend-tasks and backend-defaults) are one set: the newer home wins.
    sets: dict[tuple[str, str, str], MigrationSet] = {}
    for _, one in sorted(candidates, key=lambda c: c[0]):
        key = (str(one.plugin_id), one.table, "" if one.plugin_id == EVERY_PLUGIN else str(one.package))
        sets.setdefault(key, one)
    return tuple(sorted(sets.values(), key=lambda s: (s.plugin_id == EVERY_PLUGIN, str(s.plugin_id), s.table)))


def plugin_ids(project: Path) -> tuple[str, ...]:
    """Every plugin id with a database: the plugins' own sets, and plugins (not modules) the backend
    loads that ship no set of their own (their database holds only the core sets, if any), sorted."""
    ids = {str(s.plugin_id) for s in discover_all(project) if s.plugin_id not in (EVERY_PLUGIN, None)}
    ids |= {p.plugin_id for p in backend.load(project).plugins if p.plugin_id and p.role == "backend-plugin"}
    return tuple(sorted(ids))


def plugin_sets(sets: tuple[MigrationSet, ...]) -> list[MigrationSet]:
    return [s for s in sets if s.plugin_id != EVERY_PLUGIN]


def shared_sets(sets: tuple[MigrationSet, ...]) -> list[MigrationSet]:
    return [s for s in sets if s.plugin_id == EVERY_PLUGIN]
