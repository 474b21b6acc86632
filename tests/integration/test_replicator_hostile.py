"""dap_replicator attacked as a hostile caller would: the same table twice at once (threads and
processes), bad names and connection strings, an interrupt in the calling thread, and many calls
in one process (descriptors, threads, logging, gc, signals left as they were)."""

from __future__ import annotations

import _thread
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dap_replicator import (
    DatabaseConnection,
    DatabaseConnectionError,
    ReplicatorError,
    SQLDrop,
    SQLReplicator,
    TableBusyError,
)
from tap_dap.client import DAPSession
from tests.emulator_fixture import RunningEmulator
from tests.integration.test_replicator import (
    DIALECTS,
    FAST,
    assert_equals_truth,
    assert_sync_moved_on,
    assert_threads_end,
    database_url,
    meta_rows,
    open_session,
)

SLOW_JOBS = 2.0  # seconds each DAP job takes: long enough to start a second call meanwhile


@pytest.fixture
def slow_emulator(emulator_factory: Any) -> RunningEmulator:
    return emulator_factory(tables="accounts", rows=200, rows_per_object=50,
                            job_latency=SLOW_JOBS)


def wait_for_queries(emulator: RunningEmulator, count: int) -> None:
    """Until ``count`` DAP queries have been started (a call is then inside its run)."""
    deadline = time.monotonic() + 60
    while emulator.requests()["query"]["total"] < count:
        assert time.monotonic() < deadline, "the first call never started its DAP job"
        time.sleep(0.05)


def busy_text(where: str) -> str:
    return (f"canvas.accounts: another replication of this table is running {where}; nothing "
            "was done (run one task per table at a time)")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_same_table_from_two_threads_is_refused(dialect: str, slow_emulator: RunningEmulator,
                                                    tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    url = database_url(dialect, tmp_path, request)
    session = open_session(slow_emulator)
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    try:
        for method, queries in (("initialize", 1), ("synchronize", 2), ("replicate", 3)):
            if method != "initialize":
                slow_emulator.advance("canvas", "accounts", inserts=7, updates=5, deletes=3)
            results: list[Any] = []
            first = threading.Thread(target=lambda m=method, out=results: out.append(
                getattr(replicator, m)("canvas", "accounts")), daemon=True)
            first.start()
            wait_for_queries(slow_emulator, queries)
            with pytest.raises(TableBusyError) as busy:
                getattr(replicator, method)("canvas", "accounts")
            assert str(busy.value) == busy_text("in this process")
            if method != "initialize":
                with pytest.raises(TableBusyError):  # nor may it be dropped meanwhile
                    SQLDrop(DatabaseConnection(url)).drop("canvas", "accounts")
            first.join(120)
            assert len(results) == 1, f"{method}: the first call failed"
            assert slow_emulator.requests()["query"]["total"] == queries  # no second job
            assert_equals_truth(url, slow_emulator, ["accounts"])
            assert meta_rows(url)["accounts"] == (results[0].timestamp, 1)
    finally:
        session.close()


def _replicate_in_process(base_url: str, client_id: str, secret: str, url: str) -> None:
    from tap_dap.client import Credentials, DAPClient

    credentials = Credentials.create(client_id=client_id, client_secret=secret)
    with DAPClient(base_url, credentials) as session:
        SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST).replicate(
            "canvas", "accounts")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_same_table_from_another_process_is_refused(
        dialect: str, slow_emulator: RunningEmulator, session: DAPSession, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    url = database_url(dialect, tmp_path, request)
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    other = multiprocessing.get_context("spawn").Process(target=_replicate_in_process, args=(
        slow_emulator.base_url, slow_emulator.client_id, slow_emulator.client_secret, url))
    other.start()
    try:
        wait_for_queries(slow_emulator, 1)
        where = ("elsewhere (another process on this database)" if dialect == "sqlite"
                 else "elsewhere (another process or machine)")
        with pytest.raises(TableBusyError) as busy:
            replicator.replicate("canvas", "accounts")
        assert str(busy.value) == busy_text(where)
    finally:
        other.join(120)
    assert other.exitcode == 0
    assert slow_emulator.requests()["query"]["total"] == 1
    assert_equals_truth(url, slow_emulator, ["accounts"])
    # the other process has ended: its lock went with it, the table continues here
    before = meta_rows(url)["accounts"][0]
    slow_emulator.advance("canvas", "accounts", inserts=3, updates=2)
    assert_sync_moved_on(dialect, replicator.synchronize("canvas", "accounts"), changes=5,
                         rows=len(slow_emulator.truth("canvas", "accounts")), previous=before)
    assert_equals_truth(url, slow_emulator, ["accounts"])


@pytest.fixture
def session(slow_emulator: RunningEmulator) -> Any:
    session = open_session(slow_emulator)
    yield session
    session.close()


def test_interrupt_in_the_calling_thread_leaves_nothing_running(
        slow_emulator: RunningEmulator, session: DAPSession, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dap.db"
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    first = replicator.initialize("canvas", "accounts")
    slow_emulator.advance("canvas", "accounts", inserts=4, deletes=2)
    threads = set(threading.enumerate())
    # Ctrl-C as a caller's program gets it: Python's own handler (a plugin built in-process
    # elsewhere in this test process may have installed the SDK's).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(SLOW_JOBS / 2, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            replicator.synchronize("canvas", "accounts")  # interrupted while DAP runs the job
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert_threads_end(threads)
    assert meta_rows(url)["accounts"] == (first.timestamp, 1)  # nothing claimed
    again = replicator.synchronize("canvas", "accounts")  # the lock was released
    assert again.rows_written == 6
    assert_equals_truth(url, slow_emulator, ["accounts"])


def test_bad_names_and_connection_strings_fail_in_one_line(
        slow_emulator: RunningEmulator, session: DAPSession, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dap.db"
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    drop = SQLDrop(DatabaseConnection(url))
    cases: list[tuple[Any, str]] = [
        (lambda: replicator.initialize("canvas", "accounts,courses"),
         "'accounts,courses' is not a namespace or table name"),
        (lambda: replicator.initialize("canvas", " accounts"),
         "' accounts' is not a namespace or table name"),
        (lambda: replicator.replicate("canvas", "a" * 5000),
         f"{'a' * 40!r}... (5000 characters) is not a namespace or table name"),
        (lambda: drop.drop("canvas", None),
         "None is not a table name, a list of table names or 'all'"),
        (lambda: drop.drop("canvas", " , "),
         "' , ': no table names to drop (give names or 'all')"),
        (lambda: drop.drop("canvas", []), "[]: no table names to drop (give names or 'all')"),
    ]
    for call, text in cases:
        with pytest.raises(ReplicatorError) as bad:
            call()
        assert str(bad.value) == text
    assert slow_emulator.requests()["query"]["total"] == 0
    for memory in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(DatabaseConnectionError) as in_memory:
            DatabaseConnection(memory)
        assert str(in_memory.value) == (
            f"database connection string {memory!r}: an in-memory SQLite database cannot hold "
            "a replica (each call opens its own connection); use sqlite:///PATH")


def test_many_calls_leave_the_process_as_it_was(emulator_factory: Any, tmp_path: Path) -> None:
    emulator = emulator_factory(tables="accounts", rows=100, rows_per_object=50)
    url = f"sqlite:///{tmp_path}/dap.db"
    session = open_session(emulator)
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    try:
        replicator.initialize("canvas", "accounts")
        replicator.synchronize("canvas", "accounts")  # the HTTP pool and lock file are open
        before = _process_view()
        for call in range(50):
            if call % 10 == 0:
                emulator.advance("canvas", "accounts", inserts=2, updates=2, deletes=1)
            replicator.synchronize("canvas", "accounts")
        assert _process_view() == before
    finally:
        session.close()
    assert_equals_truth(url, emulator, ["accounts"])


def _process_view() -> dict[str, Any]:
    """What a library call must not change in its caller's process."""
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": sorted(t.name for t in threading.enumerate()),
        "gc": (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()),
        "root logging": (logging.root.level, list(logging.root.handlers)),
        "handlers": sum(len(logger.handlers) for logger in logging.root.manager.loggerDict.values()
                        if isinstance(logger, logging.Logger)),
        "signals": [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE)],
        "streams": (sys.stdout, sys.stderr, sys.stdin),
    }


# -- docs/replicator.md: its Python snippets run as written ---------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "replicator.md"


def python_snippets() -> list[str]:
    parts = DOCS.read_text(encoding="utf-8").split("```python\n")[1:]
    return [part.split("```", 1)[0] for part in parts]


def test_the_docs_snippets_run(emulator_factory: Any, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = emulator_factory(tables="accounts,courses,users", rows=20)
    url = f"sqlite:///{tmp_path}/dap.db"
    first, from_asyncio, task = python_snippets()
    # The first one only needs real credentials and a database in place of its placeholders.
    first = (first.replace('"https://api-gateway.instructure.com"', repr(emulator.base_url))
             .replace('client_id="us-east-1#…"', f"client_id={emulator.client_id!r}")
             .replace('client_secret="…"', f"client_secret={emulator.client_secret!r}")
             .replace('"postgresql://dap:…@db/replica"', repr(url)))
    namespace: dict[str, Any] = {}
    exec(first, namespace)  # noqa: S102  (the doc's own code)
    assert namespace["result"].table == "accounts" and meta_rows(url) == {}  # dropped at the end

    import asyncio

    async def main() -> list[Any]:
        exec("async def snippet(replicator):\n" +  # noqa: S102
             "".join(f"    {line}\n" for line in from_asyncio.splitlines()) +
             "    return result, results", {"asyncio": asyncio}, namespace)
        return await namespace["snippet"](replicator)

    session = open_session(emulator)
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    replicator.initialize("canvas", "accounts")
    try:
        result, results = asyncio.run(main())
    finally:
        session.close()
    assert result.table == "accounts"
    assert [(r.table, r.rows_written) for r in results] == [
        ("accounts", 0), ("courses", 20), ("users", 20)]

    monkeypatch.setenv("DAP_API_URL", emulator.base_url)
    monkeypatch.setenv("DAP_CLIENT_ID", emulator.client_id)
    monkeypatch.setenv("DAP_CLIENT_SECRET", emulator.client_secret)
    monkeypatch.setenv("DAP_CONNECTION_STRING", url)
    emulator.advance("canvas", "users", inserts=2)
    exec("from dap_replicator import DatabaseConnection, SQLReplicator\n"  # noqa: S102
         "from tap_dap.client import DAPClient\n" + task, namespace)
    done = namespace["replicate_table"]("users")
    assert done["table"] == "users" and done["rows"] == 2
    assert_equals_truth(url, emulator, ["accounts", "courses", "users"])
