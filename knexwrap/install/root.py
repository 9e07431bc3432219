"""Which folder is the Backstage project: the one rule both the CLI and the launcher use.

Standard library and errors.py only: the launcher (cli/launch.py) calls it before any heavy import,
so the reader it starts early runs in exactly the folder the normal path would pick.
"""

from __future__ import annotations

import os

from ..errors import ToolMissing

KNEX_BIN = os.path.join("node_modules", ".bin", "knex")


def find_root(start: str, explicit: str | None) -> str:
    """The project folder (absolute, symlinks resolved): --project-dir as given, else the nearest
    folder from START upwards whose node_modules/.bin/knex exists.

    Raises ToolMissing when there is none, naming what to do.
    """
    if explicit is not None:
        project = os.path.realpath(explicit)
        if not os.path.exists(os.path.join(project, KNEX_BIN)):
            raise ToolMissing(f"--project-dir {explicit}: no {KNEX_BIN} there (run npm install in it)")
        return project
    folder = os.path.realpath(start)
    while True:
        if os.path.exists(os.path.join(folder, KNEX_BIN)):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    raise ToolMissing(
        f"no {KNEX_BIN} in {os.path.realpath(start)} or any parent folder: run knexwrap inside the Backstage "
        "project (after npm install / yarn install) or pass --project-dir"
    )
