"""The `knexwrap` console script: `status PLUGIN` starts its reader before the heavy imports.

`knexwrap status PLUGIN` only reads, and its node reader needs nothing from the command line to start:
only the project folder and its knex. So, before click, sh and tabulate are imported, this finds the
project with the rule the normal path uses (install.root.find_root_folder, which find_root wraps), guesses
the knex (prestart.guess_knex; the normal path uses the reader only if the backend loads that one) and
starts the reader (knex.prestart), which loads knex while Python imports and reads the configuration.
Everything else, and every error, goes through the normal click CLI (cli.main.main) unchanged: the reader
is only ever handed a request
by the normal path, and a reader nobody claimed is stopped before this process exits.

Standard library and knexwrap's stdlib-only modules only, until main.main is imported.
"""

from __future__ import annotations

import gc
import os
import sys

from ..errors import KnexwrapError
from ..install.root import find_root_folder
from ..knex import prestart

# knex clients whose name means the same driver to knex and to knexwrap: the reader may preload those.
_DRIVERS = ("pg", "better-sqlite3", "sqlite3", "mysql2")


def main(argv: list[str] | None = None) -> int:
    """Run knexwrap with ARGV (default sys.argv[1:]); the exit code, as cli.main.main returns it."""
    args = sys.argv[1:] if argv is None else argv
    if _reads_one_plugin(args):
        _prestart(args)
    try:
        gc.disable()  # the imports allocate much and free little: collecting during them is wasted time
        try:
            from .main import main as cli_main
        finally:
            gc.enable()
        return cli_main(args)
    finally:
        prestart.abandon()


def run() -> None:
    """The console-script entry point (pyproject.toml).

    Ends with os._exit once the output is flushed: every context manager has closed by then (no reader,
    holder or scratch database is left), and the interpreter's teardown of every imported module is
    time an operator waits for, on every command."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # e.g. the reading end of a pipe closed early (knexwrap status | head -1)
        code = code or 120  # what Python itself exits with when it cannot flush at exit
    os._exit(code)


def _reads_one_plugin(args: list[str]) -> bool:
    """`status PLUGIN ...` without --help: the one read that pays for the reader's start-up alone."""
    return (
        len(args) >= 2
        and args[0] == "status"
        and not args[1].startswith("-")
        and not any(a in ("-h", "--help") for a in args)
    )


def _option(args: list[str], name: str) -> str | None:
    """The last value of --NAME VALUE or --NAME=VALUE in ARGS, as click would take it; None if absent."""
    found = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == name and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith(name + "="):
            found = arg[len(name) + 1 :]
    return found


def _prestart(args: list[str]) -> None:
    here = os.getcwd()
    try:
        project = find_root_folder(here, _option(args, "--project-dir"))
    except (KnexwrapError, OSError):
        return  # the normal path finds the same problem and reports it; nothing was started
    knex_js = prestart.guess_knex(project, here)
    if knex_js is None:
        return  # the normal path reports a missing knex as it always does
    client = _option(args, "--client") or os.environ.get("KNEXWRAP_CLIENT") or "pg"  # knexwrap's default
    preload = client if client in _DRIVERS else None  # an alias may mean another driver to knex
    prestart.start(project, knex_js, preload, lambda: _import_while_reading(project, "--json" not in args))


def _import_while_reading(project: str, renders: bool) -> None:
    """Imported while the reader queries (Python is idle then): the drift check, with the archive and journal
    where the state folder exists (statedir.where), and the table renderer with tabulate unless --json."""
    from pathlib import Path  # imported long before: the normal path's modules use it

    from ..upgrade import drift, statedir  # noqa: F401

    if statedir.where(Path(project)).is_dir():
        from ..upgrade import archive, journal  # noqa: F401
    if renders:
        import tabulate  # noqa: F401

        from . import fit, text  # noqa: F401
