"""The install a downgrade goes back to: which files each migration set has there, and their versions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import errors
from ..install import sets
from ..state import read as st

Key = tuple[str, str]  # (plugin id or "*", migrations table)


@dataclass(frozen=True)
class Destination:
    """Where a downgrade goes: an older install's project folder, or a snapshot file taken at taken_at (UTC)."""

    kind: str  # "install" or "snapshot"
    path: str
    taken_at: str | None = None

    def __str__(self) -> str:
        return self.path if self.kind == "install" else f"the snapshot {self.path} of {self.taken_at}"


@dataclass(frozen=True)
class TargetInstall:
    to: Destination
    files: dict[Key, tuple[str, ...]]  # the migration files each set has in the target
    versions: dict[Key, str | None]
    directories: dict[Key, str]  # where those files are, when the target is an install


def _key(one: sets.MigrationSet) -> Key:
    return (str(one.plugin_id), one.table)


def folder_target(spec: str, path: Path) -> TargetInstall:
    """The target read from an install folder PATH (its project folder or its node_modules), as given by SPEC.

    Raises ConfigError when PATH is no folder or has no node_modules."""
    if not path.is_dir():
        raise errors.ConfigError(f"--to {spec}: no such project folder, node_modules or snapshot file")
    project = path.parent if path.name == "node_modules" else path
    if not (project / "node_modules").is_dir():
        raise errors.ConfigError(f"--to {spec}: no node_modules there (give an install's project folder)")
    found = sets.discover_all(project)
    return TargetInstall(
        to=Destination("install", str(project)),
        files={_key(s): st.list_files(s.directory) for s in found},
        versions={_key(s): s.version for s in found},
        directories={_key(s): s.directory for s in found},
    )
