"""Backstage's config transforms for one file: ``${VAR}`` substitution, then ``$file``, ``$env`` and ``$include``."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .limits import MAX_DEPTH, TOO_DEEP, check_depth
from .shared import _MISSING, Key, _dotted, _kind, _reason
from .yaml12 import _parse_yaml

_SUBSTITUTION = re.compile(r"(\$?\$\{[^{}]*\})")
_INCLUDE_KEYS = ("$file", "$env", "$include")


def _env_value(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return None if value is None else value.strip()


def _substitute(text: str, env: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """Backstage's substitution transform: the new text, or None and the variables that are missing."""
    parts = _SUBSTITUTION.split(text)
    missing: list[str] = []
    for index in range(1, len(parts), 2):
        part = parts[index]
        if part.startswith("$$"):
            parts[index] = part[1:]
            continue
        separator = part.find(":-")
        if separator > -1:
            name = part[2:separator].strip()
            fallback = part[separator + 2 : -1].strip()
            value = _env_value(env, name) or fallback or None
        else:
            name = part[2:-1].strip()
            value = _env_value(env, name)
        if value is None:
            missing.append(name)
        else:
            parts[index] = value
    if missing:
        return None, missing
    return "".join(parts), []


def _not_set(names: Sequence[str]) -> str:
    shown = ", ".join(f"${{{name}}}" for name in names)
    return f"{shown} {'is' if len(names) == 1 else 'are'} not set"


class _FileTransformer:
    """applyConfigTransforms for one file: substitution on strings, then $file/$env/$include."""

    def __init__(self, name: str, env: Mapping[str, str]) -> None:
        self.name = name
        self.env = env
        self.unset: dict[Key, str] = {}
        # The files being included around the value being transformed: one found again is a cycle,
        # which Backstage follows until it runs out of stack.
        self._including: list[Path] = []

    def error(self, path: Key, message: str) -> ConfigError:
        return ConfigError(f"{self.name}: {_dotted(path)}: {message}" if path else f"{self.name}: {message}")

    def transform(self, node: Any, path: Key, directory: Path) -> Any:
        """The value at ``path`` with Backstage's transforms applied; _MISSING where a variable is unset."""
        if len(path) > MAX_DEPTH:
            raise self.error(path[:MAX_DEPTH], TOO_DEEP)
        entered = len(self._including)
        try:
            return self._transform(node, path, directory)
        finally:
            del self._including[entered:]  # the files this value included are done with

    def _transform(self, node: Any, path: Key, directory: Path) -> Any:
        obj = node
        if isinstance(node, str):
            value, missing = _substitute(node, self.env)
            if value is None:
                self.unset[path] = _not_set(missing)
                return _MISSING
            return value
        if isinstance(node, dict):
            included = self._include(node, path, directory)
            if included is not None:
                obj, directory = included
                if obj is _MISSING:
                    return _MISSING
        if isinstance(obj, list):
            items = [self.transform(item, (*path, f"[{i}]"), directory) for i, item in enumerate(obj)]
            return [item for item in items if item is not _MISSING]
        if isinstance(obj, dict):
            out = {}
            for key, value in obj.items():
                result = self.transform(value, (*path, key), directory)
                if result is not _MISSING:
                    out[key] = result
            return out
        return obj

    def _include(self, node: dict[str, Any], path: Key, directory: Path) -> tuple[Any, Path] | None:
        keys = [key for key in node if key in _INCLUDE_KEYS]
        if not keys:
            return None
        key = keys[0]
        if len(node) != 1:
            raise self.error(path, f"{key} must be the only key of its mapping")
        raw = node[key]
        if not isinstance(raw, str):
            raise self.error(path, f"{key} must be given a string, not {_kind(raw)}")
        value, missing = _substitute(raw, self.env)
        if value is None:
            raise self.error(path, f"{key}: {_not_set(missing)}")
        if key == "$env":
            found = _env_value(self.env, value)
            if found is None:
                self.unset[path] = f"$env {value} is not set"
                return _MISSING, directory
            return found, directory
        if key == "$file":
            return self._read(key, value, directory, path).rstrip(), directory
        return self._include_file(value, directory, path)

    def _include_file(self, value: str, directory: Path, path: Key) -> tuple[Any, Path]:
        """``$include: <file>[#<dotted.path>]``: a JSON or YAML file, or one value in it."""
        file_part, _, data_path = value.partition("#")
        suffix = os.path.splitext(file_part)[1]
        if suffix not in (".json", ".yaml", ".yml"):
            raise self.error(path, f"$include {file_part}: only .json, .yaml and .yml files can be included")
        target = directory / file_part
        if target.resolve() in self._including:
            raise self.error(path, f"$include {file_part} is already being included: a cycle")
        text = self._read("$include", file_part, directory, path)
        included = self._parse_included(text, suffix, file_part, path)
        self._including.append(target.resolve())
        parts = data_path.split(".") if data_path else []
        for index, part in enumerate(parts):
            if not isinstance(included, dict):
                at = ".".join(parts[:index])
                raise self.error(path, f"$include {file_part}: the value at '{at}' is not a mapping")
            included = included.get(part, _MISSING)
        if included is _MISSING:
            self.unset[path] = f"$include {value} has no value"
        elif isinstance(included, str):
            substituted, missing = _substitute(included, self.env)
            if substituted is None:
                self.unset[path] = f"$include {value}: {_not_set(missing)}"
                included = _MISSING
            else:
                included = substituted
        return included, target.parent

    def _parse_included(self, text: str, suffix: str, file_part: str, path: Key) -> Any:
        if suffix == ".json":
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                raise self.error(path, f"$include {file_part}: not valid JSON ({exc.__class__.__name__})") from None
            except RecursionError:  # nested deeper than Python's stack: deeper than MAX_DEPTH too
                parsed = _MISSING
            if parsed is _MISSING or not check_depth(parsed, len(path)):
                raise self.error(path, f"$include {file_part}: {TOO_DEEP}")
            return parsed
        try:
            return _parse_yaml(text, file_part)
        except ConfigError as exc:
            raise self.error(path, f"$include {exc.message}") from None

    def _read(self, key: str, name: str, directory: Path, path: Key) -> str:
        try:
            return (directory / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self.error(path, f"{key} {name} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(path, f"{key} {name} cannot be read ({_reason(exc)})") from None
