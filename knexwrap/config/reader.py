"""Typed reads of the merged config, and one plugin's database settings as read from it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .shared import _MISSING, Key, LoadedConfig, _dotted, _kind, _lookup


class _Reader:
    """Typed reads of the merged config, with messages that name the file the value came from."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.data = config
        self.origins = config.origins if isinstance(config, LoadedConfig) else {}
        self.unset = config.unset if isinstance(config, LoadedConfig) else {}

    def files(self, *paths: Key) -> str:
        for depth in range(max(len(p) for p in paths), -1, -1):
            prefixes = {p[:depth] for p in paths}
            found = sorted(
                {origin for key, origin in self.origins.items() if any(key[: len(p)] == p for p in prefixes)}
            )
            if found:
                return ", ".join(dict.fromkeys(name for _, name in found))
        return "app-config"

    def error(self, path: Key, message: str) -> ConfigError:
        return ConfigError(f"{self.files(path)}: {_dotted(path)}: {message}")

    def get(self, path: Key) -> Any:
        data: Any = self.data
        for index, part in enumerate(path):
            if data is None or data is _MISSING:
                return _MISSING
            if not isinstance(data, Mapping):
                raise self.error(path[:index], f"must be a mapping, not {_kind(data)}")
            data = data.get(part, _MISSING)
        return _MISSING if data is None else data

    def _absent(self, path: Key) -> bool:
        parent = _lookup(self.data, path[:-1]) if path[:-1] else self.data
        return isinstance(parent, Mapping) and parent.get(path[-1]) is None

    def check_unset(self, path: Key) -> None:
        if path in self.unset and self._absent(path):
            source, why = self.unset[path]
            raise ConfigError(f"{source}: {_dotted(path)}: {why}")

    def unset_below(self, prefix: Key) -> Iterator[tuple[Key, str, str]]:
        for path, (source, why) in self.unset.items():
            if len(path) > len(prefix) and path[: len(prefix)] == prefix and self._absent(path):
                yield path, source, why

    def optional_str(self, path: Key) -> str | None:
        self.check_unset(path)
        value = self.get(path)
        if value is _MISSING:
            return None
        if not isinstance(value, str) or value == "":
            raise self.error(path, f"must be a non-empty string, not {_kind(value)}")
        return value

    def required_str(self, path: Key) -> str:
        value = self.optional_str(path)
        if value is None:
            raise self.error(path, "is required and not set")
        return value


@dataclass(frozen=True)
class _Plugin:
    reader: _Reader
    plugin_id: str
    client: str  # as configured ("mysql" stays "mysql" here)
    overridden: bool
    mode: str
    prefix: str
    schema_prefix: str
    base_raw: Any
    plugin_raw: Any
    base_path: Key
    plugin_path: Key

    def key_path(self, key: str, plugin_conn: Mapping[str, Any]) -> Key:
        """The config path that supplied ``key`` of the effective connection."""
        if key in plugin_conn:
            return (*self.plugin_path, key) if isinstance(self.plugin_raw, dict) else self.plugin_path
        return (*self.base_path, key) if isinstance(self.base_raw, dict) else self.base_path
