"""The JSON contract, checked on every document the tests see: each validates against the schema the
package ships for it (knexwrap/cli/schemas/, JSON Schema draft 2020-12), with the jsonschema library."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[1] / "knexwrap" / "cli" / "schemas"
# The commands that share one document shape.
_SHAPES = {"latest": "change", "up": "change", "down": "change", "rollback": "change", "unlock": "change"}


@cache
def _validators() -> dict[str, Draft202012Validator]:
    schemas = {p.stem: json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))}
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    checker = Draft202012Validator.FORMAT_CHECKER
    return {
        name: Draft202012Validator(schema, registry=registry, format_checker=checker)
        for name, schema in schemas.items()
    }


def schema_for(document: dict[str, Any]) -> str:
    """The schema file (without .json) a document must match: error.json for failures, else its command's."""
    if "error" in document:
        return "error"
    if "sql" in document and "to" not in document:
        return "sql"  # --sql --dry-run: the SQL each migration would send
    command = document.get("command")
    return _SHAPES.get(str(command), str(command))


def validate(document: Any) -> None:
    """Raise AssertionError naming every way DOCUMENT breaks the contract (schema_version 1 included)."""
    assert isinstance(document, dict), f"a JSON document is an object, not {type(document).__name__}"
    assert document.get("schema_version") == 1, f"schema_version missing or not 1: {document.get('schema_version')}"
    name = schema_for(document)
    validators = _validators()
    assert name in validators, f"no schema ships for the command {document.get('command')!r}"
    problems = sorted(validators[name].iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not problems, f"{name}.json: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in problems[:5]
    )
