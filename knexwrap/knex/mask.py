"""Passwords out of free text from outside: knex and driver messages, stack traces, pg_dump's stderr.

Only free text is masked, and only by context, so that nothing else is garbled: the password part of
a URL's user-info, the value of a ``password=`` / ``password:`` field, and an occurrence of a password
that stands as a whole token (between spaces, quotes, brackets or sentence punctuation). Never a bare
substring: a password that is also part of a name (``secret`` in ``20210409225200_secrets.js``) or a
one-character password would otherwise rewrite the names around it. Data (migration names, table
names, the reader's JSON) never comes through here at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "********"

# scheme://user:PASSWORD@host: the password runs to the last "@" before a space (an unencoded "@" in
# a password is still masked whole).
_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<secret>\S*)@")
# libpq's conninfo and environment style: password=VALUE, PGPASSWORD=VALUE, password='two words'.
_EQUALS_FIELD = re.compile(r"(?P<head>password\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s,;&)}\]]+)", re.I)
# JSON, YAML and util.inspect style: "password": "VALUE", password: 'VALUE'. Quoted values are masked
# whatever they hold; a bare word only when it is a password (mysql2 prints "using password: YES").
_COLON = r"(?P<head>[\"']?password[\"']?\s*:\s*)"
_COLON_QUOTED = re.compile(_COLON + r"(?P<secret>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", re.I)
_COLON_BARE = re.compile(_COLON + r"(?P<secret>[^\s\"',;)}\]]+)", re.I)
# What may stand right before and right after a whole token.
_BEFORE = r"(?:^|(?<=[\s\"'`(\[{<=:,;]))"
_AFTER = r"(?=$|[\s\"'`)\]}>,;@]|[.:!?](?:\s|$))"


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every password in it replaced by ``********``, by context (see the module's doc).

    ``secrets`` are the passwords in play; ``None`` and empty ones are ignored. Text without any of
    the contexts comes back unchanged, character for character.
    """
    known = _forms(secrets)
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _EQUALS_FIELD.sub(lambda m: f"{m['head']}{MASK}", text)
    text = _COLON_QUOTED.sub(lambda m: f"{m['head']}{m['secret'][0]}{MASK}{m['secret'][0]}", text)
    text = _COLON_BARE.sub(lambda m: f"{m['head']}{MASK}" if m["secret"] in known else m[0], text)
    for secret in sorted(known, key=len, reverse=True):  # the longest first: one password may hold another
        text = re.sub(f"{_BEFORE}{re.escape(secret)}{_AFTER}", MASK, text)
    return text


def _forms(secrets: Iterable[str | None]) -> set[str]:
    """Each password as written and percent-encoded, as it would appear inside a URL."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= {secret, quote(secret, safe="")}
    return forms
