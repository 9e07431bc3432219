"""The repository part of every report: its root, backend package(s), the knex they load, other copies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..install import backend


@dataclass(frozen=True)
class OtherCopy:
    """A copy of a used package that the backend does not load, beside the one it loads."""

    package: str
    version: str | None
    folder: str
    used_version: str | None
    used_folder: str


@dataclass(frozen=True)
class NotLoaded:
    """A backend plugin installed in node_modules that no backend package depends on."""

    package: str
    version: str | None
    plugin_id: str | None
    folder: str


@dataclass(frozen=True)
class Repository:
    root: str  # the repository root (install/root.py)
    backends: tuple[str, ...]  # backend package folders; () when the repository has none
    knex_version: str | None  # the knex the backend loads
    knex_folder: str | None
    other_copies: tuple[OtherCopy, ...] = ()
    not_loaded: tuple[NotLoaded, ...] = ()


def describe(project: Path) -> Repository:
    """What install/backend.py found for the repository at `project` (cached there: no extra reads)."""
    found = backend.load(project)
    return Repository(
        root=str(found.root),
        backends=tuple(str(b) for b in found.backends),
        knex_version=found.knex.version if found.knex else None,
        knex_folder=str(found.knex.folder) if found.knex else None,
        other_copies=tuple(
            OtherCopy(o.name, o.version, str(o.folder), o.used_version, str(o.used_folder)) for o in found.others
        ),
        not_loaded=tuple(NotLoaded(p.name, p.version, p.plugin_id, str(p.folder)) for p in found.not_loaded),
    )
