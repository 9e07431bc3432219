"""--timeout bounds connecting and reading; each database of a whole-install read has its own limit.

A server that accepts connections and never answers is a TCP listener of the test's own (no real
server can be made to do that on demand).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import knexwrap
from servers import PgServer, create_database, drop_database, unique_name


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never sends a byte."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


def test_a_silent_server_is_one_unreachable_row(pg: PgServer, silent_port: int, tmp_path: Path) -> None:
    prefix = unique_name("kw_silent") + "_"
    config = tmp_path / "app-config.yaml"
    config.write_text(
        "backend:\n  database:\n    client: pg\n"
        f"    connection: {{host: {pg.host}, port: {pg.port}, user: {pg.user}}}\n"
        f"    prefix: {prefix}\n"
        "    plugin:\n      catalog:\n"
        f"        connection: {{host: 127.0.0.1, port: {silent_port}, user: {pg.user}}}\n"
    )
    create_database(pg, f"{prefix}app")
    try:
        started = time.monotonic()
        result = knexwrap("status", "--config", str(config), "--json", "--timeout", "3")
        elapsed = time.monotonic() - started
    finally:
        drop_database(pg, f"{prefix}app")
    assert result.code == 0, result.err
    rows = {d["plugin"]: d for d in result.json()["databases"] if d["plugin"]}
    assert rows["catalog"]["state"] == "unreachable"
    assert rows["catalog"]["error"] == (
        f"no answer from 127.0.0.1:{silent_port} within 3 s: it accepted the connection but did not respond "
        "(raise the limit with --timeout)"
    )
    assert rows["app"]["state"] == "behind"  # the other server's rows are all there
    assert rows["user-settings"]["state"] == "absent"
    assert "read_state" not in result.out + result.err  # no internal script named
    assert elapsed < 15
