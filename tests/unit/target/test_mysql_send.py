"""execute_overlapped (dialects/mysql_send.py): statements run in order, one at a time; the first
error stops the sending and is raised on the caller's thread as itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from target_dap_sql.dialects.mysql_send import execute_overlapped


class DriverError(Exception):
    pass


def test_statements_run_in_order_one_at_a_time() -> None:
    done: list[str] = []
    running = threading.Lock()

    def execute(statement: str) -> None:
        assert running.acquire(blocking=False), "two statements in flight"
        time.sleep(0.01)
        done.append(statement)
        running.release()

    execute_overlapped(execute, (f"s{i}" for i in range(5)))
    assert done == [f"s{i}" for i in range(5)]


def test_a_failed_statement_stops_the_rest_and_raises_on_the_caller() -> None:
    done: list[str] = []
    written: list[str] = []

    def execute(statement: str) -> None:
        if statement == "s1":
            raise DriverError(1062, "duplicate")
        done.append(statement)

    def statements() -> Iterator[str]:
        for i in range(5):
            written.append(f"s{i}")
            yield f"s{i}"

    with pytest.raises(DriverError, match="duplicate"):
        execute_overlapped(execute, statements())
    assert done == ["s0"]
    assert len(written) <= 3  # s2 may be written while s1 runs, never sent


def test_a_writer_error_waits_for_the_statement_in_flight() -> None:
    finished = threading.Event()

    def execute(statement: str) -> None:
        time.sleep(0.05)
        finished.set()

    def statements() -> Iterator[str]:
        yield "s0"
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        execute_overlapped(execute, statements())
    assert finished.is_set()  # the caller rolls back only after the server has answered


def test_an_interrupted_caller_aborts_the_statement_in_flight_then_waits_for_it() -> None:
    """SIGTERM/Ctrl-C (SystemExit/KeyboardInterrupt on the caller) while a statement waits in
    the server: `abort` ends it (the socket is shut down), and the helper is done before the
    interruption is raised; an ordinary error waits for the statement without aborting it."""
    released = threading.Event()
    finished = threading.Event()

    def execute(statement: str) -> None:
        released.wait(5)  # a statement waiting for a row lock
        finished.set()

    def interrupted() -> Iterator[str]:
        yield "s0"
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        execute_overlapped(execute, interrupted(), released.set)
    assert time.monotonic() - started < 2
    assert finished.is_set()

    aborted: list[bool] = []
    released.clear()
    finished.clear()

    def bad_row() -> Iterator[str]:
        yield "s0"
        threading.Timer(0.1, released.set).start()
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        execute_overlapped(execute, bad_row(), lambda: aborted.append(True))
    assert finished.is_set() and not aborted
