"""The repository root, found from any folder inside the repository: the one rule for every path.

A Backstage app is a yarn workspaces repository: yarn links a `node_modules/.bin/knex` into every
workspace that depends on knex (packages/backend included), so the nearest folder holding
`.bin/knex` is not the root. The root is the nearest parent whose package.json declares
`workspaces`; a plain folder with node_modules (no workspaces anywhere above) is its own root.

Standard library `os` only at import (json when a package.json may declare workspaces): the launcher
(cli/launch.py) finds the root with find_root_folder before any heavy import, so the reader it starts
early runs for exactly the folder the normal path picks. The workspace packages are in workspace.py.
"""

from __future__ import annotations

import os

from ..errors import ToolMissing

TYPE_CHECKING = False  # typing itself is a costly import for the launcher; mypy reads this name as typing's
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

KNEX_BIN = os.path.join("node_modules", ".bin", "knex")


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """package.json of a folder as a dict; {} when absent or unreadable (a broken package declares nothing)."""
    import json

    try:
        with open(os.path.join(folder, "package.json"), encoding="utf-8") as file:
            data = json.load(file)
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


def _declares_workspaces(folder: str) -> bool:
    try:
        with open(os.path.join(folder, "package.json"), encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return False
    # Only a file that names the key (or escapes characters, which could spell it) is parsed: json costs the launcher.
    return ("workspaces" in text or "\\u" in text) and bool(workspace_globs(read_meta(folder)))


def find_root_folder(start: str, explicit: str | None) -> str:
    """The repository root as an absolute real path: --project-dir, else the nearest parent (START
    included) whose package.json declares workspaces, else the nearest one holding node_modules/.bin/knex.

    Raises ToolMissing when neither exists (or --project-dir has no knex)."""
    if explicit is not None:
        project = os.path.realpath(explicit)
        if not os.path.exists(os.path.join(project, KNEX_BIN)):
            raise ToolMissing(f"--project-dir {explicit}: no {KNEX_BIN} there (run npm install in it)")
        return project
    real = os.path.realpath(start)
    folders = [real]
    while os.path.dirname(folders[-1]) != folders[-1]:
        folders.append(os.path.dirname(folders[-1]))
    for folder in folders:
        if _declares_workspaces(folder):
            return folder
    for folder in folders:
        if os.path.exists(os.path.join(folder, KNEX_BIN)):
            return folder
    raise ToolMissing(
        f"no {KNEX_BIN} in {real} or any parent folder: run knexwrap inside the Backstage project "
        "(after npm install / yarn install) or pass --project-dir"
    )


def find_root(start: Path, explicit: str | None) -> Path:
    """find_root_folder as a Path (the normal path's form); same rule, same errors."""
    from pathlib import Path

    return Path(find_root_folder(str(start), explicit))
