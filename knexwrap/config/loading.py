"""Which app-config files Backstage reads, and how it reads and merges them with ``APP_CONFIG_*``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .limits import TOO_DEEP, check_depth
from .shared import _KEY_PART, _MISSING, Key, LoadedConfig, _kind, _lookup, _reason
from .transform import _FileTransformer
from .yaml12 import _parse_yaml

_ENV_PREFIX = "APP_CONFIG_"

# One source: its data, each leaf's file or variable, the keys a missing variable left unset, its name.
_Layer = tuple[dict[str, Any], dict[Key, str], dict[Key, str], str]

# --------------------------------------------------------------------------------------------- files


def find_config_files(project: Path, explicit: Sequence[str], *, env: Mapping[str, str] | None = None) -> list[Path]:
    """The files Backstage reads, in order: the ``--config`` files, else the defaults that exist.

    Like ConfigSources.defaultForTargets: explicit paths are relative to the current directory;
    ``BACKSTAGE_ENV`` (comma-separated) adds ``app-config.<env>.yaml`` and ``app-config.<env>.local.yaml``.
    """
    if explicit:
        paths = []
        for item in explicit:
            path = Path(os.path.abspath(item))
            if not path.is_file():
                raise ConfigError(f"--config {item}: no such file")
            paths.append(path)
        return paths
    environ = os.environ if env is None else env
    envs = [e.strip() for e in environ.get("BACKSTAGE_ENV", "").split(",") if e.strip()]
    names = [
        "app-config.yaml",
        *(f"app-config.{e}.yaml" for e in envs),
        "app-config.local.yaml",
        *(f"app-config.{e}.local.yaml" for e in envs),
    ]
    return [project / name for name in names if (project / name).is_file()]


def load(files: Sequence[Path], env: Mapping[str, str]) -> dict[str, Any]:
    """Read, substitute and merge ``files`` (later wins), then apply ``APP_CONFIG_*`` from ``env``."""
    merged: Any = _MISSING
    origins: dict[Key, tuple[int, str]] = {}
    unset: dict[Key, tuple[str, str]] = {}
    for index, (data, names, layer_unset, name) in enumerate(_layers(files, env)):
        merged = _merge(data, merged)
        for leaf, source in names.items():
            origins[leaf] = (index, source)
            unset.pop(leaf, None)  # a later file set (or removed) it: an earlier missing variable is moot
        for key, why in layer_unset.items():
            unset[key] = (name, why)
    result: dict[str, Any] = {} if merged is _MISSING else merged
    origins = {key: origin for key, origin in origins.items() if _lookup(result, key) is not _MISSING}
    return LoadedConfig(result, origins, unset)


def _layers(files: Sequence[Path], env: Mapping[str, str]) -> list[_Layer]:
    """The sources in order, earliest first: the files that hold anything, then ``APP_CONFIG_*``."""
    layers: list[_Layer] = []
    for path in files:
        name = _display(path)
        data, file_unset = _read_file(path, name, env)
        if data is not None:
            layers.append((data, {leaf: name for leaf in _leaves(data, ())}, file_unset, name))
    env_data, env_names = _read_env_config(env)
    if env_data:
        layers.append((env_data, env_names, {}, "environment"))
    return layers


def _display(path: Path) -> str:
    absolute = os.path.abspath(path)
    try:
        return str(Path(absolute).relative_to(os.path.abspath(os.getcwd())))
    except (ValueError, OSError):
        return str(path)


def _read_file(path: Path, name: str, env: Mapping[str, str]) -> tuple[dict[str, Any] | None, dict[Key, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot be read ({_reason(exc)})") from None
    parsed = _parse_yaml(text, name)
    if parsed is None:  # empty, or only comments: Backstage skips the file
        return None, {}
    reader = _FileTransformer(name, env)
    data = reader.transform(parsed, (), path.parent)
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: the top level must be a mapping of keys, not {_kind(data)}")
    return data, reader.unset


# ----------------------------------------------------------------------------------- APP_CONFIG_*


def _read_env_config(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[Key, str]]:
    """EnvConfigSource: APP_CONFIG_a_b_c=<JSON, or else the text> sets a.b.c."""
    data: dict[str, Any] = {}
    names: dict[Key, str] = {}
    for name, value in env.items():
        if not value or not name.startswith(_ENV_PREFIX):
            continue
        key = name[len(_ENV_PREFIX) :]
        parts = key.split("_")
        obj = data
        for index, part in enumerate(parts):
            if not _KEY_PART.match(part):
                raise ConfigError(f"{name}: '{key}' is not a valid config key")
            if index < len(parts) - 1:
                child = obj.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ConfigError(f"{name}: cannot set a key under '{'_'.join(parts[: index + 1])}', a value")
                obj = child
                continue
            if part in obj:
                raise ConfigError(f"{name}: refusing to override the config already set at '{key}'")
            try:
                parsed = _json_or_text(value)
            except RecursionError:  # JSON nested deeper than Python's stack
                raise ConfigError(f"{name}: {TOO_DEEP}") from None
            if parsed is None:
                raise ConfigError(f"{name}: the value may not be null")
            if not check_depth(parsed, len(parts)):
                raise ConfigError(f"{name}: {TOO_DEEP}")
            obj[part] = parsed
            for leaf in _leaves(parsed, tuple(parts)):
                names[leaf] = name
    return data, names


def _json_or_text(value: str) -> Any:
    def no_constants(text: str) -> Any:
        raise ValueError(text)  # NaN and Infinity are not JSON to JavaScript

    try:
        return json.loads(value, parse_constant=no_constants)
    except ValueError:
        return value


# ------------------------------------------------------------------------------------------ merging


def _leaves(value: Any, path: Key) -> Iterator[Key]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    elif path:
        yield path


def _merge(into: Any, source: Any = _MISSING) -> Any:
    """@backstage/config's merge: ``into`` (the later source) over ``source``; null removes a key."""
    if into is None:
        return _MISSING
    if into is _MISSING:
        return _MISSING if source is _MISSING else _merge(source)
    if not isinstance(into, dict):
        return into
    other = source if isinstance(source, dict) else {}
    out = {}
    for key in dict.fromkeys([*into, *other]):
        value = _merge(into.get(key, _MISSING), other.get(key, _MISSING))
        if value is not _MISSING:
            out[key] = value
    return out
