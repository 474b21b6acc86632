"""BackgroundJob: one job in flight, jobs in order, errors raised on the caller's thread."""

from __future__ import annotations

import threading

import pytest

from target_dap_sql.dialects.background import BackgroundJob
from target_dap_sql.errors import DatabaseError


def test_jobs_run_one_at_a_time_in_order_off_the_caller_thread() -> None:
    job = BackgroundJob("test-load")
    release_first = threading.Event()
    log: list[tuple[str, str]] = []

    def first() -> None:
        release_first.wait(5)
        log.append(("first", threading.current_thread().name))

    def second() -> None:
        log.append(("second", threading.current_thread().name))

    job.start(first)
    assert job.busy and log == []  # start() returned while the first job still waits
    threading.Timer(0.05, release_first.set).start()
    job.start(second)  # waits for the first job before starting
    job.settle()
    assert log == [("first", "test-load"), ("second", "test-load")]
    assert not job.busy


def test_error_of_a_job_is_raised_by_the_next_settle_once() -> None:
    job = BackgroundJob("test-load")

    def fail() -> None:
        raise DatabaseError("loading stream 's': disk full")

    job.start(fail)
    with pytest.raises(DatabaseError, match="^loading stream 's': disk full$"):
        job.settle()
    job.settle()  # reported once; the job is done


def test_error_is_raised_before_the_next_job_starts() -> None:
    job = BackgroundJob("test-load")
    ran: list[str] = []
    job.start(lambda: (_ for _ in ()).throw(DatabaseError("first failed")))
    with pytest.raises(DatabaseError, match="first failed"):
        job.start(lambda: ran.append("second"))
    job.settle()
    assert ran == []


def test_a_job_cannot_wait_for_itself() -> None:
    job = BackgroundJob("test-load")
    job.start(job.settle)
    with pytest.raises(RuntimeError, match="test-load: a background job cannot wait for itself"):
        job.settle()


def test_a_settle_interrupted_by_a_signal_leaves_the_job_to_wait_for() -> None:
    """Ctrl-C in `settle` (KeyboardInterrupt from a signal handler): the job is still running,
    and the next `settle` (the dialect's close, before it rolls back on the connection) waits
    for it. On Python 3.11 an interrupted Thread.join marks the running thread as stopped."""
    import signal
    import time

    job = BackgroundJob("test-load")
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.6)
        finished.set()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        job.start(slow)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            job.settle()
        assert not finished.is_set()
        job.settle()
        assert finished.is_set()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
