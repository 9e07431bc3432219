"""Turn a failed knex run (its captured stdout and stderr) into one typed knexwrap error.

A pure function over text, like the parsers: tests feed it outputs captured from real failures.
All of it is free text, so the passwords given are masked (by context, mask.py) before anything is
read from it: a message never shows one, and `output` keeps what knex printed otherwise unchanged.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable

from .. import errors
from .mask import mask
from .parse import clean

Rule = tuple["re.Pattern[str]", Callable[["re.Match[str]", str], errors.KnexwrapError]]


def _corrupt(m: re.Match[str], out: str) -> errors.KnexwrapError:
    missing = tuple(name.strip() for name in m[1].split(",") if name.strip())
    return errors.CorruptDirectory(
        f"the database is ahead of its migration files: {len(missing)} recorded migration(s) are "
        f"missing from the folder: {', '.join(missing)}",
        missing=missing,
        output=out,
    )


def _failed(m: re.Match[str], out: str) -> errors.KnexwrapError:
    reason = re.search(r"migration failed with error: (.+)", out)
    why = reason[1].strip() if reason else _first_error_line(out)
    return errors.MigrationFailed(f'migration "{m[1]}" failed: {why}', output=out)


# Order matters: a failed migration also prints the database error that caused it.
_RULES: tuple[Rule, ...] = (
    (
        re.compile(r"No local knex install found in:?\s*(\S*)"),
        lambda m, o: errors.ToolMissing(
            f"knex is not installed in {m[1] or 'the project'}: run npm install there", output=o
        ),
    ),
    (
        re.compile(r"Cannot find module '([^']+)'[\s\S]*?Knex: run|Knex: run[\s\S]*?Cannot find module '([^']+)'"),
        lambda m, o: errors.DriverMissing(
            f"the database driver '{m[1] or m[2]}' is not installed in the project: "
            f"run {shlex.join(['npm', 'install', m[1] or m[2]])}",
            output=o,
        ),
    ),
    (re.compile(r"The migration directory is corrupt, the following files are missing: (.*)"), _corrupt),
    (
        re.compile(r"Migration table is already locked"),
        lambda m, o: errors.Locked(
            "the migration lock is held: another migration is running, or one crashed while holding it",
            output=o,
        ),
    ),
    (
        re.compile(r'Migration "([^"]+)" was not run'),
        lambda m, o: errors.MigrationNotRun(f'migration "{m[1]}" has not been run: nothing to revert', output=o),
    ),
    (
        re.compile(r'Migration "([^"]+)" not found'),
        lambda m, o: errors.MigrationNotFound(f'migration "{m[1]}" is not a pending migration in the folder', output=o),
    ),
    (re.compile(r'migration file "([^"]+)" failed'), _failed),
    (
        re.compile(r"(?:ENOTFOUND|EAI_AGAIN) (\S+)"),
        lambda m, o: errors.HostNotFound(f"database host {m[1]} not found", output=o),
    ),
    (
        re.compile(r"no answer from (\S+) within ([\d.]+) s"),
        lambda m, o: errors.Unreachable(
            f"no answer from {m[1]} within {m[2]} s: it accepted the connection but did not respond "
            "(raise the limit with --timeout)",
            output=o,
        ),
    ),
    (
        re.compile(r"ECONNREFUSED (\S+)"),
        lambda m, o: errors.Unreachable(f"connection refused by {m[1]}: is the database server running?", output=o),
    ),
    (
        re.compile(r'password authentication failed for user "([^"]*)"|(Access denied for user \S+)'),
        lambda m, o: errors.AuthFailed(
            f'authentication failed for user "{m[1]}"' if m[1] else f"authentication failed: {m[2]}", output=o
        ),
    ),
    (
        re.compile(r'role "([^"]*)" does not exist'),
        lambda m, o: errors.AuthFailed(f'the database user "{m[1]}" does not exist on the server', output=o),
    ),
    (
        re.compile(r"""database "([^"]+)" does not exist|Unknown database '([^']+)'"""),
        lambda m, o: errors.DatabaseMissing(f'database "{m[1] or m[2]}" does not exist', output=o),
    ),
    (
        re.compile(r"ENOENT: no such file or directory, scandir '([^']+)'"),
        lambda m, o: errors.ConfigError(f"migrations folder {m[1]} does not exist", output=o),
    ),
)


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("at "):
            return stripped
    return "no output"


def classify(stdout: str, stderr: str, exit_code: int, secrets: Iterable[str | None] = ()) -> errors.KnexwrapError:
    """The typed error of a knex run that exited ``exit_code``; KnexFailed (with the output) when unknown."""
    known = tuple(secrets)
    out, err = clean(mask(stdout, known)), clean(mask(stderr, known))
    both = f"{err}\n{out}"
    for pattern, make in _RULES:
        match = pattern.search(both)
        if match:
            return make(match, both.strip())
    return errors.KnexFailed(f"knex exited with code {exit_code}: {_first_error_line(err or out)}", output=both.strip())
