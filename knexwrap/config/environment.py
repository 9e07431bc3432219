"""The operator's side of a connection: the .env file under the shell's variables (python-dotenv reads it, as
a Backstage backend started from the same folder would see them), and a connection as knexwrap prints it
(a target's text split back into server, database and schema; the options that pick the databases as flags
a printed command can repeat)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .connection import Options


def load_environment(project: Path, env_file: str | None) -> dict[str, str]:
    """The real environment over the .env file: a variable set in the shell always wins."""
    path = Path(env_file) if env_file else project / ".env"
    if env_file and not path.is_file():
        raise ConfigError(f"--env-file {env_file}: no such file")
    values: dict[str, str] = {}
    if path.is_file():
        import io

        from dotenv import dotenv_values  # imported only when there is a file: start-up time counts

        text = _read_env_file(path, env_file or ".env")
        values = {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}
    values.update(os.environ)
    return values


def _read_env_file(path: Path, shown: str) -> str:
    """The .env file as text: UTF-8 (python-dotenv's encoding), else one line naming the first bad byte."""
    try:
        data = path.read_bytes()
    except OSError as failed:
        raise ConfigError(f"{shown}: cannot be read ({(failed.strerror or str(failed)).lower()})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        line = data[: bad.start].count(b"\n") + 1
        raise ConfigError(f"{shown}: not UTF-8 text (byte 0x{data[bad.start]:02x} on line {line})") from None


# target()'s text: the host holds neither "@" nor "/", so the server ends at the first "/" after the last "@"
# (or after the scheme when no user is set).
_TARGET = re.compile(r"(?P<server>(?:postgresql|mysql)://(?:.*@)?[^@/]*)/(?P<database>.*?)(?: schema (?P<schema>.*))?")


def split_target(text: str) -> tuple[str | None, str, str | None]:
    """(server, database, schema) of a Connection.target() text; a SQLite file's path has no server."""
    found = _TARGET.fullmatch(text)
    if found is None:
        return None, text, None
    return found["server"], found["database"], found["schema"]


def as_flags(options: Options) -> str:
    """The options that pick the databases, as command-line text a printed fix can repeat (no password)."""
    import shlex

    pairs = [
        ("--client", options.client),
        ("--host", options.host),
        ("--port", options.port),
        ("--user", options.user),
        ("--prefix", options.prefix),
        ("--sqlite-dir", options.sqlite_dir),
        ("--env-file", options.env_file),
        ("--backend-cwd", options.backend_cwd),
        *(("--config", f) for f in options.config_files),
    ]
    return "".join(f" {flag} {shlex.quote(value)}" for flag, value in pairs if value is not None)
