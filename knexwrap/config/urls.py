"""Connection strings read as Backstage's connectors read them: pg-connection-string, and Backstage's MySQL parser.

Errors never hold the string itself: it may hold a password.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote


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
