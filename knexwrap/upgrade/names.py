"""A migration NAME as the operator typed it: which file it is, whether it exists at all, what it is close to.

knex wants the exact file name; knexwrap takes it with or without its extension (`20240101000000_init` or
`20240101000000_init.js`). A NAME that is in no folder of the plugin's database and in no row of the set's
table is a typo, not a state: the error names the closest names instead of a bare "not found", so that the
next command is the right one.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import replace

from .. import errors
from ..state import read as st
from ..state.plugin import Target, neighbours

CLOSEST = 3  # how many close names an error lists
CUTOFF = 0.6  # difflib's similarity ratio below which a name is not offered


def file_name(name: str, candidates: tuple[str, ...]) -> str:
    """NAME as typed, with or without its extension, matched against the names knex knows (NAME if none)."""
    if name in candidates:
        return name
    for candidate in candidates:
        if candidate.rsplit(".", 1)[0] == name:
            return candidate
    return name


def closest(name: str, candidates: tuple[str, ...]) -> list[str]:
    """Up to CLOSEST of CANDIDATES nearest to NAME (best first, at least CUTOFF alike), as full file names.

    Case and migration extensions are ignored (".js" alike in every name says nothing). Names share long timestamps, so
    the words after the timestamp weigh three times as much as the timestamp, and NAME without a timestamp
    (`locations`) is compared with the words alone: `20240201000000_LOCATIONS` and `locations` both find
    `20240201000000_locations.js`, and two files of the same month are not "close" for their digits alone."""
    typed = _stem(name).lower()
    scored = []
    for order, candidate in enumerate(dict.fromkeys(candidates)):  # unique, first seen first
        scored.append((-_likeness(typed, _stem(candidate).lower()), order, candidate))
    return [candidate for score, _, candidate in sorted(scored) if -score >= CUTOFF][:CLOSEST]


def _likeness(typed: str, key: str) -> float:
    """How alike two names are, 0 to 1 (difflib's ratio), their timestamps weighing a quarter."""
    stamp, words = _split(typed)
    their_stamp, their_words = _split(key)
    alike = difflib.SequenceMatcher(None, words, their_words).ratio()
    if len(words) >= 3 and words in their_words:
        alike = max(alike, 0.9)  # the words typed are part of the name's: `refresh` of `refresh_state`
    if not stamp:
        return alike
    return 0.25 * difflib.SequenceMatcher(None, stamp, their_stamp).ratio() + 0.75 * alike


def _stem(name: str) -> str:
    """NAME without its migration extension (`.js`, `.ts`, ...), if it has one."""
    stem, ext = os.path.splitext(name)
    return stem if ext in st.MIGRATION_EXTENSIONS else name


def _split(name: str) -> tuple[str, str]:
    """(timestamp, words) of a migration name: `20240101000000_init` is ("20240101000000", "init")."""
    head, sep, tail = name.partition("_")
    return (head, tail) if sep and head.isdigit() else ("", name)


def known(target: Target, state: st.SetState) -> tuple[str, ...]:
    """Every name NAME could mean in the target's database: the set's files and rows, the other sets' files."""
    others = tuple(name for other in neighbours(target) for name in st.list_files(other.directory))
    return state.files + state.applied_names + others


def require(target: Target, state: st.SetState, name: str) -> str:
    """The file NAME means in the target's set; MigrationNotFound (11) with the closest names when NAME is in
    no folder of the plugin's database and in no row of the set's table.

    Run after set_for_name picked the set whose folder holds NAME: a NAME of another set's folder
    reaches here only with --migrations-table-name naming another table, and is then none of this set's."""
    wanted = file_name(name, state.applied_names + state.files)
    if wanted in state.files or wanted in state.applied_names:
        return wanted
    near = closest(name, known(target, state))
    error = errors.MigrationNotFound(
        f"no such migration {name} in {target.migrations.directory}; "
        + (f"closest: {', '.join(near)}" if near else "no migration name is close to it")
    )
    error.facts["closest"] = near
    raise error


def pending_before(state: st.SetState, wanted: str) -> tuple[str, ...]:
    """The pending files that come before WANTED in knex's order (file name order)."""
    return tuple(name for name in state.pending if name < wanted)


def out_of_order(state: st.SetState, wanted: str) -> tuple[str, ...]:
    """The warning for applying WANTED while files before it are still pending (none when there are none)."""
    earlier = pending_before(state, wanted)
    if not earlier:
        return ()
    one = len(earlier) == 1
    return (
        f"out of order: {', '.join(earlier)} {'is' if one else 'are'} still pending and "
        f"{'comes' if one else 'come'} before {wanted} in knex's order "
        f"(up --to {wanted} applies {'it' if one else 'them'} first)",
    )


def set_for_name(target: Target, name: str | None) -> Target:
    """The set of the plugin's database whose folder holds NAME: `down catalog <a scheduler file>`
    means the scheduler's set in the catalog database. The plugin's own set when NAME is its own or
    in no folder."""
    if name is None:
        return target
    own = st.list_files(target.migrations.directory)
    if file_name(name, own) in own:
        return target
    for other in neighbours(target):
        files = st.list_files(other.directory)
        if file_name(name, files) in files:
            return replace(target, migrations=other)
    return target
