"""knexwrap's private state folder: archive, run folders, snapshots, backups and the journal.

`<project>/.knexwrap/` unless `--state-dir DIR` or `KNEXWRAP_STATE_DIR` names another (a mounted
volume in a container, where the project folder does not survive). Backups hold every row of a
plugin database, so the folder is the user's alone: created 0700 with every file 0600, it keeps
its own `.gitignore` (`*`) so it is never committed, and a folder that other users can write is
refused: they could swap the archived files a downgrade runs, or a backup a restore puts back.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .. import errors

ENV = "KNEXWRAP_STATE_DIR"
_chosen: list[Path] = []  # set once per command by the CLI's --state-dir; the environment otherwise


def use(path: str | None) -> None:
    """The state folder for this process, from `--state-dir` (None: the environment, else the project's)."""
    _chosen.clear()
    if path:
        _chosen.append(Path(path).expanduser().resolve())


def where(project: Path) -> Path:
    """Where the state folder is, created or not: for readers that must not create it (status)."""
    named = _chosen[0] if _chosen else (Path(os.environ[ENV]).expanduser().resolve() if os.environ.get(ENV) else None)
    return named or project / ".knexwrap"


def root(project: Path) -> Path:
    """The state folder, created 0700 with its `.gitignore` when absent.

    Raises ConfigError when it cannot be created, is no folder, or other users can write it."""
    path = where(project)
    try:
        mkdirs(path)
        _refuse_shared(path)
        ignore = path / ".gitignore"
        if not ignore.exists():
            write_private(ignore, b"# knexwrap's private state: backups hold every row of a database\n*\n")
    except OSError as exc:
        raise errors.ConfigError(f"cannot use the state folder {path}: {exc.strerror or exc}") from exc
    return path


def sub(project: Path, name: str) -> Path:
    """A folder inside the state folder (archive, backups, snapshots, journal), created 0700."""
    path = root(project) / name
    try:
        mkdirs(path)
    except OSError as exc:
        raise errors.ConfigError(f"cannot use the state folder {path}: {exc.strerror or exc}") from exc
    return path


def mkdirs(path: Path) -> None:
    """PATH and its missing parents, each 0700 (Path.mkdir(parents=True) gives parents the default mode)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


def _refuse_shared(path: Path) -> None:
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise errors.ConfigError(f"the state folder {path} is not a folder")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise errors.ConfigError(
            f"the state folder {path} can be written by other users (mode {stat.S_IMODE(info.st_mode):o}): they "
            f"could replace the files a downgrade runs or a restore puts back; make it yours alone (chmod 700 {path})"
        )
    if info.st_uid != os.geteuid():
        raise errors.ConfigError(f"the state folder {path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)  # one made by an older knexwrap, readable by all: backups go in there


def write_private(path: Path, data: bytes) -> None:
    """Write a new file only its owner can read, through a temporary name and a rename (never half a file)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, path)


def create_private(path: Path) -> None:
    """Create PATH empty and 0600; FileExistsError when it exists (a name is reserved, never reused)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
