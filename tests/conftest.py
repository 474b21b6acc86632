"""Shared fixtures: throwaway PostgreSQL and MariaDB servers (started once per session)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest

from tests.servers import MariaDBServer, PostgresServer, ServerUnavailable


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    """A plugin built in-process installs its own SIGINT/SIGTERM handlers (singer-sdk does
    so in __init__); put the previous ones back so no later test inherits them."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | str]:
    if url := os.environ.get("TEST_PG_URL"):
        yield PostgresServer(url=url)
        return
    try:
        server = PostgresServer.start()
    except ServerUnavailable as exc:
        pytest.fail(f"cannot start PostgreSQL for the tests: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """URL of a fresh, empty PostgreSQL database for one test."""
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    if url := os.environ.get("TEST_MARIADB_URL"):
        yield MariaDBServer(url=url)
        return
    try:
        server = MariaDBServer.start()
    except ServerUnavailable as exc:
        pytest.fail(f"cannot start MariaDB for the tests: {exc}")
    yield server
    server.stop()


@pytest.fixture
def mariadb_url(mariadb_server: MariaDBServer) -> str:
    """URL of a fresh, empty MariaDB database for one test."""
    return mariadb_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
from tests.emulator_fixture import *  # noqa: E402,F401,F403
