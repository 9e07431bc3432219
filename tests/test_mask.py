"""Masking by context (knexwrap/knex/mask.py), the parsers' free text, and the failure classifier.

Free text from outside loses every password; the names around it are never touched. The knex outputs
are captured from real runs (the failing migration: tests/test_secrets_in_data.py runs it for real).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from knexwrap import errors
from knexwrap.knex import parse
from knexwrap.knex.failures import classify
from knexwrap.knex.mask import MASK, mask
from knexwrap.knex.process import run


@pytest.mark.parametrize(
    ("text", "secrets", "masked"),
    [
        ("postgresql://u:s3cr%40t@db:5432/x", [], "postgresql://u:********@db:5432/x"),
        ("mysql://root:p@ss@db/x failed", [], "mysql://root:********@db/x failed"),
        ("host=db password=hunter2 user=u", [], "host=db password=******** user=u"),
        ("PGPASSWORD='two words' pg_dump", [], "PGPASSWORD=******** pg_dump"),
        ('{"user":"u","password":"hunter2"}', [], '{"user":"u","password":"********"}'),
        ("{ user: 'u', password: 'hunter2' }", [], "{ user: 'u', password: '********' }"),
        ("password: hunter2", ["hunter2"], "password: ********"),
        # mysql2's own words, not a password: a bare value is only masked when it is one.
        ("Access denied for user 'root'@'localhost' (using password: YES)", ["hunter2"], None),
        ('syntax error at or near "secret"', ["secret"], 'syntax error at or near "********"'),
        ("the secret, again: secret.", ["secret"], "the ********, again: ********."),
        ("p@ss: w/rd#1%?& was refused", ["p@ss: w/rd#1%?&"], "******** was refused"),
        ("postgresql://u:p%40ss%3A%20w%2Frd%231%25%3F%26@h/d", ["p@ss: w/rd#1%?&"], "postgresql://u:********@h/d"),
        # Never a bare substring: names that hold the password stay as they are.
        ('migration file "20210409225200_secrets.js" failed', ["secret"], None),
        ("at Client_PG (/app/node_modules/knex/lib/client.js:1:2)", ["knex"], None),
        ("20240203232000_state.js, 20240401213200_workspace.js", ["2024"], None),
        ('relation "backstage_plugin_catalog.refresh_state" does not exist', ["backstage"], None),
        ("is_locked: true", ["tru"], None),
        ("a catalog database", ["a"], "******** catalog database"),
        ("nothing to see", [None, ""], None),
    ],
)
def test_mask_by_context(text: str, secrets: list[str | None], masked: str | None) -> None:
    assert mask(text, secrets) == (text if masked is None else masked)


# knex 3.1 migrate:latest, a migration whose SQL PostgreSQL cannot parse at the password (stderr, NO_COLOR).
FAILED_AT_PASSWORD = """\
Using environment: production
migration file "20240101000000_rotate_secrets.js" failed
migration failed with error: alter role kw_role with password secret - syntax error at or near "secret"
error: alter role kw_role with password secret - syntax error at or near "secret"
    at Parser.parseErrorMessage (/p/node_modules/pg-protocol/dist/parser.js:285:98)
"""


def test_a_failure_keeps_the_migration_name_and_loses_the_password() -> None:
    failure = classify("", FAILED_AT_PASSWORD, 1, ("secret",))
    assert isinstance(failure, errors.MigrationFailed)
    assert failure.message == (
        'migration "20240101000000_rotate_secrets.js" failed: alter role kw_role with password ******** '
        '- syntax error at or near "********"'
    )
    assert not re.search(r"\bsecret\b", failure.output) and "20240101000000_rotate_secrets.js" in failure.output


# knex 3.1 migrate:latest --verbose after applying two scaffolder files, preceded by a line knex printed.
LATEST = """\
Using environment: production
connecting with password=hunter2
Batch 1 run: 2 migrations
20210120143715_init.js
20210409225200_secrets.js
"""


def test_names_are_data_and_notes_are_text() -> None:
    change = parse.parse_change(LATEST, ("secret", "hunter2"))
    assert change.names == ("20210120143715_init.js", "20210409225200_secrets.js")
    assert change.notes == ("connecting with password=********",)
    with pytest.raises(errors.KnexFailed) as unreadable:
        parse.parse_list("Error: cannot connect to postgresql://u:hunter2@db/x\n", ("hunter2",))
    assert unreadable.value.output == "Error: cannot connect to postgresql://u:********@db/x\n"


_NAME = st.from_regex(r"\A20[0-9]{12}_[a-z][a-z_]{0,20}\.js\Z")
_SECRET = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "" and s not in MASK)


@given(names=st.lists(_NAME, min_size=1, max_size=8), secret=_SECRET)
def test_migration_names_are_never_rewritten(names: list[str], secret: str) -> None:
    """Whatever the password, a listing of names comes back unchanged unless a whole name is the password."""
    text = "\n".join(names)
    assume(not re.search(rf"(?:^|\s){re.escape(secret)}(?:\s|$)", text))
    assert mask(text, [secret]) == text


_ALNUM = st.text(st.characters(categories=("Ll", "Lu", "Nd")), min_size=1, max_size=10)


@given(before=st.lists(_ALNUM, max_size=4), after=st.lists(_ALNUM, max_size=4), secret=_SECRET)
def test_a_password_standing_alone_never_survives(before: list[str], after: list[str], secret: str) -> None:
    """Quoted, between spaces or as a URL's user-info: the password is gone and the words around it are kept."""
    head, tail = " ".join(before), " ".join(after)
    assume(secret not in head and secret not in tail and "password" not in secret.lower() and "://" not in secret)
    for shaped, written in (('"{}"', secret), ("{}", secret), ("postgresql://u:{}@h/d", quote(secret, safe=""))):
        text = f"{head} {shaped.format(written)} {tail}"
        assert mask(text, [secret]) == f"{head} {shaped.format(MASK)} {tail}"


def test_a_programs_answer_is_data_and_its_stderr_is_text(tmp_path: Path) -> None:
    """The one subprocess wrapper returns stdout as written and stderr masked: a real program writing both."""
    script = "import sys; print('20210409225200_secrets.js secret'); sys.stderr.write('login secret failed')"
    done = run(sys.executable, ["-c", script], cwd=tmp_path, env=dict(os.environ), timeout=30, secrets=("secret",))
    assert done.stdout == "20210409225200_secrets.js secret\n"
    assert done.stderr == "login ******** failed"
