"""The workspace packages of a repository root (root.py finds the root): what its `workspaces` globs name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .root import read_meta, role_of, workspace_globs

BACKEND_ROLE = "backend"


@dataclass(frozen=True)
class Workspace:
    """One package of the repository: its folder (real path) and its package.json."""

    folder: Path
    meta: dict[str, Any]

    @property
    def name(self) -> str | None:
        value = self.meta.get("name")
        return value if isinstance(value, str) else None

    @property
    def role(self) -> str | None:
        return role_of(self.meta)


def workspaces(root: Path) -> tuple[Workspace, ...]:
    """Every workspace package of the root's `workspaces` globs, sorted by folder; () for a plain folder."""
    found: dict[Path, Workspace] = {}
    for pattern in workspace_globs(read_meta(root)):
        if pattern.startswith("!") or ".." in Path(pattern).parts:
            continue  # exclusions and folders outside the repository name no package of it
        for folder in root.glob(pattern):
            if (folder / "package.json").is_file():
                real = folder.resolve()
                found.setdefault(real, Workspace(real, read_meta(real)))
    return tuple(found[k] for k in sorted(found))


def backends(root: Path) -> tuple[Workspace, ...]:
    """The workspace packages whose backstage.role is "backend": the ones that decide which plugins run."""
    return tuple(w for w in workspaces(root) if w.role == BACKEND_ROLE)
