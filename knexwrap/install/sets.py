"""Every migration set installed in a Backstage project, from one table of what Backstage ships.

A plugin database can hold several sets, each with its own migrations table: the plugin's own
(`knex_migrations`), the scheduler's and the plugin keys' (in every plugin database that uses them),
and some modules' (catalog's incremental ingestion). Which package keeps which set where is data,
below, not code.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path

from . import backend, code, resolve
from .resolve import Package
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
    # Who told knexwrap the folder and table: "code" (the package's dist, install/code.py), "table"
    # (KNOWN below) or "package.json" (backstage.pluginId and a migrations/ folder).
    source: str = "table"


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


def _known(name: object, directory: Path, folder: Path) -> tuple[int, Known] | None:
    for rank, known in enumerate(KNOWN):
        if known.package == name and folder / known.folder == directory:
            return rank, known
    return None


def _code_sets(package: Package) -> list[tuple[int, MigrationSet]]:
    """The sets the package's dist code hands to knex; the table above places core sets (its
    "every plugin database" is a fact code cannot tell) and names tables the code hides."""
    folder, meta = package.folder, package.meta
    facts = code_facts(package)
    found = []
    for one in facts.sets:
        known = _known(package.name, one.directory, folder)
        table = known[1].table if one.table == "?" and known else one.table or "knex_migrations"
        plugin = _plugin_id(meta) or next(iter(facts.plugin_ids), None)
        if known and (known[1].plugin_id == EVERY_PLUGIN or not plugin):
            plugin = known[1].plugin_id
        if table == "?" or plugin is None:
            continue  # a table or plugin database the code does not name: not guessed
        rank = known[0] if known else len(KNOWN)
        found.append((rank, replace(_set(meta, one.directory, table, plugin), source="code")))
    return found


def code_facts(package: Package) -> code.CodeFacts:
    """What the package's dist code says (install/code.py), read once per package folder."""
    return _code_facts(package.folder, package.name)


@functools.lru_cache(maxsize=256)
def _code_facts(folder: Path, name: str) -> code.CodeFacts:
    return code.read(folder, name)


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
        found = _code_sets(package) if os.path.isdir(folder / "dist") else []
        if not found and os.path.isdir(folder / "migrations"):
            found = _known_sets(folder, meta)
            from_code = next(iter(code_facts(package).plugin_ids), None)
            plugin = _plugin_id(meta) or from_code
            if not found and plugin:
                one = _set(meta, folder / "migrations", "knex_migrations", plugin)
                found = [(len(KNOWN), replace(one, source="package.json" if _plugin_id(meta) else "code"))]
        candidates.extend(found)
    # Two homes of one set (backend-tasks and backend-defaults) are one set: the newer home wins.
    sets: dict[tuple[str, str, str], MigrationSet] = {}
    for _, one in sorted(candidates, key=lambda c: c[0]):
        key = (str(one.plugin_id), one.table, "" if one.plugin_id == EVERY_PLUGIN else str(one.package))
        sets.setdefault(key, one)
    return tuple(sorted(sets.values(), key=lambda s: (s.plugin_id == EVERY_PLUGIN, str(s.plugin_id), s.table)))


def plugin_id_of(package: Package) -> str | None:
    """A package's plugin id: backstage.pluginId of its package.json, else the first its code names."""
    return package.plugin_id or next(iter(code_facts(package).plugin_ids), None)


def plugin_ids(project: Path) -> tuple[str, ...]:
    """Every plugin id with a database: the plugins' own sets, and plugins (not modules) the backend
    loads that ship no set of their own (their database holds only the core sets, if any), sorted."""
    ids = {str(s.plugin_id) for s in discover_all(project) if s.plugin_id not in (EVERY_PLUGIN, None)}
    for package in backend.load(project).plugins:
        if package.role == "backend-plugin":
            ids.update((package.plugin_id and [package.plugin_id]) or code_facts(package).plugin_ids[:1])
    return tuple(sorted(ids))


def plugin_sets(sets: tuple[MigrationSet, ...]) -> list[MigrationSet]:
    return [s for s in sets if s.plugin_id != EVERY_PLUGIN]


def shared_sets(sets: tuple[MigrationSet, ...]) -> list[MigrationSet]:
    return [s for s in sets if s.plugin_id == EVERY_PLUGIN]


def forget() -> None:
    """Drop every cached reading of the install (one run reads it once; in-process callers that change
    node_modules between runs call this)."""
    discover_all.cache_clear()
    _code_facts.cache_clear()
    backend.load.cache_clear()
    resolve.nested_modules.cache_clear()
