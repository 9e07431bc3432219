"""knexwrap's own lock of one migration set, held for the whole of a change: one change at a time.

knex's lock is a row with no owner and no time (knex #2502); on PostgreSQL a second knex run inside a
transaction waits on it forever. knexwrap's lock is tried once, never waited on, names its holder and
goes away with its holder:
- PostgreSQL: a session advisory lock (pg_try_advisory_lock), MySQL/MariaDB: GET_LOCK(name, 0), both
  held by a small node process (knex/js/hold_lock.js) that lives as long as the change;
- SQLite: flock on `<database>.knexwrap-lock` beside the file, held by knexwrap itself.
While holding it, knex's own lock is looked at (never waited on): a change never starts under it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .. import errors
from ..knex.node import PASSWORD_ENV
from ..knex.process import Background
from ..state.plugin import Target, connection_config


def _key(target: Target) -> str:
    """The lock's name: per set (table) within the database; MySQL's names are server-wide, so its database too."""
    c = target.connection
    key = f"knexwrap:{c.database}.{c.schema or ''}.{target.migrations.table}"
    return key if len(key) <= 64 else "knexwrap:" + hashlib.sha1(key.encode()).hexdigest()


def app_name() -> str:
    """The application_name of this knexwrap's knex sessions: what an interrupt cancels, and nothing else."""
    return f"knexwrap_{os.getpid()}"


@contextlib.contextmanager
def hold(target: Target, *, check_knex_lock: bool = True) -> Iterator[Background | None]:
    """Hold knexwrap's lock of the target's set while the block runs.

    Raises Locked (exit 9) at once when another knexwrap change of the set holds it (naming the holder),
    when knex's own lock is held or being taken (unless check_knex_lock is False: `unlock` itself), or when
    a SQLite file is busy with another writer. Released when the block ends, and by the database when
    knexwrap dies (the holder's session ends; the flock goes with the process). Yields the holder process
    (PostgreSQL, MySQL; SIGUSR2 makes it cancel the change's statement), None for SQLite.
    """
    if target.connection.is_sqlite:
        with _file_lock(target):
            _refuse_busy_sqlite(target)
            yield None
        return
    holder, answer = target.node.hold_lock(
        {
            "config": connection_config(target.connection, target.node.timeout),
            "table": target.migrations.table,
            "key": _key(target),
            "passwordEnv": PASSWORD_ENV,
            "cancel": app_name(),
        },
        target.node.timeout,
    )
    try:
        _refuse(target, answer, check_knex_lock)
        yield holder
    finally:
        holder.stop()


def _refuse(target: Target, answer: dict[str, Any], check_knex_lock: bool) -> None:
    where = f"{target.migrations.table} in {target.connection.target()}"
    if "error" in answer:
        from ..state.read import reader_error

        raise reader_error(answer)
    if not answer["held"]:
        who = answer.get("holder")
        by = f"{who['who']} from {who['client']} (since {who['since']})" if who else "a session that just ended"
        raise errors.Locked(f"another knexwrap change of {where} is running, held by {by}: nothing was changed")
    knex_lock = answer["knexLock"]
    if check_knex_lock:
        refuse_knex_lock(where, knex_lock, unlock_command(target))


def unlock_command(target: Target) -> str:
    """The command that releases knex's lock of TARGET's set, to paste (options beyond the plugin aside)."""
    return f"knexwrap unlock {target.migrations.plugin_id or target.migrations.directory}"


def refuse_knex_lock(where: str, knex_lock: dict[str, Any], unlock: str = "knexwrap unlock") -> None:
    """knex's own lock as hold_lock.js saw it: busy, held, or rows knex cannot take (duplicates); UNLOCK is the
    command that releases it (unlock_command())."""
    if knex_lock["busy"]:
        raise errors.Locked(
            f"a migration run (knex or a Backstage backend) is taking knex's lock of {where} right now; "
            "knexwrap does not wait on it: nothing was changed, run again when it has finished"
        )
    if knex_lock["locked"]:
        raise errors.Locked(
            f"the migration lock of {where} is held: another migration is running, or one crashed while "
            f"holding it; if neither backend nor knex is running, release it with {unlock}"
        )
    if knex_lock["rows"] > 1 and knex_lock["free"] != 1:
        raise errors.Locked(
            f"{where}_lock has {knex_lock['rows']} rows (two first runs raced, knex #3538): knex says "
            '"locked" for ever; clear it with knexwrap unlock'
        )


@contextlib.contextmanager
def _file_lock(target: Target) -> Iterator[None]:
    """flock on <database>.knexwrap-lock, removed again on release: Backstage's folder keeps no stray file."""
    path = Path(f"{target.connection.database}.knexwrap-lock")
    handle = _locked_file(path, target)
    with handle:
        _write_holder(handle)
        try:
            yield
        finally:
            # Unlinked while still locked: whoever opened it meanwhile finds, once it has the lock, that the
            # path no longer names its file, and starts over (_locked_file).
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _locked_file(path: Path, target: Target) -> TextIO:
    for _ in range(5):
        try:
            handle = path.open("a+", encoding="utf-8")
        except OSError as failed:
            raise errors.ConfigError(f"cannot create the lock file {path}: {failed.strerror or failed}") from failed
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise errors.Locked(
                f"another knexwrap change of {target.migrations.table} in {target.connection.target()} is running, "
                f"held by {_holder(path)}: nothing was changed"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()  # the holder before us removed this file on release: take the new one
    raise errors.Locked(f"the lock file {path} keeps changing: another knexwrap change is starting; run again")


def _write_holder(handle: TextIO) -> None:
    handle.seek(0)
    handle.truncate(0)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": since, "command": " ".join(sys.argv[1:3])}
    handle.write(json.dumps(me))
    handle.flush()


def _holder(path: Path) -> str:
    try:
        who = json.loads(path.read_text(encoding="utf-8"))
        return f"knexwrap {who['command']} (pid {who['pid']} on {who['host']}, since {who['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another knexwrap process"


def _refuse_busy_sqlite(target: Target) -> None:
    """A writer (a running backend, a raw knex) holding the file: said as such, not as knex's migration lock."""
    path = target.connection.database
    if not Path(path).is_file():
        return
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    except sqlite3.OperationalError as busy:
        raise errors.Locked(
            f"the SQLite file {path} is busy: another process is writing to it ({busy}); this is not knex's "
            "migration lock (do not unlock): stop that process or wait for it, then run again"
        ) from busy
    finally:
        db.close()
