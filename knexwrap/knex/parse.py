"""Pure parsers over what the Knex CLI prints. No I/O here: tests feed them captured real output.

Migration names are data and come back exactly as knex printed them. What knexwrap shows as free
text (notes, the output of an answer it cannot read) has the given passwords masked (mask.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .. import errors
from .mask import mask

Secrets = Iterable[str | None]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Lines knex prints before the answer; they depend on how it was started, not on the database.
_PREAMBLE = ("Using environment:", "Working directory changed to", "Requiring external module")
_FOUND = re.compile(r"^Found (\d+) (Completed|Pending) Migration file/files\.$")
_NONE = re.compile(r"^No (Completed|Pending) Migration files Found\.$")
_BATCH = re.compile(
    r"^Batch (\d+) (?:run: (\d+) migrations|ran the following migrations:"
    r"|rolled back: (\d+) migrations|rolled back the following migrations:)$"
)
_NOTHING = ("Already up to date", "Already at the base migration")


@dataclass(frozen=True)
class Listing:
    completed: tuple[str, ...]
    pending: tuple[str, ...]
    notes: tuple[str, ...]  # lines knexwrap did not recognise (warnings); shown, never dropped


@dataclass(frozen=True)
class Change:
    batch: int | None  # the highest batch in the table, as knex reports it; None when nothing ran
    names: tuple[str, ...]
    notes: tuple[str, ...]


def clean(text: str) -> str:
    return _ANSI.sub("", text).replace("\r\n", "\n")


def body_lines(stdout: str) -> list[str]:
    lines = [line.rstrip() for line in clean(stdout).split("\n")]
    return [line for line in lines if line and not line.startswith(_PREAMBLE)]


def _unexpected(what: str, stdout: str, secrets: Secrets) -> errors.KnexFailed:
    return errors.KnexFailed(f"knex printed something knexwrap cannot read as {what}", output=mask(stdout, secrets))


def parse_list(stdout: str, secrets: Secrets = ()) -> Listing:
    sections: dict[str, list[str]] = {"Completed": [], "Pending": []}
    expected: dict[str, int] = {}
    notes: list[str] = []
    current: str | None = None
    for line in body_lines(stdout):
        found, none = _FOUND.match(line), _NONE.match(line)
        if found:
            current, expected[found[2]] = found[2], int(found[1])
        elif none:
            current, expected[none[1]] = None, 0
        elif current is not None:
            sections[current].append(line.strip())
        else:
            notes.append(line)
    if set(expected) != {"Completed", "Pending"} or any(len(sections[k]) != n for k, n in expected.items()):
        raise _unexpected("a migration list", stdout, secrets)
    return Listing(tuple(sections["Completed"]), tuple(sections["Pending"]), _masked(notes, secrets))


def _masked(notes: list[str], secrets: Secrets) -> tuple[str, ...]:
    known = tuple(secrets)
    return tuple(mask(note, known) for note in notes)


def parse_current(stdout: str, secrets: Secrets = ()) -> str | None:
    for line in body_lines(stdout):
        if line.startswith("Current Version: "):
            version = line.split(": ", 1)[1].strip()
            return None if version == "none" else version
    raise _unexpected("a current version", stdout, secrets)


def parse_change(stdout: str, secrets: Secrets = ()) -> Change:
    """Output of migrate:latest/up/down/rollback (latest and rollback run with --verbose)."""
    batch: int | None = None
    names: list[str] = []
    notes: list[str] = []
    seen = False
    for line in body_lines(stdout):
        match = _BATCH.match(line)
        if match:
            batch, seen = int(match[1]), True
        elif line in _NOTHING:
            seen = True
        elif batch is not None:
            names.append(line.strip())
        else:
            notes.append(line)
    if not seen:
        raise _unexpected("a migration result", stdout, secrets)
    return Change(batch, tuple(names), _masked(notes, secrets))


def parse_unlock(stdout: str, secrets: Secrets = ()) -> None:
    if not any("unlocked the migrations lock table" in line for line in body_lines(stdout)):
        raise _unexpected("an unlock confirmation", stdout, secrets)
