"""The folder the backend runs in, which a relative SQLite ``connection.directory`` is taken from.

Backstage joins the directory onto the backend process's working folder. Both usual folders are real:
``yarn start`` (``backstage-cli package start``) runs the backend in its package's folder
(``packages/backend``), while the production Dockerfile runs ``node packages/backend`` from the image's
root. knexwrap takes the folder where the plugin's file is, ``--backend-cwd`` decides, and the choice is
always said (``knexwrap config``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError


def backend_package(project: Path) -> Path | None:
    """``<project>/packages/backend`` when its package.json says ``backstage.role: backend``, else None."""
    folder = project / "packages" / "backend"
    try:
        manifest = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    backstage = manifest.get("backstage") if isinstance(manifest, dict) else None
    return folder if isinstance(backstage, dict) and backstage.get("role") == "backend" else None


def sqlite_file(configured: str, project: Path, backend_cwd: str | None) -> tuple[str, str | None]:
    """The absolute SQLite file of a configured path, and a note saying which folder a relative one used.

    ``configured`` is ``path.join(directory, file)`` as app-config gives it. ``backend_cwd`` (--backend-cwd)
    wins; else the one of the repository root and the backend package's folder where the file is, else
    where its directory is, else the backend package's folder (``yarn start``), else the root. Errors: a
    --backend-cwd that is no folder, and a file present in both folders (a ConfigError asking which).
    """
    if os.path.isabs(configured):
        return os.path.normpath(configured), None
    if backend_cwd is not None:
        folder = Path(os.path.abspath(backend_cwd))
        if not folder.is_dir():
            raise ConfigError(f"--backend-cwd {backend_cwd}: no such directory")
        return _join(folder, configured), f"{configured} is relative: taken from --backend-cwd {folder}"
    backend = backend_package(project)
    folders = [project] + ([backend] if backend is not None else [])
    with_file = [f for f in folders if Path(_join(f, configured)).is_file()]
    if len(with_file) > 1:
        raise ConfigError(
            f"{configured} exists under both {folders[0]} and {folders[1]}: pass --backend-cwd with the folder "
            "the backend runs in (packages/backend under yarn start, the root under node packages/backend)"
        )
    if with_file:
        return _join(with_file[0], configured), f"{configured} is relative: found under {with_file[0]}"
    with_folder = [f for f in folders if Path(_join(f, configured)).parent.is_dir()]
    folder = with_folder[0] if len(with_folder) == 1 else folders[-1]
    why = "its folder is there" if len(with_folder) == 1 else "the backend's folder under yarn start"
    return _join(folder, configured), f"{configured} is relative and absent: taken under {folder} ({why})"


def _join(folder: Path, configured: str) -> str:
    return os.path.normpath(os.path.join(folder, configured))
