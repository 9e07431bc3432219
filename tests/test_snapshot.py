"""Snapshots of real installs: real Backstage packages migrated by the real knex into real PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from backstage import CATALOG, DEFAULTS, KEYS_TABLE, SCAFFOLDER, SCHEDULER_TABLE, fetch, knex, make_project, ok
from servers import PgServer, create_database, drop_database, psql_rows, unique_name

from knexwrap.config import connection as conn
from knexwrap.errors import ConfigError
from knexwrap.install import sets
from knexwrap.state import read as st
from knexwrap.state import whole as install
from knexwrap.upgrade import archive, snapshot

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
# knex writes JS Dates (millisecond precision); read_state.js hands them back as toISOString().
ISO = """to_char(migration_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


@dataclass(frozen=True)
class Install:
    project: Path
    prefix: str

    def db(self, plugin: str) -> str:
        return f"{self.prefix}{plugin}"


def migrations(project: Path, package: str, sub: str = "") -> Path:
    return project / "node_modules" / package / "migrations" / sub


def rows(pg: PgServer, db: str, table: str) -> list[dict[str, object]]:
    found = psql_rows(pg, db, f"select name, batch, {ISO} from {table} order by id")
    return [{"name": n, "batch": int(b), "migration_time": t} for n, b, t in found]


def take(found: Install, pg: PgServer, monkeypatch: pytest.MonkeyPatch) -> snapshot.Snapshot:
    """`knexwrap snapshot` in a few lines: the whole-install report, then the snapshot of it."""
    for name, value in (("POSTGRES_HOST", pg.host), ("POSTGRES_PORT", str(pg.port)), ("POSTGRES_USER", pg.user)):
        monkeypatch.setenv(name, value)
    for name in ("POSTGRES_PASSWORD", "KNEXWRAP_CLIENT"):
        monkeypatch.delenv(name, raising=False)
    report = install.install_status(conn.Options(prefix=found.prefix), project_dir=str(found.project))
    return snapshot.take(report, sets.discover_all(found.project), found.project, now=NOW)


@pytest.fixture
def small(pg: PgServer, tmp_path: Path) -> Iterator[Install]:
    """scaffolder with two batches of one migration each, and the scheduler set in the same database."""
    project = make_project(tmp_path / "project", {SCAFFOLDER: "4.3.0", DEFAULTS: "0.9.0"})
    found = Install(project, unique_name("kw_snap") + "_")
    create_database(pg, found.db("scaffolder"))
    try:
        for _ in range(2):
            ok(knex(project, pg, found.db("scaffolder"), "migrate:up", migrations(project, SCAFFOLDER)))
        scheduler = migrations(project, DEFAULTS, "scheduler")
        ok(knex(project, pg, found.db("scaffolder"), "migrate:latest", scheduler, SCHEDULER_TABLE))
        yield found
    finally:
        drop_database(pg, found.db("scaffolder"))


def test_written_snapshot_of_a_small_install(small: Install, pg: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = take(small, pg, monkeypatch)
    path = snapshot.write(taken, snapshot.default_path(small.project, taken))
    assert path == small.project / ".knexwrap" / "snapshots" / "snapshot-20250601T120000Z.json"
    scaffolder = sorted(p.name for p in migrations(small.project, SCAFFOLDER).iterdir())
    db = small.db("scaffolder")
    assert json.loads(path.read_text()) == {
        "kind": "knexwrap-snapshot",
        "format": 1,
        "taken_at": "2025-06-01T12:00:00+00:00",
        "archive": ".knexwrap/archive",
        "sets": [
            {
                "plugin_id": "scaffolder",
                "package": SCAFFOLDER,
                "version": "4.3.0",
                "table": "knex_migrations",
                "folder": f"node_modules/{SCAFFOLDER}/migrations",
                "files": scaffolder,
            },
            {
                "plugin_id": "*",
                "package": DEFAULTS,
                "version": "0.9.0",
                "table": KEYS_TABLE,
                "folder": f"node_modules/{DEFAULTS}/migrations/auth",
                "files": ["20240327104803_public_keys.js"],
            },
            {
                "plugin_id": "*",
                "package": DEFAULTS,
                "version": "0.9.0",
                "table": SCHEDULER_TABLE,
                "folder": f"node_modules/{DEFAULTS}/migrations/scheduler",
                "files": ["20210928160613_init.js", "20240712211735_nullable_next_run.js"],
            },
        ],
        "databases": [
            {
                "plugin": "scaffolder",
                "client": "pg",
                "database": f"postgresql://{pg.user}@{pg.host}:{pg.port}/{db}",
                "state": "behind",
                "error": None,
                "sets": [
                    {
                        "table": "knex_migrations",
                        "package": SCAFFOLDER,
                        "version": "4.3.0",
                        "applied": rows(pg, db, "knex_migrations"),
                    },
                    {
                        "table": SCHEDULER_TABLE,
                        "package": DEFAULTS,
                        "version": "0.9.0",
                        "applied": rows(pg, db, SCHEDULER_TABLE),
                    },
                ],
            }
        ],
    }
    # What the rows are, not only that they match: one file per batch, then the scheduler's two.
    assert [(r["name"], r["batch"]) for r in rows(pg, db, "knex_migrations")] == [
        (scaffolder[0], 1),
        (scaffolder[1], 2),
    ]
    assert [r["batch"] for r in rows(pg, db, SCHEDULER_TABLE)] == [1, 1]
    assert snapshot.read(path) == taken


def test_taking_a_snapshot_archives_every_set(small: Install, pg: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = take(small, pg, monkeypatch)
    assert taken.archived is not None
    assert (len(taken.archived.new_files), len(taken.archived.new_indexes)) == (5 + 1 + 2, 3)
    assert archive.unarchived(small.project, sets.discover_all(small.project)) == []
    again = take(small, pg, monkeypatch)
    assert again.archived is not None
    assert (again.archived.new_files, again.archived.new_indexes) == ((), ())
    kept = archive.lookup(archive.default_root(small.project), SCHEDULER_TABLE, "20210928160613_init")
    assert [(f.index.package, f.index.version) for f in kept] == [(DEFAULTS, "0.9.0")]


@pytest.fixture(scope="module")
def wide(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """catalog in sync with its scheduler set ahead (0.10.0's last_run applied, 0.9.0 installed);
    scaffolder's database absent; one orphan database."""
    project = make_project(
        tmp_path_factory.mktemp("backstage"), {CATALOG: "4.0.5", SCAFFOLDER: "4.3.0", DEFAULTS: "0.9.0"}
    )
    found = Install(project, unique_name("kw_snapw") + "_")
    made = [found.db("catalog"), found.db("retired")]
    for name in made:
        create_database(pg, name)
    try:
        ok(knex(project, pg, made[0], "migrate:latest", migrations(project, CATALOG)))
        newer_scheduler = fetch(DEFAULTS, "0.10.0") / "migrations" / "scheduler"
        ok(knex(project, pg, made[0], "migrate:latest", newer_scheduler, SCHEDULER_TABLE))
        yield found
    finally:
        for name in made:
            drop_database(pg, name)


def test_every_database_and_set_row_by_row(wide: Install, pg: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = take(wide, pg, monkeypatch)
    databases = {d.database.rsplit("/", 1)[1]: d for d in taken.databases}
    assert {name: (d.plugin, d.state, len(d.sets)) for name, d in databases.items()} == {
        wide.db("catalog"): ("catalog", "ahead", 2),
        wide.db("scaffolder"): ("scaffolder", "absent", 0),
        wide.db("retired"): (None, "orphan", 0),
    }
    catalog = {s.table: s for s in databases[wide.db("catalog")].sets}
    for table in ("knex_migrations", SCHEDULER_TABLE):
        assert [vars(a) for a in catalog[table].applied] == rows(pg, wide.db("catalog"), table)
    # The row whose file 0.9.0 no longer ships is kept: it is what a downgrade must account for.
    assert catalog[SCHEDULER_TABLE].applied[-1].name == "20250411000000_last_run.js"
    assert (catalog[SCHEDULER_TABLE].version, len(catalog["knex_migrations"].applied)) == ("0.9.0", 47)
    files = taken.set_files()
    assert len(files[("catalog", "knex_migrations")]) == 47
    assert files[("*", SCHEDULER_TABLE)] == ("20210928160613_init.js", "20240712211735_nullable_next_run.js")
    assert taken.set_versions()[("*", SCHEDULER_TABLE)] == "0.9.0"
    path = snapshot.write(taken, wide.project / "snap.json")
    assert snapshot.read(path) == taken
    # What `knexwrap downgrade --to FILE` reads: the sets' files and versions, no folders to run from.
    target = snapshot.target(path)
    assert (target.files, target.versions, target.directories) == (files, taken.set_versions(), {})
    assert str(target.to) == f"the snapshot {path} of 2025-06-01T12:00:00+00:00"
    assert (target.to.kind, target.to.path, target.to.taken_at) == ("snapshot", str(path), "2025-06-01T12:00:00+00:00")


# ------------------------------------------------------------------------------ reading bad files


def valid() -> dict[str, Any]:
    one = snapshot.Snapshot(
        taken_at="2025-06-01T12:00:00+00:00",
        archive=".knexwrap/archive",
        sets=(
            snapshot.InstalledSet(
                "auth", "@backstage/plugin-auth-backend", "0.31.0", "knex_migrations", "m", ("a.js",)
            ),
        ),
        databases=(
            snapshot.DatabaseState(
                "auth",
                "pg",
                "postgresql://u@h:5432/backstage_plugin_auth",
                "in_sync",
                None,
                (snapshot.DatabaseSet("knex_migrations", None, None, (st.Applied("a.js", 1, None),)),),
            ),
        ),
    )
    return snapshot.to_json(one)


def broken(change: str) -> Any:
    doc = valid()
    if change == "list":
        return [doc]
    mutated = copy.deepcopy(doc)
    target, key, value = {
        "foreign": (mutated, "kind", None),
        "newer": (mutated, "format", 2),
        "no sets": (mutated, "sets", ...),
        "batch text": (mutated["databases"][0]["sets"][0]["applied"][0], "batch", "1"),
        "batch bool": (mutated["databases"][0]["sets"][0]["applied"][0], "batch", True),
        "file number": (mutated["sets"][0], "files", ["a.js", 3]),
        "set not object": (mutated["databases"][0], "sets", ["knex_migrations"]),
    }[change]
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return mutated


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("list", 'no "kind": "knexwrap-snapshot" at its top level'),
        ("foreign", 'no "kind": "knexwrap-snapshot" at its top level'),
        ("newer", "format 2, but this knexwrap reads format 1 (written by a newer knexwrap?)"),
        ("no sets", "sets: missing"),
        ("batch text", 'databases[0].sets[0].applied[0].batch: expected a whole number, got "1"'),
        ("batch bool", "databases[0].sets[0].applied[0].batch: expected a whole number, got true"),
        ("file number", "sets[0].files[1]: expected a string, got 3"),
        ("set not object", 'databases[0].sets[0]: expected an object, got "knex_migrations"'),
    ],
)
def test_a_bad_snapshot_is_a_config_error_naming_file_and_fault(tmp_path: Path, change: str, problem: str) -> None:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(broken(change)))
    with pytest.raises(ConfigError) as failure:
        snapshot.read(path)
    assert failure.value.message == f"{path} is not a knexwrap snapshot: {problem}"


def test_unreadable_and_non_json_files(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(valid()))
    assert snapshot.to_json(snapshot.read(path)) == valid()
    path.write_text("{")
    with pytest.raises(ConfigError) as failure:
        snapshot.read(path)
    assert failure.value.message == (
        f"{path} is not a knexwrap snapshot: not JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))"
    )
    with pytest.raises(ConfigError) as failure:
        snapshot.read(tmp_path / "none.json")
    assert failure.value.message == f"cannot read the snapshot {tmp_path / 'none.json'}: No such file or directory"
