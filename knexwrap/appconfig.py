"""Find a plugin's database in Backstage's own app-config files, the way Backstage finds it.

Pure Python, no Node: it reproduces what ``@backstage/config-loader`` (1.11.x) and the database manager
of ``@backstage/backend-defaults`` (0.19.x) do, so knexwrap connects where the backend connects.

- Files: ``--config`` files, else ``app-config.yaml``, ``app-config.<BACKSTAGE_ENV>.yaml``,
  ``app-config.local.yaml``, ``app-config.<BACKSTAGE_ENV>.local.yaml`` (those present), then the
  ``APP_CONFIG_*`` environment variables. Later sources win; mappings merge deeply; ``null`` removes a key.
- YAML 1.2 core schema (as the ``yaml`` package reads it): ``yes``/``on`` stay strings, ``0123`` is 123,
  no timestamps, no ``<<`` merge keys, duplicate keys are an error.
- Values: ``${VAR}``, ``${VAR:-fallback}``, ``$${...}`` (literal), ``$env``, ``$file``, ``$include``.
  A variable that is not set makes the whole value undefined, as in Backstage; knexwrap then refuses to
  guess when that value is one it needs (a ConfigError naming the variable).
- ``backend.database``: ``client``, ``connection`` (mapping or connection string), ``prefix``,
  ``pluginDivisionMode``/``schemaPrefix``, ``role`` and ``plugin.<pluginId>.{client,connection}``.

Every error is a ConfigError of one line: ``<file>: <key path>: <what is wrong>``. No message ever holds a
password or a connection string.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import yaml

from .errors import ConfigError

__all__ = [
    "DEFAULT_PREFIX",
    "LoadedConfig",
    "PluginDatabase",
    "find_config_files",
    "load",
    "plugin_database",
]

DEFAULT_PREFIX = "backstage_plugin_"
# The connectors DatabaseManager.fromConfig registers, and the knex client knexwrap uses for each.
# Backstage hands "mysql" to knex as it is (knex then wants the `mysql` package); knexwrap uses mysql2.
KNEX_CLIENTS = {
    "pg": "pg",
    "better-sqlite3": "better-sqlite3",
    "sqlite3": "sqlite3",
    "mysql": "mysql2",
    "mysql2": "mysql2",
}
SQLITE_CLIENTS = ("better-sqlite3", "sqlite3")
MEMORY = ":memory:"

Key = tuple[str, ...]

# @backstage/config: what a key part may look like (also what APP_CONFIG_ names may hold).
_KEY_PART = re.compile(r"^[a-z][a-z0-9]*(?:[-_:][a-z0-9]+)*$", re.IGNORECASE)
_SCHEMA_PREFIX = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_SUBSTITUTION = re.compile(r"(\$?\$\{[^{}]*\})")
_INCLUDE_KEYS = ("$file", "$env", "$include")
_ENV_PREFIX = "APP_CONFIG_"
# Keys of a pg connection that are Backstage's own, never knex's (buildPgDatabaseConfig omits them).
_PG_CONFIG_ONLY = ("type", "instance", "tokenCredential")
_NETWORK_FIELDS = ("host", "port", "user", "password", "database")


class _Missing:
    """JavaScript's ``undefined``: a value that is not there (``None`` is YAML's null)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


@dataclass(frozen=True)
class PluginDatabase:
    """Where one plugin's tables live, as Backstage's database manager would connect."""

    client: str  # knex client: "pg", "better-sqlite3", "sqlite3" or "mysql2"
    host: str | None
    port: int | None
    user: str | None
    password: str | None = field(repr=False)
    database: str | None  # pg/mysql: the database name (prefix + pluginId in database mode)
    schema: str | None  # pg schema mode: schemaPrefix + pluginId (knex searchPath); database is the shared one
    filename: str | None  # SQLite: the plugin's file, absolute
    extra: dict[str, Any]  # other connection keys for knex (ssl, ...), never the password
    source: str  # e.g. "app-config.yaml: backend.database.plugin.catalog"
    role: str | None = None  # pg: the role Backstage switches to (SET ROLE) on every connection

    @property
    def is_sqlite(self) -> bool:
        return self.client in SQLITE_CLIENTS

    def knex_connection(self) -> dict[str, Any]:
        """The knex ``connection`` object, without the password (it travels separately)."""
        if self.is_sqlite:
            return {**self.extra, "filename": self.filename}
        fields = {"host": self.host, "port": self.port, "user": self.user, "database": self.database}
        return {**self.extra, **{k: v for k, v in fields.items() if v is not None}}


class LoadedConfig(dict[str, Any]):
    """The merged configuration, and where its values came from (only used to word messages)."""

    def __init__(
        self,
        data: Mapping[str, Any],
        origins: Mapping[Key, tuple[int, str]] | None = None,
        unset: Mapping[Key, tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(data)
        # Each value's key path -> (source order, file or variable that set it).
        self.origins: dict[Key, tuple[int, str]] = dict(origins or {})
        # Key paths a missing variable left undefined -> (file, "${X} is not set").
        self.unset: dict[Key, tuple[str, str]] = dict(unset or {})


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
    layers: list[tuple[dict[str, Any], dict[Key, str], dict[Key, str], str]] = []
    for path in files:
        name = _display(path)
        data, file_unset = _read_file(path, name, env)
        if data is not None:
            layers.append((data, {leaf: name for leaf in _leaves(data, ())}, file_unset, name))
    env_data, env_names = _read_env_config(env)
    if env_data:
        layers.append((env_data, env_names, {}, "environment"))

    merged: Any = _MISSING
    origins: dict[Key, tuple[int, str]] = {}
    unset: dict[Key, tuple[str, str]] = {}
    for index, (data, names, layer_unset, name) in enumerate(layers):
        merged = _merge(data, merged)
        for leaf, source in names.items():
            origins[leaf] = (index, source)
            unset.pop(leaf, None)  # a later file set (or removed) it: an earlier missing variable is moot
        for key, why in layer_unset.items():
            unset[key] = (name, why)
    result: dict[str, Any] = {} if merged is _MISSING else merged
    origins = {key: origin for key, origin in origins.items() if _lookup(result, key) is not _MISSING}
    return LoadedConfig(result, origins, unset)


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


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------- YAML


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1; Backstage's ``yaml`` package reads YAML 1.2 with the core schema."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, "expected a mapping", node.start_mark)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _js_key(self.construct_object(key_node, deep=deep), key_node)
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}: keys must be unique", key_node.start_mark
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def _js_key(key: Any, node: yaml.Node) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return ""
    if isinstance(key, (bool, int, float)):
        return _js_string(key)
    raise yaml.constructor.ConstructorError(None, None, "a key must be a plain value", node.start_mark)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
):
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _parse_yaml(text: str, name: str) -> Any:
    try:
        return yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass: builds no objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        # Only the problem, never the snippet: the offending line may hold a password.
        problem = exc.problem or exc.context or "invalid YAML"
        label = "" if problem.startswith("duplicate key") else "YAML syntax error: "
        raise ConfigError(f"{name}: {where}{label}{problem}") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{name}: YAML syntax error: {type(exc).__name__}") from None


# ------------------------------------------------------------------------------------ substitution


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

    def error(self, path: Key, message: str) -> ConfigError:
        return ConfigError(f"{self.name}: {_dotted(path)}: {message}" if path else f"{self.name}: {message}")

    def transform(self, node: Any, path: Key, directory: Path) -> Any:
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
        file_part, _, data_path = value.partition("#")
        suffix = os.path.splitext(file_part)[1]
        if suffix not in (".json", ".yaml", ".yml"):
            raise self.error(path, f"$include {file_part}: only .json, .yaml and .yml files can be included")
        target = directory / file_part
        text = self._read(key, file_part, directory, path)
        if suffix == ".json":
            try:
                included: Any = json.loads(text)
            except ValueError as exc:
                raise self.error(path, f"$include {file_part}: not valid JSON ({exc.__class__.__name__})") from None
        else:
            try:
                included = _parse_yaml(text, file_part)
            except ConfigError as exc:
                raise self.error(path, f"$include {exc.message}") from None
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

    def _read(self, key: str, name: str, directory: Path, path: Key) -> str:
        try:
            return (directory / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self.error(path, f"{key} {name} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(path, f"{key} {name} cannot be read ({_reason(exc)})") from None


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
            parsed = _json_or_text(value)
            if parsed is None:
                raise ConfigError(f"{name}: the value may not be null")
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


def _lodash_merge(target: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """lodash.merge, which buildPgDatabaseConfig uses: deep, arrays by index, null overwrites."""
    out = dict(target)
    for key, value in source.items():
        current = out.get(key, _MISSING)
        if isinstance(value, dict):
            out[key] = _lodash_merge(current if isinstance(current, dict) else {}, value)
        elif isinstance(value, list):
            items = list(current) if isinstance(current, list) else []
            for index, item in enumerate(value):
                if index < len(items) and isinstance(item, dict) and isinstance(items[index], dict):
                    items[index] = _lodash_merge(items[index], item)
                elif index < len(items):
                    items[index] = item
                else:
                    items.append(item)
            out[key] = items
        else:
            out[key] = value
    return out


def _lookup(data: Any, path: Key) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


# ------------------------------------------------------------------------------------ the database


def _dotted(path: Key) -> str:
    text = ""
    for part in path:
        text += part if part.startswith("[") or not text else f".{part}"
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if value == "" else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _js_string(value: bool | int | float) -> str:
    """String(value) as JavaScript writes it (YAML numbers are JavaScript numbers to Backstage)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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


def plugin_database(config: Mapping[str, Any], plugin_id: str, *, base: Path) -> PluginDatabase | None:
    """The database Backstage gives ``plugin_id``, or None when the config has no ``backend.database``.

    ``base`` is the folder relative SQLite paths are taken from (the backend's working directory).
    """
    reader = _Reader(config)
    db: Key = ("backend", "database")
    section = reader.get(db)
    if section is _MISSING:
        return None
    if not isinstance(section, Mapping):
        raise reader.error(db, f"must be a mapping, not {_kind(section)}")
    if not _KEY_PART.match(plugin_id):
        raise ConfigError(f"plugin id {plugin_id!r} cannot be a Backstage config key (letters, digits, - _ :)")

    # DatabaseManager.fromConfig
    prefix = reader.optional_str((*db, "prefix")) or DEFAULT_PREFIX
    schema_prefix = reader.optional_str((*db, "schemaPrefix")) or ""
    if schema_prefix and not _SCHEMA_PREFIX.match(schema_prefix):
        raise reader.error(
            (*db, "schemaPrefix"),
            f"{schema_prefix!r} must start with a letter or underscore and hold only letters, digits and underscores",
        )
    # DatabaseManagerImpl.getClientType and forPlugin
    plugin_block: Key = (*db, "plugin", plugin_id)
    block = reader.get(plugin_block)
    if block is not _MISSING and not isinstance(block, Mapping):
        raise reader.error(plugin_block, f"must be a mapping, not {_kind(block)}")
    base_client = reader.required_str((*db, "client"))
    plugin_client = reader.optional_str((*plugin_block, "client"))
    client = plugin_client or base_client
    client_path = (*plugin_block, "client") if plugin_client else (*db, "client")
    if client not in KNEX_CLIENTS:
        raise reader.error(
            client_path, f"unsupported client {client!r}: Backstage accepts pg, better-sqlite3, sqlite3, mysql2, mysql"
        )
    mode = reader.optional_str((*db, "pluginDivisionMode")) or "database"

    base_path: Key = (*db, "connection")
    reader.check_unset(base_path)
    base_raw = reader.get(base_path)
    if base_raw is _MISSING:
        raise reader.error(base_path, "is required and not set")
    plugin_path: Key = (*plugin_block, "connection")
    reader.check_unset(plugin_path)
    plugin_raw = reader.get(plugin_path)

    plugin = _Plugin(
        reader=reader,
        plugin_id=plugin_id,
        client=client,
        overridden=client != base_client,
        mode=mode,
        prefix=prefix,
        schema_prefix=schema_prefix,
        base_raw=base_raw,
        plugin_raw=plugin_raw,
        base_path=base_path,
        plugin_path=plugin_path,
    )
    knex_client = KNEX_CLIENTS[client]
    if knex_client == "pg":
        return _pg(plugin)
    if mode != "database":
        why = "is only supported by the pg client" if mode == "schema" else "is not a plugin division mode"
        raise reader.error((*db, "pluginDivisionMode"), f"{mode!r} {why}, not {client}")
    if knex_client == "mysql2":
        return _mysql(plugin)
    return _sqlite(plugin, base)


def _source(plugin: _Plugin, *, base_used: bool) -> str:
    reader = plugin.reader
    block = plugin.plugin_path[:-1]
    paths: list[Key] = [("backend", "database", "client"), (*block, "client"), plugin.plugin_path]
    if base_used:
        paths.append(plugin.base_path)
    block_value = reader.get(block)
    used = isinstance(block_value, Mapping) and ("client" in block_value or "connection" in block_value)
    return f"{reader.files(*paths)}: {_dotted(block if used else block[:2])}"


def _check_connection_unset(plugin: _Plugin, final: Mapping[str, Any], *, base_used: bool) -> None:
    """A connection value that a missing variable left undefined, and nothing else supplied, is an error."""
    prefixes = [plugin.base_path, plugin.plugin_path] if base_used else [plugin.plugin_path]
    for prefix in prefixes:
        for path, source, why in plugin.reader.unset_below(prefix):
            if _lookup(final, path[len(prefix) :]) in (None, _MISSING):
                raise ConfigError(f"{source}: {_dotted(path)}: {why}")


def _text(plugin: _Plugin, value: Any, path: Key) -> str | None:
    if value is None or value is _MISSING or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _js_string(value)
    raise plugin.reader.error(path, f"must be a string, not {_kind(value)}")


def _port(plugin: _Plugin, value: Any, path: Key) -> int | None:
    if value is None or value is _MISSING or value == "":
        return None
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = _js_string(value) if numeric else value
    number = int(text) if isinstance(text, str) and re.fullmatch(r"\s*[0-9]+\s*", text) else None
    if number is None or not 0 < number < 65536:
        shown = repr(value) if numeric or isinstance(value, str) else _kind(value)
        raise plugin.reader.error(path, f"must be a port number from 1 to 65535, not {shown}")
    return number


def _network_fields(
    plugin: _Plugin, final: Mapping[str, Any], plugin_conn: Mapping[str, Any]
) -> tuple[str | None, int | None, str | None, str | None]:
    def text(key: str) -> str | None:
        return _text(plugin, final.get(key), plugin.key_path(key, plugin_conn))

    port = _port(plugin, final.get("port"), plugin.key_path("port", plugin_conn))
    return text("host"), port, text("user"), text("password")


def _normalize(plugin: _Plugin, raw: Any, path: Key, *, lenient: bool = False) -> dict[str, Any]:
    """A connection as a mapping: connection strings parsed as the plugin's connector parses them."""
    if raw is None or raw is _MISSING:
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        raise plugin.reader.error(path, f"must be a connection string or a mapping, not {_kind(raw)}")
    knex_client = KNEX_CLIENTS[plugin.client]
    if knex_client in SQLITE_CLIENTS:
        return {"filename": raw}
    try:
        return _parse_pg_url(raw) if knex_client == "pg" else _parse_mysql_url(raw)
    except _UrlError as exc:
        if lenient:
            return {}
        kind = "PostgreSQL" if knex_client == "pg" else "MySQL"
        raise plugin.reader.error(path, f"cannot parse the {kind} connection string: {exc}") from None


def _pg(plugin: _Plugin) -> PluginDatabase:
    reader = plugin.reader
    db: Key = ("backend", "database")
    # computePgPluginConfig
    base_conn = _normalize(plugin, plugin.base_raw, plugin.base_path, lenient=plugin.overridden)
    plugin_conn = _normalize(plugin, plugin.plugin_raw, plugin.plugin_path)
    schema_mode = plugin.mode == "schema"
    shared = base_conn if schema_mode else {k: v for k, v in base_conn.items() if k != "database"}
    connection = {**({} if plugin.overridden else shared), **plugin_conn}
    database_name = connection.get("database")
    if not schema_mode and database_name is None:
        database_name = f"{plugin.prefix}{plugin.plugin_id}"
    # buildPgDatabaseConfig merges the whole base connection under the plugin's (even when the plugin
    # changed the client), then the database name override.
    final = _lodash_merge(_lodash_merge({}, base_conn), connection)
    if database_name:
        final["database"] = database_name
    _check_connection_unset(plugin, final, base_used=True)
    connection_string = final.pop("connectionString", None)
    if isinstance(connection_string, str):  # pg lets a connectionString's values win over the object's
        try:
            final.update(_parse_pg_url(connection_string))
        except _UrlError as exc:
            path = plugin.key_path("connectionString", plugin_conn)
            raise reader.error(path, f"cannot parse the PostgreSQL connection string: {exc}") from None
    kind = final.get("type")
    if kind not in (None, "default"):
        raise reader.error(
            plugin.key_path("type", plugin_conn),
            f"connection type {kind!r} gets its password from a cloud provider at run time; knexwrap cannot",
        )
    schema = None
    if schema_mode:
        schema = f"{plugin.schema_prefix}{plugin.plugin_id}"
        if len(schema.encode("utf-8")) > 63:
            raise reader.error(
                (*db, "schemaPrefix"), f"the schema name {schema!r} is longer than PostgreSQL's 63-byte limit"
            )
    host, port, user, password = _network_fields(plugin, final, plugin_conn)
    database = _text(plugin, final.get("database"), plugin.key_path("database", plugin_conn))
    extra = {k: v for k, v in final.items() if k not in _NETWORK_FIELDS and k not in _PG_CONFIG_ONLY and v is not None}
    return PluginDatabase(
        client="pg",
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        schema=schema,
        filename=None,
        extra=extra,
        source=_source(plugin, base_used=True),
        role=reader.optional_str((*db, "role")),  # createPgDatabaseClient reads the base role only
    )


def _mysql(plugin: _Plugin) -> PluginDatabase:
    base_used = not plugin.overridden
    base_conn = _normalize(plugin, plugin.base_raw, plugin.base_path) if base_used else {}
    plugin_conn = _normalize(plugin, plugin.plugin_raw, plugin.plugin_path)
    shared = {k: v for k, v in base_conn.items() if k != "database"}
    final = {k: v for k, v in {**shared, **plugin_conn}.items() if v is not None}
    if final.get("database") is None:
        final["database"] = f"{plugin.prefix}{plugin.plugin_id}"
    _check_connection_unset(plugin, final, base_used=base_used)
    host, port, user, password = _network_fields(plugin, final, plugin_conn)
    database = _text(plugin, final.get("database"), plugin.key_path("database", plugin_conn))
    return PluginDatabase(
        client="mysql2",
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        schema=None,
        filename=None,
        extra={k: v for k, v in final.items() if k not in _NETWORK_FIELDS},
        source=_source(plugin, base_used=base_used),
    )


def _sqlite(plugin: _Plugin, base: Path) -> PluginDatabase:
    reader = plugin.reader
    base_used = not plugin.overridden
    base_conn = _normalize(plugin, plugin.base_raw, plugin.base_path) if base_used else {}
    plugin_conn = _normalize(plugin, plugin.plugin_raw, plugin.plugin_path)
    if "filename" in base_conn and base_conn["filename"] != MEMORY:
        raise reader.error(
            plugin.key_path("filename", {}),
            "a file name is not supported for the base SQLite connection: use connection.directory, "
            "or set backend.database.plugin.<pluginId>.connection.filename",
        )
    connection = {**{k: v for k, v in base_conn.items() if k != "database"}, **plugin_conn}
    _check_connection_unset(plugin, connection, base_used=base_used)
    filename = connection.get("filename")
    if filename == MEMORY:
        raise reader.error(
            plugin.key_path("filename", plugin_conn),
            "':memory:' is an in-memory SQLite database that only the Backstage process can open; "
            "set connection.directory to keep the plugin databases in files",
        )
    if filename is not None and not isinstance(filename, str):
        raise reader.error(plugin.key_path("filename", plugin_conn), f"must be a string, not {_kind(filename)}")
    directory = connection.get("directory")
    if directory is None:
        directory = "."
    elif not isinstance(directory, str):
        raise reader.error(plugin.key_path("directory", plugin_conn), f"must be a string, not {_kind(directory)}")
    # path.join(directory, filename): Node joins even an absolute file name onto the directory.
    joined = re.sub(r"^/+", "/", posixpath.normpath(f"{directory}/{filename or plugin.plugin_id + '.sqlite'}"))
    path = os.path.normpath(os.path.join(os.path.abspath(base), joined))
    return PluginDatabase(
        client=KNEX_CLIENTS[plugin.client],
        host=None,
        port=None,
        user=None,
        password=None,
        database=None,
        schema=None,
        filename=path,
        extra={k: v for k, v in connection.items() if k not in ("filename", "directory") and v is not None},
        source=_source(plugin, base_used=base_used),
    )


# --------------------------------------------------------------------------------- connection URLs


class _UrlError(ValueError):
    """Why a connection string could not be read; never holds the string itself."""


_RESERVED = frozenset(";/?:@&=+$,#")
_USERINFO_ENCODE = frozenset(' "#<>?`{}/:;=@[\\]^|')


def _decode_component(text: str, what: str) -> str:
    """decodeURIComponent: a malformed sequence is an error, as in JavaScript."""
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise _UrlError(f"the {what} is not valid percent-encoded UTF-8") from None


def _decode_uri(text: str, what: str) -> str:
    """decodeURI: like decodeURIComponent, but escapes of ; / ? : @ & = + $ , # stay as they are."""

    def replace(match: re.Match[str]) -> str:
        out: list[str] = []
        pending = bytearray()

        def flush() -> None:
            if pending:
                try:
                    out.append(pending.decode("utf-8"))
                except UnicodeDecodeError:
                    raise _UrlError(f"the {what} is not valid percent-encoded UTF-8") from None
                pending.clear()

        escapes = match.group(0)
        for start in range(0, len(escapes), 3):
            escape = escapes[start : start + 3]
            byte = int(escape[1:], 16)
            if byte < 0x80 and chr(byte) in _RESERVED:
                flush()
                out.append(escape)
            else:
                pending.append(byte)
        flush()
        return "".join(out)

    return re.sub(r"(?:%[0-9A-Fa-f]{2})+", replace, text)


def _split_authority(rest: str) -> tuple[str, str]:
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1:
            end = min(end, found)
    return rest[:end], rest[end:]


def _host_port(hostport: str) -> tuple[str, str]:
    """Host and port as Node's URL gives them (an IPv6 host keeps its brackets)."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close == -1:
            raise _UrlError("the host is not a valid IPv6 address")
        host, after = hostport[: close + 1], hostport[close + 1 :]
        if after and not after.startswith(":"):
            raise _UrlError("it is not a valid URL")
        port = after[1:]
    else:
        host, _, port = hostport.partition(":")
    if port and (not port.isascii() or not port.isdigit() or int(port) > 65535):
        raise _UrlError("the port is not a number from 0 to 65535")
    return host, port


def _parse_pg_url(text: str) -> dict[str, Any]:
    """pg-connection-string's parse(), which Backstage's pg connector uses."""
    if text.startswith("/"):  # a Unix socket directory, optionally followed by a database name
        words = text.split(" ")
        return {"host": words[0], "database": words[1]} if len(words) > 1 else {"host": words[0]}
    if re.search(r" |%[^a-f0-9]|%[a-f0-9][^a-f0-9]", text, re.IGNORECASE):
        text = re.sub(r"%25(\d\d)", r"%\1", quote(text, safe=";,/?:@&=+$-_.!~*'()#"))
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", text.strip(), re.DOTALL)
    if not match:
        raise _UrlError("it is not a URL (postgresql://user:password@host:port/database)")
    scheme, rest = match.group(1).lower(), match.group(2)
    rest, _, _fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    config: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if rest.startswith("//"):
        authority, pathname = _split_authority(rest[2:])
    else:
        authority, pathname = "", rest
    userinfo, at, hostport = authority.rpartition("@")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    config["user"] = config.get("user") or _decode_component(username, "user name")
    config["password"] = config.get("password") or _decode_component(password, "password")
    if scheme == "socket":
        config["host"] = _decode_uri(pathname, "socket path")
        config["database"] = config.get("db")
        config["client_encoding"] = config.get("encoding")
        return config
    hostname, port = _host_port(hostport)
    hostname = hostname.removeprefix("[").removesuffix("]")
    if not config.get("host"):
        config["host"] = _decode_component(hostname, "host")
    elif hostname and hostname.lower().startswith("%2f"):
        pathname = hostname + pathname
    if not config.get("port"):
        config["port"] = port
    database = pathname[1:]
    config["database"] = _decode_uri(database, "database name") if database else None
    _pg_ssl(config)
    return config


def _pg_ssl(config: dict[str, Any]) -> None:
    """pg-connection-string's ssl settings.

    It also reads the sslcert/sslkey/sslrootcert files into ``ssl``; knexwrap leaves them as paths in
    ``extra`` rather than hold a private key in every copy and printout of the connection.
    """
    if config.get("ssl") in ("true", "1"):
        config["ssl"] = True
    if config.get("ssl") == "0":
        config["ssl"] = False
    if any(config.get(k) for k in ("sslcert", "sslkey", "sslrootcert", "sslmode")):
        config["ssl"] = {}
    if config.get("sslnegotiation") == "direct" and "ssl" not in config:
        config["ssl"] = True
    mode = config.get("sslmode")
    if mode == "disable":
        config["ssl"] = False
    elif config.get("uselibpqcompat") == "true":
        if mode in ("prefer", "require") and not (mode == "require" and config.get("sslrootcert")):
            config["ssl"]["rejectUnauthorized"] = False
    elif mode == "no-verify":
        config["ssl"]["rejectUnauthorized"] = False


def _userinfo(text: str) -> str:
    """How the WHATWG URL parser (Node's URL) stores a user name or password: percent-encoded."""
    return "".join(
        char if 0x20 < ord(char) < 0x7F and char not in _USERINFO_ENCODE else quote(char, safe="") for char in text
    )


def _yn(text: str) -> bool | None:
    value = text.strip().lower()
    if value in ("y", "yes", "true", "1", "on"):
        return True
    if value in ("n", "no", "false", "0", "off"):
        return False
    return None


def _parse_mysql_url(text: str) -> dict[str, Any]:
    """Backstage's parseMysqlConnectionString (Node's URL; user and password stay percent-encoded)."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", text.strip(" \t\n\r\f\v\0"), re.DOTALL)
    if not match:
        raise _UrlError("it is not a URL (mysql://user:password@host:port/database)")
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme != "mysql":
        raise _UrlError(f"unknown protocol {scheme + ':'!r} (mysql://user:password@host:port/database)")
    rest, _, _fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    if not rest.startswith("//"):
        raise _UrlError("the user name or password is missing")
    authority, pathname = _split_authority(rest[2:])
    userinfo, at, hostport = authority.rpartition("@")
    host, port = _host_port(hostport)
    if at and not host:
        raise _UrlError("the host is missing")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    if not username or not password:
        raise _UrlError("the user name or password is missing")
    if not re.fullmatch(r"/[^/]+", pathname):
        raise _UrlError("the path must be one database name")
    result: dict[str, Any] = {
        "user": _userinfo(username),
        "password": _userinfo(password),
        "host": host,
        "port": int(port) if port else 3306,
        "database": _decode_component(pathname[1:], "database name"),
    }
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, value)  # URLSearchParams.get: the first one
    if params.get("ssl"):
        result["ssl"] = params["ssl"]
    if params.get("debug"):
        debug = _yn(params["debug"])
        if debug is not None:
            result["debug"] = debug
    return result
