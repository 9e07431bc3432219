"""The JSON contract, version 1: every result and error as the document knexwrap/cli/schemas/ describes.

One vocabulary across commands: plugin, package, version, migrations_table, migrations_directory, server,
database, state. Results keep their own field names inside knexwrap; the few that differ from the
vocabulary are renamed here, in one table, so that each key means one thing in every document.
Within version 1 only optional keys may be added; removing or renaming a key, or a new state value,
means a new SCHEMA_VERSION.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePath
from typing import Any

SCHEMA_VERSION = 1

# Result type -> the "command" of its document. By name, so that output imports none of the
# modules behind the results: start-up time counts, and each command imports only what it uses.
COMMANDS = {
    "Status": "status",
    "InstallReport": "status",
    "Current": "current",
    "ConfigReport": "config",
    "SetsReport": "plugins",
    "ArchiveResult": "archive",
    "SnapshotWritten": "snapshot",
    "DoctorReport": "doctor",
    "DowngradePlan": "plan",
    "DowngradeResult": "downgrade",
    "RestorePlan": "restore",
    "RestoreResult": "restore",
}

# Field names of knexwrap's results -> the vocabulary of the documents.
_KEYS = {
    "table": "migrations_table",
    "directory": "migrations_directory",
    "target_directory": "target_migrations_directory",
    "plugin_id": "plugin",
    "status": "state",
}


def document(result: Any, command: str | None = None) -> dict[str, Any]:
    """The version-1 document of one result dataclass (Status, InstallReport, Outcome, ...), for COMMAND
    (the command that ran; default: the one that makes such results, e.g. downgrade --dry-run shows a plan)."""
    kind = type(result).__name__
    data: dict[str, Any] = _drift(_vocabulary(dataclasses.asdict(result)))
    made_by = data.pop("command", None) or COMMANDS.get(kind)
    header = {"schema_version": SCHEMA_VERSION, "command": command or made_by}
    target = data.pop("target", None)
    where = located(target) if target is not None else {}
    if kind == "Status":
        return {**header, **where, **data.pop("primary"), "other_sets": data["other_sets"]}
    if kind == "InstallReport":
        return {**header, "summary": result.summary, **data}
    if kind == "ArchiveResult":
        for index in data["indexes"]:
            # An archived set's folder is a migrations folder; "folder" elsewhere is not (a backup's, a package's).
            index["migrations_directory"] = index.pop("folder")
            index["files"] = [{"name": name, "sha256": sha} for name, sha in index["files"]]
            index.pop("seen", None), index.pop("seen_at", None)  # the archive's history, in its own files
    if kind in ("RestorePlan", "RestoreResult"):
        data = _restore(data)
    if kind == "ConfigReport":
        for row in data["plugins"]:
            row["password_set"] = row.pop("password") == "set"
    return {**header, **where, **data}


def _drift(value: Any) -> Any:
    """A migration's Drift becomes its own keys (applied_sha256, applied_sha256_from, file_sha256, changed).
    A recorded migration whose applied content nothing knows says so (the issue's "else `unknown`"):
    applied_sha256 null, applied_sha256_from "unknown", changed false (nothing to compare), no file_sha256
    (status hashes no file it cannot compare). A pending one has none of these keys: nothing was applied."""
    if isinstance(value, list):
        return [_drift(v) for v in value]
    if not isinstance(value, dict):
        return value
    flat = {k: _drift(v) for k, v in value.items() if k != "drift"}
    found = value.get("drift")
    if isinstance(found, dict):
        changed = found["file_sha256"] is not None and found["file_sha256"] != found["applied_sha256"]
        flat.update(found, changed=changed)
    elif "drift" in value and value.get("state") != "pending":
        flat.update(applied_sha256=None, applied_sha256_from="unknown", changed=False)
    return flat


def _restore(data: dict[str, Any]) -> dict[str, Any]:
    """A restore's document: `into` becomes server + database + schema, taken_at extended ISO 8601 (UTC)."""
    placed: dict[str, Any] = {}
    for key, value in data.items():
        if key == "into":
            placed.update(_split({"database": value}))
        elif key == "taken_at" and isinstance(value, str) and re.fullmatch(r"\d{8}T\d{6}Z", value):
            placed[key] = f"{value[:4]}-{value[4:6]}-{value[6:8]}T{value[9:11]}:{value[11:13]}:{value[13:15]}Z"
        else:
            placed[key] = value
    return placed


def error_document(
    command: str | None, context: dict[str, Any], code: str, message: str, exit_code: int, extra: dict[str, Any]
) -> dict[str, Any]:
    """The document of a failure: the command, where it happened (plugin, server, database... when known),
    and the error with its structured facts (e.g. applied, reverted: lists of files; lock_held)."""
    error: dict[str, Any] = {"code": code, "message": message, "exit_code": exit_code, **_vocabulary(extra)}
    where = {"plugin": None, "server": None, "database": None, **located(context)}
    return {"schema_version": SCHEMA_VERSION, "command": command, **where, "error": error}


def located(target: dict[str, Any]) -> dict[str, Any]:
    """A target header in the vocabulary, its connection text taken apart: server (None for SQLite),
    database, schema."""
    return _split(_vocabulary(dict(target)))


def _split(data: dict[str, Any]) -> dict[str, Any]:
    from ..config.environment import split_target

    if not isinstance(data.get("database"), str) or "host" in data or "server" in data:
        return data  # config rows name host and port themselves
    server, database, schema = split_target(data["database"])
    placed: dict[str, Any] = {}
    for key, value in data.items():
        if key == "database":
            placed.update(server=server, database=database, schema=schema)
        else:
            placed[key] = value
    return placed


def _vocabulary(value: Any) -> Any:
    """Paths become text, field names become the vocabulary's, connection texts become server + database."""
    if isinstance(value, dict):
        renamed: dict[str, Any] = {_KEYS.get(str(k), str(k)): _vocabulary(v) for k, v in value.items()}
        listed = renamed.get("databases")
        if isinstance(listed, list) and all(isinstance(d, str) for d in listed):
            renamed["databases"] = [_split({"database": d}) for d in listed]
        return _split(renamed)
    if isinstance(value, (list, tuple)):
        return [_vocabulary(v) for v in value]
    return str(value) if isinstance(value, PurePath) else value
