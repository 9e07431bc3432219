"""Session-wide database servers for the tests; see servers.py for how they are found."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import (
    SCRAM_PASSWORD,
    MariaServer,
    PgServer,
    create_database,
    drop_database,
    ensure_mariadb,
    ensure_postgres,
    scram_cluster,
    unique_name,
)


@pytest.fixture(scope="session")
def pg() -> PgServer:
    """PostgreSQL with trust auth, shared with other test runs on this machine."""
    return ensure_postgres()


@pytest.fixture(scope="session")
def mariadb() -> MariaServer:
    return ensure_mariadb()


@pytest.fixture
def pg_database(pg: PgServer) -> Iterator[str]:
    """The name of a fresh database on `pg`, dropped after the test."""
    name = unique_name("kw_test")
    create_database(pg, name)
    try:
        yield name
    finally:
        drop_database(pg, name)


@pytest.fixture(scope="session")
def scram_pg() -> Iterator[PgServer]:
    """A private cluster that checks passwords; `scram_pg.password` is SCRAM_PASSWORD."""
    with scram_cluster(SCRAM_PASSWORD) as server:
        yield server
