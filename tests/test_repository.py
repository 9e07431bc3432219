"""The repository as Backstage sees it: a yarn workspaces repository made by a real `yarn install`
(yarn 1, and yarn 4 with the node-modules linker as create-app sets it up).

packages/backend (backstage.role backend) loads @backstage/backend-defaults 0.10.0 (nested under
packages/backend/node_modules: the root holds 0.9.0 for the root's own devDependencies), the workspace
plugin plugins/todo-backend (its own migrations) and knex; the root also installs auth-backend, which
no backend loads. Every whole-install command gives the same report from the root, packages/backend
and the plugin's folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backstage import AUTH, DEFAULTS, KEYS_TABLE, SCHEDULER_TABLE, fetch, knex, ok
from helpers import knexwrap, write_migration
from servers import PgServer, create_database, drop_database, psql_rows, unique_name
from workspace import knex_tarball, outer_modules, repack, write_package, yarn1_install, yarn4_install

TODO_FILE = "20240101000000_init.js"
NEWER_SCHEDULER = ("20210928160613_init.js", "20240712211735_nullable_next_run.js", "20250411000000_last_run.js")


@dataclass(frozen=True)
class Repo:
    root: Path
    prefix: str
    env: dict[str, str | None]

    @property
    def folders(self) -> tuple[Path, ...]:
        return (self.root, self.root / "packages" / "backend", self.root / "plugins" / "todo-backend")

    def run(self, *args: str, cwd: Path | None = None) -> Any:
        return knexwrap(*args, "--prefix", self.prefix, cwd=cwd or self.root, env=self.env)


def make_repo(base: Path, yarn: str = "yarn1") -> Path:
    """The yarn 1 workspaces repository described in the module docstring, installed for real."""
    outer_modules(base)
    tarballs = base / "tgz"
    old = repack(fetch(DEFAULTS, "0.9.0"), tarballs / "defaults-0.9.0.tgz")
    new = repack(fetch(DEFAULTS, "0.10.0"), tarballs / "defaults-0.10.0.tgz")
    auth = repack(fetch(AUTH, "0.31.0"), tarballs / "auth-0.31.0.tgz")
    knex_tgz = knex_tarball(tarballs)
    root = base / "repo"
    write_package(
        root,
        {
            "name": "root",
            "private": True,
            "workspaces": ["packages/*", "plugins/*"],
            "devDependencies": {DEFAULTS: f"file:{old}", AUTH: f"file:{auth}"},
        },
    )
    write_package(
        root / "packages" / "backend",
        {
            "name": "backend",
            "version": "0.0.0",
            "private": True,
            "backstage": {"role": "backend"},
            "dependencies": {
                DEFAULTS: f"file:{new}",
                "@internal/plugin-todo-backend": "0.1.0",
                "knex": f"file:{knex_tgz}",
            },
        },
    )
    plugin = write_package(
        root / "plugins" / "todo-backend",
        {
            "name": "@internal/plugin-todo-backend",
            "version": "0.1.0",
            "backstage": {"role": "backend-plugin", "pluginId": "todo"},
            "dependencies": {"knex": f"file:{knex_tgz}"},
        },
    )
    write_migration(
        plugin / "migrations",
        TODO_FILE,
        "await knex.schema.createTable('todo', t => t.increments('id'));",
        "await knex.schema.dropTable('todo');",
    )
    if yarn == "yarn1":
        yarn1_install(root, base / "yarn-cache")
    else:
        yarn4_install(root)
    return root


@pytest.fixture(scope="module", params=["yarn1", "yarn4"])
def repo(pg: PgServer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Repo]:
    """The repository, with the todo database migrated by knexwrap and the scheduler set applied there
    by the real knex from the backend's (nested, 0.10.0) copy, as the running backend would."""
    root = make_repo(tmp_path_factory.mktemp(request.param), request.param)
    prefix = unique_name("kw_repo") + "_"
    env: dict[str, str | None] = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": pg.user}
    create_database(pg, f"{prefix}todo")
    try:
        r = Repo(root, prefix, env)
        assert r.run("latest", "todo", "--yes", cwd=r.folders[1]).code == 0
        nested = root / "packages" / "backend" / "node_modules" / DEFAULTS / "migrations" / "scheduler"
        ok(knex(root, pg, f"{prefix}todo", "migrate:latest", nested, SCHEDULER_TABLE))
        yield r
    finally:
        drop_database(pg, f"{prefix}todo")


def test_yarn_links_knex_into_the_backend_package_too(repo: Repo) -> None:
    # The fact that made "nearest folder with .bin/knex" the wrong root (yarn 1; yarn 4 links only the root's).
    if (repo.root / ".yarnrc.yml").exists():
        assert (repo.root / "node_modules" / ".bin" / "knex").exists()
    else:
        assert (repo.root / "packages" / "backend" / "node_modules" / ".bin" / "knex").exists()
    assert (repo.root / "node_modules" / "@internal" / "plugin-todo-backend").is_symlink()


def expected_status(repo: Repo, pg: PgServer) -> dict[str, Any]:
    root = str(repo.root)
    nested = f"{root}/packages/backend/node_modules/{DEFAULTS}"
    rows = psql_rows(pg, f"{repo.prefix}todo", f"select name, batch from {SCHEDULER_TABLE} order by id")
    assert [r[0] for r in rows] == list(NEWER_SCHEDULER)
    return {
        "root": root,
        "backends": [f"{root}/packages/backend"],
        "knex_version": "3.3.0",
        "knex_folder": f"{root}/node_modules/knex",
        "other_copies": [
            {
                "package": DEFAULTS,
                "version": "0.9.0",
                "folder": f"{root}/node_modules/{DEFAULTS}",
                "used_version": "0.10.0",
                "used_folder": nested,
            }
        ],
        "not_loaded": [
            {"package": AUTH, "version": "0.31.0", "plugin": "auth", "folder": f"{root}/node_modules/{AUTH}"}
        ],
        "databases": {
            "todo": {
                "state": "in_sync",
                "sets": {
                    "knex_migrations": (
                        "@internal/plugin-todo-backend",
                        "0.1.0",
                        f"{root}/plugins/todo-backend/migrations",
                        [TODO_FILE],
                    ),
                    SCHEDULER_TABLE: (DEFAULTS, "0.10.0", f"{nested}/migrations/scheduler", list(NEWER_SCHEDULER)),
                },
            }
        },
    }


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    databases = {}
    for d in doc["databases"]:
        sets = {
            s["migrations_table"]: (
                s["package"],
                s["version"],
                s["migrations_directory"],
                [m["name"] for m in s["migrations"] if m["state"] == "applied"],
            )
            for s in d["sets"]
        }
        databases[d["plugin"]] = {"state": d["state"], "sets": sets}
    return {**doc["repository"], "databases": databases}


def test_status_is_the_same_report_from_root_backend_and_plugin_folder(repo: Repo, pg: PgServer) -> None:
    docs = []
    for folder in repo.folders:
        result = repo.run("status", "--json", "--check", cwd=folder)
        assert result.code == 0, result.err
        docs.append(result.json())
    assert docs[0] == docs[1] == docs[2]
    # The nested 0.10.0 is the one the backend loads: with the root's 0.9.0 the database would be "ahead".
    assert summarize(docs[0]) == expected_status(repo, pg)
    text = repo.run("status", cwd=repo.folders[2])
    assert f"repository: {repo.root}" in text.out
    assert f"{DEFAULTS} 0.9.0 at {repo.root}/node_modules/{DEFAULTS} (not loaded; the backend loads 0.10.0)" in text.out
    listed = repo.run("plugins", cwd=repo.folders[1])
    assert (
        f"{DEFAULTS} 0.9.0 at {repo.root}/node_modules/{DEFAULTS} (not loaded; the backend loads 0.10.0)" in listed.out
    )
    assert f"not loaded: {AUTH} 0.31.0 (auth) at {repo.root}/node_modules/{AUTH}" in listed.out


@pytest.mark.parametrize("command", [("doctor",), ("plan", "--to", "{root}"), ("plugins",), ("config",)])
def test_whole_install_commands_agree_from_every_folder(repo: Repo, command: tuple[str, ...]) -> None:
    args = [a.format(root=repo.root) for a in command]
    outputs = [repo.run(*args, "--json", cwd=folder) for folder in repo.folders]
    assert [o.code for o in outputs] == [0, 0, 0], [o.err for o in outputs]
    assert outputs[0].out == outputs[1].out == outputs[2].out


def test_snapshot_from_every_folder_records_the_same_sets(repo: Repo, tmp_path: Path) -> None:
    taken = []
    for i, folder in enumerate(repo.folders):
        out = tmp_path / f"snap{i}.json"
        result = repo.run("snapshot", "--out", str(out), "--json", cwd=folder)
        assert result.code == 0, result.err
        doc = result.json()
        assert doc["command"] == "snapshot"
        written = json.loads(out.read_text(encoding="utf-8"))
        del written["taken_at"]
        taken.append(written)
    assert taken[0] == taken[1] == taken[2]
    recorded = {(s["plugin_id"], s["table"], s["folder"]): s["files"] for s in taken[0]["sets"]}
    nested = f"packages/backend/node_modules/{DEFAULTS}/migrations/scheduler"
    assert recorded == {
        ("todo", "knex_migrations", "plugins/todo-backend/migrations"): [TODO_FILE],
        ("*", KEYS_TABLE, f"packages/backend/node_modules/{DEFAULTS}/migrations/auth"): [
            "20240327104803_public_keys.js"
        ],
        ("*", SCHEDULER_TABLE, nested): list(NEWER_SCHEDULER),
    }


def test_project_dir_wins(repo: Repo, tmp_path: Path) -> None:
    elsewhere = repo.run("status", "--json", "--project-dir", str(repo.root), cwd=tmp_path)
    assert elsewhere.code == 0, elsewhere.err
    assert elsewhere.json()["repository"]["root"] == str(repo.root)


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("status", "--check"),
        ("doctor",),
        ("snapshot",),
        ("plan", "--to", "."),
        ("downgrade", "--to", ".", "--yes"),
    ],
)
def test_no_backend_plugin_at_all_is_an_error_naming_the_folder(tmp_path: Path, command: tuple[str, ...]) -> None:
    empty = tmp_path / "app"
    write_package(empty / "packages" / "backend", {"name": "backend", "backstage": {"role": "backend"}})
    write_package(empty, {"name": "root", "private": True, "workspaces": ["packages/*"]})
    outer_modules(tmp_path)
    result = knexwrap(*command, "--json", cwd=empty / "packages" / "backend", env={"POSTGRES_HOST": "127.0.0.1"})
    assert result.code == 3, result.err
    assert result.json()["error"]["code"] == "no_plugins"
    assert result.err == (
        f"knexwrap: error: no Backstage backend plugin found in {empty}: run knexwrap inside the Backstage "
        "repository (after yarn install) or pass --project-dir\n"
    )
