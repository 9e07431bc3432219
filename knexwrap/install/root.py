"""The repository root and its workspace packages, found from any folder inside the repository.

A Backstage app is a yarn workspaces repository: yarn links a `node_modules/.bin/knex` into every
workspace that depends on knex (packages/backend included), so the nearest folder holding
`.bin/knex` is not the root. The root is the nearest parent whose package.json declares
`workspaces`; a plain folder with node_modules (no workspaces anywhere above) is its own root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ToolMissing

KNEX_BIN = Path("node_modules", ".bin", "knex")
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


def read_meta(folder: Path) -> dict[str, Any]:
    """package.json of a folder as a dict; {} when absent or unreadable (a broken package declares nothing)."""
    try:
        data = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def role_of(meta: dict[str, Any]) -> str | None:
    """`backstage.role` of a package.json, e.g. "backend", "backend-plugin", "backend-plugin-module"."""
    backstage = meta.get("backstage")
    role = backstage.get("role") if isinstance(backstage, dict) else None
    return role if isinstance(role, str) else None


def workspace_globs(meta: dict[str, Any]) -> list[str]:
    """The `workspaces` of a root package.json: a list (npm, yarn) or `{packages: [...]}` (yarn 1)."""
    value = meta.get("workspaces")
    if isinstance(value, dict):
        value = value.get("packages")
    return [g for g in value if isinstance(g, str)] if isinstance(value, list) else []


def find_root(start: Path, explicit: str | None) -> Path:
    """The repository root: --project-dir, else the nearest parent (cwd included) whose package.json
    declares workspaces, else the nearest one holding node_modules/.bin/knex.

    Raises ToolMissing when neither exists (or --project-dir has no knex)."""
    if explicit is not None:
        project = Path(explicit).resolve()
        if not (project / KNEX_BIN).exists():
            raise ToolMissing(f"--project-dir {explicit}: no {KNEX_BIN} there (run npm install in it)")
        return project
    start = start.resolve()
    folders = (start, *start.parents)
    for folder in folders:
        if (folder / "package.json").is_file() and workspace_globs(read_meta(folder)):
            return folder
    for folder in folders:
        if (folder / KNEX_BIN).exists():
            return folder
    raise ToolMissing(
        f"no {KNEX_BIN} in {start} or any parent folder: run knexwrap inside the Backstage project "
        "(after npm install / yarn install) or pass --project-dir"
    )


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
