"""dap_replicator against the emulator: the official replicator flow on each dialect, its errors,
and tables replicated in parallel from threads and from processes into one database."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dap_replicator import (
    DatabaseConnection,
    DatabaseConnectionError,
    ReplicationResult,
    ReplicatorError,
    SnapshotRequiredError,
    SQLDrop,
    SQLReplicator,
    TableAlreadyInitializedError,
    TableNotFoundError,
    TableNotInitializedError,
)
from tap_dap.client import Credentials, DAPClient, DAPSession
from tests.compat.test_two_way import _mysql_rows, _whole_seconds
from tests.e2e.replica import Replica, diff_table
from tests.emulator_fixture import RunningEmulator
from tests.integration.test_target_mysql import mysql_query

TABLES = ["accounts", "submissions"]
DIALECTS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("mariadb", marks=pytest.mark.mariadb)]
FAST = {"poll_interval": 0.2}


def database_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path}/dap.db"
    return request.getfixturevalue("pg_url" if dialect == "postgres" else "mariadb_url")


def open_session(emulator: RunningEmulator) -> DAPSession:
    credentials = Credentials.create(client_id=emulator.client_id,
                                     client_secret=emulator.client_secret)
    return DAPClient(emulator.base_url, credentials).__enter__()


@pytest.fixture
def emulator(emulator_factory: Any) -> RunningEmulator:
    return emulator_factory(tables=",".join(TABLES), rows=30, rows_per_object=10)


@pytest.fixture
def session(emulator: RunningEmulator) -> Iterator[DAPSession]:
    session = open_session(emulator)
    yield session
    session.close()


def stored_rows(url: str, table: str) -> list[dict[str, Any]]:
    if url.startswith("mysql"):
        return [_whole_seconds(r) for r in _mysql_rows(url, table)]
    return Replica(url).rows("canvas", table)


def assert_equals_truth(url: str, emulator: RunningEmulator, tables: list[str]) -> None:
    for table in tables:
        truth = emulator.truth("canvas", table)
        if url.startswith("mysql"):
            truth = [{"key": t["key"], "value": _whole_seconds(t["value"])} for t in truth]
        stored = stored_rows(url, table)
        diff = diff_table("canvas", table, truth, stored)
        assert not diff, str(diff)
        assert len(stored) == len(truth) > 0


def meta_rows(url: str) -> dict[str, Any]:
    """source_table -> (timestamp, schema_version) of the canvas meta rows."""
    connection = DatabaseConnection(url)
    dialect = connection.open_dialect()
    try:
        return {r.source_table: (r.timestamp, r.schema_version)
                for r in dialect.read_meta_rows() if r.source_namespace == "canvas"}
    finally:
        dialect.close()



def assert_sync_moved_on(dialect: str, result: ReplicationResult, *, changes: int, rows: int,
                         previous: dt.datetime) -> None:
    """A synchronize wrote the `changes` made since the `previous` bookmark, and moved it on."""
    if dialect == "mariadb":
        # The meta row's `datetime` keeps whole seconds, cut down (never rounded up past a
        # change): rows of the last second come again (idempotent upserts), and a sync in
        # that same second keeps the bookmark.
        assert changes <= result.rows_written <= changes + rows
        assert result.timestamp >= previous
    else:
        assert result.rows_written == changes
        assert result.timestamp > previous


def assert_threads_end(expected: set[threading.Thread], within: float = 15.0) -> None:
    """The threads running are `expected` again: the ones a stopped tap leaves end on their
    own (a busy machine may need a few seconds), none keep running."""
    deadline = time.monotonic() + within
    while set(threading.enumerate()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) == expected


def physical_tables(url: str) -> set[str]:
    if url.startswith("mysql"):
        return {r[0] for r in mysql_query(
            url, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                 "DATABASE() AND table_name LIKE 'canvas%%'")}
    if url.startswith("sqlite"):
        _, rows = Replica(url).query("SELECT name FROM sqlite_master WHERE type = 'table' "
                                     "AND name LIKE 'canvas%'")
    else:
        _, rows = Replica(url).query("SELECT table_name FROM information_schema.tables "
                                     "WHERE table_schema = 'canvas'")
    return {r[0] for r in rows}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_initialize_changes_synchronize_drop(dialect: str, emulator: RunningEmulator,
                                             session: DAPSession, tmp_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    url = database_url(dialect, tmp_path, request)
    connection = DatabaseConnection(url)
    replicator = SQLReplicator(session, connection, tap_settings=FAST)
    replicator.version_upgrade()
    assert meta_rows(url) == {}

    for table in TABLES:
        result = replicator.initialize("canvas", table)
        assert (result.table, result.rows_written, result.snapshot) == (table, 30, True)
        assert meta_rows(url)[table] == (result.timestamp, result.schema_version)
    assert_equals_truth(url, emulator, TABLES)

    for table in TABLES:
        emulator.advance("canvas", table, inserts=4, updates=5, deletes=3)
    before = meta_rows(url)
    for table in TABLES:
        result = replicator.synchronize("canvas", table)
        assert (result.snapshot, result.schema_version) == (False, 1)
        assert_sync_moved_on(dialect, result, changes=12, rows=30, previous=before[table][0])
    assert_equals_truth(url, emulator, TABLES)

    assert SQLDrop(connection).drop("canvas", "accounts") == ["accounts"]
    assert set(meta_rows(url)) == {"submissions"}
    assert physical_tables(url) == {"canvas__submissions" if dialect != "postgres"
                                    else "submissions"}
    assert SQLDrop(connection).drop("canvas", "all") == ["submissions"]
    assert meta_rows(url) == {} and physical_tables(url) == set()


def test_the_errors_of_the_official_client(emulator: RunningEmulator, session: DAPSession,
                                           tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dap.db"
    connection = DatabaseConnection(url)
    replicator = SQLReplicator(session, connection, tap_settings=FAST)
    with pytest.raises(TableNotInitializedError) as unknown:
        replicator.synchronize("canvas", "accounts")
    assert str(unknown.value) == ("canvas.accounts: Table not initialized. Please run initdb "
                                  "(initialize) first.")
    assert isinstance(unknown.value, ValueError)  # as the official client raises it

    replicator.initialize("canvas", "accounts")
    with pytest.raises(TableAlreadyInitializedError) as twice:
        replicator.initialize("canvas", "accounts")
    assert str(twice.value) == ("canvas.accounts: Table already initialized. Please run syncdb "
                                "(synchronize) to update it.")

    with pytest.raises(TableNotInitializedError) as drop_unknown:
        SQLDrop(connection).drop("canvas", ["accounts", "courses"])
    assert str(drop_unknown.value) == ("canvas.courses: Table not initialized (not replicated "
                                       "in this database); nothing was dropped")
    assert set(meta_rows(url)) == {"accounts"}  # checked before anything was dropped

    with pytest.raises(ReplicatorError, match=r"^'acc\*' is not a namespace or table name$"):
        replicator.initialize("canvas", "acc*")

    for call in (replicator.initialize, replicator.replicate):
        with pytest.raises(TableNotFoundError) as missing:
            call("canvas", "no_such_table")
        assert str(missing.value) == ("canvas.no_such_table: DAP has no table 'no_such_table' "
                                      "in namespace 'canvas'")
    assert set(meta_rows(url)) == {"accounts"}


def test_synchronize_refuses_a_reloaded_table_and_replicate_resnapshots(
        emulator: RunningEmulator, session: DAPSession, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dap.db"
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    first = replicator.replicate("canvas", "accounts")  # no meta row: a snapshot
    assert (first.rows_written, first.snapshot) == (30, True)
    emulator.advance("canvas", "accounts", inserts=2)
    emulator.reload("canvas", "accounts")
    threads = set(threading.enumerate())
    with pytest.raises(SnapshotRequiredError) as refused:
        replicator.synchronize("canvas", "accounts")
    assert str(refused.value).startswith("canvas.accounts: DAP refused the incremental query")
    assert str(refused.value).endswith("the table needs a new snapshot: call replicate(), or "
                                       "drop and initialize it")
    assert refused.value.error_type == "SnapshotRequired"
    assert_threads_end(threads)  # nothing left running after the error
    assert meta_rows(url)["accounts"] == (first.timestamp, first.schema_version)

    again = replicator.replicate("canvas", "accounts")
    assert (again.rows_written, again.snapshot) == (32, True) and again.timestamp > first.timestamp
    assert_equals_truth(url, emulator, ["accounts"])


def test_a_database_failure_stops_the_tap_and_keeps_the_data(
        emulator: RunningEmulator, session: DAPSession, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dap.db"
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    replicator.initialize("canvas", "accounts")
    emulator.advance("canvas", "accounts", inserts=3, updates=2)
    Replica(url).execute('CREATE TRIGGER refuse BEFORE INSERT ON "canvas__accounts" '
                         "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END")
    threads = set(threading.enumerate())
    with pytest.raises(ReplicatorError, match="refused by a test trigger"):
        replicator.synchronize("canvas", "accounts")
    assert_threads_end(threads)
    assert len(Replica(url).rows("canvas", "accounts")) == 30  # the failed batch rolled back


def test_connection_string_password_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = DatabaseConnection("postgresql://dap:S3cret-pw@db.example:5432/replica")
    assert repr(connection) == "DatabaseConnection('postgresql://dap:***@db.example:5432/replica')"
    assert connection.dialect == "postgresql"
    assert "S3cret" not in repr(SQLDrop(connection))
    monkeypatch.delenv("DAP_CONNECTION_STRING", raising=False)
    with pytest.raises(DatabaseConnectionError, match="missing database connection string"):
        DatabaseConnection()
    with pytest.raises(DatabaseConnectionError) as bad:
        DatabaseConnection("oracle://dap:S3cret-pw@db/x")
    assert "S3cret" not in str(bad.value) and "scheme 'oracle'" in str(bad.value)


# -- concurrency ----------------------------------------------------------------------------------

CONCURRENT_TABLES = ["accounts", "courses", "enrollments", "submissions", "users"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_tables_in_parallel_threads(dialect: str, emulator_factory: Any, tmp_path: Path,
                                    request: pytest.FixtureRequest) -> None:
    url = database_url(dialect, tmp_path, request)
    emulator = emulator_factory(tables=",".join(CONCURRENT_TABLES), rows=40, job_latency=0.3)
    session = open_session(emulator)
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    errors: list[BaseException] = []

    def fan_out(method: str) -> None:
        def work(table: str) -> None:
            try:
                getattr(replicator, method)("canvas", table)
            except BaseException as exc:
                errors.append(exc)
        threads = [threading.Thread(target=work, args=(t,)) for t in CONCURRENT_TABLES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)
        assert errors == []

    try:
        fan_out("initialize")
        assert_equals_truth(url, emulator, CONCURRENT_TABLES)
        for table in CONCURRENT_TABLES:
            emulator.advance("canvas", table, inserts=5, updates=5, deletes=2)
        fan_out("synchronize")
    finally:
        session.close()
    assert_equals_truth(url, emulator, CONCURRENT_TABLES)
    assert sorted(meta_rows(url)) == CONCURRENT_TABLES


def _replicate_in_process(base_url: str, client_id: str, secret: str, url: str,
                          table: str) -> None:
    credentials = Credentials.create(client_id=client_id, client_secret=secret)
    with DAPClient(base_url, credentials) as session:
        SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST).replicate(
            "canvas", table)


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_tables_in_parallel_processes(dialect: str, emulator_factory: Any, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    url = database_url(dialect, tmp_path, request)
    emulator = emulator_factory(tables=",".join(CONCURRENT_TABLES), rows=40, job_latency=0.3)
    context = multiprocessing.get_context("spawn")
    for _ in range(2):  # snapshots, then changes
        workers = [context.Process(target=_replicate_in_process, args=(
            emulator.base_url, emulator.client_id, emulator.client_secret, url, table))
            for table in CONCURRENT_TABLES]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(240)
        assert [w.exitcode for w in workers] == [0] * len(workers)
        assert_equals_truth(url, emulator, CONCURRENT_TABLES)
        for table in CONCURRENT_TABLES:
            emulator.advance("canvas", table, inserts=3, updates=3, deletes=1)


def test_the_library_imports_neither_the_emulator_nor_tools() -> None:
    """Runtime boundaries: dap_replicator sits above tap_dap and target_dap_sql, and the
    emulator is a test tool only."""
    probe = ("import sys, dap_replicator; bad = sorted(m for m in sys.modules if "
             "m.startswith(('tap_dap.emulator', 'tests', 'dagster'))); print(bad)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_kill_9_during_initialize_then_replicate_converges(emulator_factory: Any,
                                                           tmp_path: Path) -> None:
    """A task killed in the middle of its snapshot leaves no meta row claiming data; the next
    replicate() takes the snapshot again and the table equals the source."""
    emulator = emulator_factory(tables="submissions", rows=30000, rows_per_object=500)
    url = f"sqlite:///{tmp_path}/dap.db"
    context = multiprocessing.get_context("spawn")
    worker = context.Process(target=_replicate_in_process, args=(
        emulator.base_url, emulator.client_id, emulator.client_secret, url, "submissions"))
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _staging_rows(tmp_path / "dap.db"):
        time.sleep(0.05)
    assert worker.is_alive(), "the snapshot ended before it could be interrupted"
    os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
    worker.join(30)
    assert meta_rows(url) == {}  # the swap and its meta row never committed

    session = open_session(emulator)
    try:
        result = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST).replicate(
            "canvas", "submissions")
    finally:
        session.close()
    assert (result.snapshot, result.rows_written) == (True, 30000)
    assert_equals_truth(url, emulator, ["submissions"])


def _staging_rows(path: Path) -> int:
    """Rows committed so far into any staging table (0 while there is none)."""
    import sqlite3

    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = "
                                            "'table' AND name LIKE '%staging%'")]
        return sum(conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names)
