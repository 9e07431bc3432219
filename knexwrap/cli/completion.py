"""Shell completion: `knexwrap completion bash|zsh|fish` prints the script; TAB asks knexwrap itself.

Plugin ids come from the current repository's node_modules, migration names from the plugin's folder
and the last snapshot: a TAB never connects to a database.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem, get_completion_class

from .. import errors

COMPLETE_VAR = "_KNEXWRAP_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_command(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    E.g. `eval "$(knexwrap completion bash)"` in ~/.bashrc.
    """
    group = click.get_current_context().find_root().command  # the knexwrap group, without importing main
    completer = get_completion_class(shell)
    if completer is None:  # click ships all three: a missing one is a click that knexwrap does not support
        raise errors.ToolMissing(f"this click has no {shell} completion")
    click.echo(completer(group, {}, "knexwrap", COMPLETE_VAR).source())


def plugins(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The plugin ids of the repository (--project-dir, or the one around the current folder)."""
    from ..install import sets

    project = _project(ctx)
    if project is None:
        return []
    ids = sorted({str(s.plugin_id) for s in sets.discover_all(project) if s.plugin_id not in (None, sets.EVERY_PLUGIN)})
    return [CompletionItem(i) for i in ids if i.startswith(incomplete)]


def migrations(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The migration names of the PLUGIN already on the line: its folder's files and, for what the
    folder no longer has, what the last snapshot recorded as applied in its database."""
    project, plugin = _project(ctx), ctx.params.get("plugin")
    if plugin is None and ctx.args:
        # `up PLUGIN --to <TAB>`: click stops parsing at the option still waiting for its value, and the
        # positional words are left unassigned in ctx.args, PLUGIN first.
        plugin = ctx.args[0]
    if project is None or not plugin:
        return []
    names = set(_files(project, str(plugin))) | set(_snapshot_names(project, str(plugin)))
    return [CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)]


def _project(ctx: click.Context) -> Path | None:
    from ..install.plugins import find_project

    try:
        return find_project(Path.cwd(), ctx.params.get("project_dir"))
    except errors.KnexwrapError:
        return None  # not in a repository: nothing to offer, and a TAB never prints an error


def _files(project: Path, plugin: str) -> list[str]:
    from ..install import plugins, sets
    from ..state.read import list_files

    try:
        own = plugins.resolve(project, plugin)
    except errors.KnexwrapError:
        return []
    # The shared sets (scheduler, ...) live in the plugin's database too: up/down NAME reaches them.
    shared = [s for s in sets.discover_all(project) if s.plugin_id == sets.EVERY_PLUGIN]
    return [name for one in (own, *shared) for name in list_files(one.directory)]


def _snapshot_names(project: Path, plugin: str) -> list[str]:
    from ..upgrade import snapshot

    taken = sorted((project / ".knexwrap" / "snapshots").glob("snapshot-*.json"))
    if not taken:
        return []
    try:
        last = snapshot.read(taken[-1])
    except errors.KnexwrapError:
        return []
    return [a.name for d in last.databases if d.plugin == plugin for s in d.sets for a in s.applied]
