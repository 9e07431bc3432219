"""Migration sets read from a package's own built code, statically: plugin code is never run.

Backstage packages hand their set to knex in their dist code:

    const migrationsDir = resolvePackagePath("@backstage/backend-defaults", "migrations/scheduler");
    await knex.migrate.latest({ directory: migrationsDir, tableName: DB_MIGRATIONS_TABLE });

and name their plugin in `createBackendPlugin({ pluginId: "catalog" })` /
`createBackendModule({ pluginId: "catalog", moduleId: ... })`. This module finds those facts with
regular expressions over dist/**/*.js; what the code does not say is left to the data table (sets.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_LATEST = "migrate.latest("
_STRING = r"""(["'`])([^"'`\n]+)\1"""
# resolvePackagePath("<pkg>", "<folder>"), or with an expression for the package (the package itself).
_PACKAGE_PATH = "resolvePackagePath("
_LITERAL = re.compile(r"""^(["'`])([^"'`\n]*)\1$""")
# path.resolve(__dirname, "../migrations") and path.join(__dirname, ...), under any module alias.
_DIRNAME_PATH = re.compile(r"\.(?:resolve|join)\(\s*__dirname\s*,\s*" + _STRING + r"\s*\)")
_TABLE = re.compile(r"tableName\s*:\s*(?:" + _STRING + r"|([A-Za-z_$][\w$.]*))")
_PLUGIN_ID = re.compile(r"createBackend(?:Plugin|Module)\(\s*\{[^{}]*?pluginId\s*:\s*" + _STRING)
_CODE_SUFFIXES = (".js", ".cjs", ".mjs")


@dataclass(frozen=True)
class CodeSet:
    """One `migrate.latest` call: the folder it passes, and the table (None: the code names none,
    so knex's default; "?" when it passes a name this reader cannot follow)."""

    directory: Path
    table: str | None
    file: Path  # the dist file it was read from


@dataclass(frozen=True)
class CodeFacts:
    sets: tuple[CodeSet, ...]
    plugin_ids: tuple[str, ...]  # every pluginId passed to createBackendPlugin / createBackendModule


def _sources(folder: Path) -> list[Path]:
    found: list[Path] = []
    for base, dirs, files in os.walk(folder / "dist"):
        dirs[:] = [d for d in dirs if d != "node_modules"]
        found.extend(Path(base, f) for f in files if f.endswith(_CODE_SUFFIXES) and not f.endswith(".d.js"))
    return sorted(found)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _constant(texts: dict[Path, str], name: str) -> str | None:
    """The string a package-wide `const NAME = "value";` gives (tables are often named so); only files
    that mention NAME are searched."""
    pattern = re.compile(r"\b(?:const|var|let)\s+" + re.escape(name) + r"""\s*=\s*(["'`])([^"'`\n]+)\1\s*;""")
    for text in texts.values():
        if name in text:
            m = pattern.search(text)
            if m:
                return m.group(2)
    return None


def _arguments(text: str, start: int) -> list[str]:
    """The top-level arguments of the call whose "(" is just before `start` (strings and nesting kept whole)."""
    args, depth, quote, current = [], 0, "", start
    for i in range(start, min(len(text), start + 2000)):
        char = text[i]
        if quote:
            quote = "" if char == quote and text[i - 1] != "\\" else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        elif char == "," and not depth:
            args.append(text[current:i].strip())
            current = i + 1
        elif char == ")":
            return [*args, text[current:i].strip()]
    return []


def _literal(arg: str) -> str | None:
    m = _LITERAL.match(arg)
    return m.group(2) if m else None


def _directories(path: Path, text: str, package: str, folder: Path) -> list[tuple[int, Path]]:
    found = []
    at = text.find(_PACKAGE_PATH)
    while at != -1:
        args = _arguments(text, at + len(_PACKAGE_PATH))
        named = _literal(args[0]) if args else None
        sub = _literal(args[1]) if len(args) == 2 else None
        # An expression for the package is the package itself; another package's folder is its own set.
        if sub is not None and (named is None or named == package):
            found.append((at, folder / sub))
        at = text.find(_PACKAGE_PATH, at + 1)
    for m in _DIRNAME_PATH.finditer(text):
        found.append((m.start(), (path.parent / m.group(2)).resolve()))
    return sorted(found, key=lambda f: f[0])


def _table(text: str, start: int, end: int, texts: dict[Path, str]) -> str | None:
    m = _TABLE.search(text, start, end)
    if m is None:
        return None
    if m.group(2) is not None:
        return m.group(2)
    return _constant(texts, m.group(3).rsplit(".", 1)[-1]) or "?"


def read(folder: Path, package: str) -> CodeFacts:
    """The sets and plugin ids a package's dist code hands to knex and Backstage (see module docstring).

    `folder` is the package's real folder, `package` its name. Files that never call migrate.latest
    are not searched for sets; a folder the code names but the package lacks is left out."""
    texts = {p: _read(p) for p in _sources(folder)}
    sets: list[CodeSet] = []
    ids: list[str] = []
    for path, text in texts.items():
        if "createBackend" in text:  # a substring test first: the regex over every file costs more
            ids += [m.group(2) for m in _PLUGIN_ID.finditer(text)]
        if _LATEST not in text:
            continue
        found = _directories(path, text, package, folder)
        for i, (start, directory) in enumerate(found):
            end = found[i + 1][0] if i + 1 < len(found) else len(text)
            if directory.is_dir():
                sets.append(CodeSet(directory.resolve(), _table(text, start, end, texts), path))
    unique = {(s.directory, s.table): s for s in sets}
    return CodeFacts(tuple(unique[k] for k in sorted(unique, key=str)), tuple(dict.fromkeys(ids)))
