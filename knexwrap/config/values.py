"""Reading a plugin's connection values: connection strings as mappings, typed fields, undefined values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .reader import _Plugin
from .shared import _MISSING, KNEX_CLIENTS, SQLITE_CLIENTS, Key, _dotted, _js_string, _kind, _lookup
from .urls import _parse_mysql_url, _parse_pg_url, _UrlError


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


# What fills a connection key that is left out: the drivers' own defaults (node-postgres, mysql2).
_DRIVER_DEFAULTS = {
    "pg": {"host": "localhost", "port": 5432},
    "mysql2": {"host": "localhost", "port": 3306},
}
_LEFT_TO_THE_DRIVER = {
    "user": "the driver connects as the operating system user ($USER)",
    "database": "the server picks the database named like the user",
    "directory": "the backend's working folder is used",
}


def _dropped(plugin: _Plugin, final: dict[str, Any], *, base_used: bool) -> tuple[str, ...]:
    """Connection keys a missing variable left out, as Backstage leaves them out: never an error.

    A key a driver default fills (host, port) gets that default in ``final``; every dropped key that
    something else fills is named in the returned notes ("host: ${POSTGRES_HOST} is not set; using
    localhost"), so ``knexwrap config`` can say which default was used.
    """
    prefixes = [plugin.base_path, plugin.plugin_path] if base_used else [plugin.plugin_path]
    defaults = _DRIVER_DEFAULTS.get(KNEX_CLIENTS[plugin.client], {})
    notes: list[str] = []
    for prefix in prefixes:
        for path, source, why in plugin.reader.unset_below(prefix):
            key = path[len(prefix)]
            if len(path) != len(prefix) + 1 or _lookup(final, (key,)) not in (None, _MISSING):
                continue
            if key in defaults:
                final[key] = defaults[key]
                notes.append(f"{_dotted(path)}: {why} in {source}; using the default {defaults[key]}")
            elif key in _LEFT_TO_THE_DRIVER:
                notes.append(f"{_dotted(path)}: {why} in {source}; {_LEFT_TO_THE_DRIVER[key]}")
    return tuple(dict.fromkeys(notes))


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
