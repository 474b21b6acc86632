"""Server faults that a long-running replication must survive, and the ones it must report."""

from __future__ import annotations

import logging
import time

from tap_dap.client import Credentials, DAPClient
from tap_dap.errors import StreamsFailedError
from tap_dap.jobs import JobScheduler, TableRequest
from tests.integration.test_tap_harness import apply_records, flat_truth, run_tap, tap_config


def test_rate_limits_server_errors_and_expired_urls_are_survived(emulator_factory) -> None:
    emu = emulator_factory(
        tables="canvas.accounts,canvas.users", rows=40, rows_per_object=15, job_latency=0.3
    )
    emu.faults([
        {"endpoint": "query", "kind": "429", "count": 2, "retry_after": 1},
        {"endpoint": "job", "kind": "500", "count": 2},
        {"endpoint": "object_url", "kind": "503", "count": 1},
        {"endpoint": "object", "kind": "expired", "count": 2},
        {"endpoint": "object", "kind": "504", "count": 1},
    ])  # fmt: skip
    run = run_tap(tap_config(emu, namespaces=["canvas"]))
    assert run.error is None
    for table in ("accounts", "users"):
        rows: dict = {}
        apply_records(rows, run.records(f"canvas-{table}"), ["id"])
        assert rows == flat_truth(emu, "canvas", table)
        assert len(run.records(f"canvas-{table}")) == 40  # no duplicates from retries
    counters = emu.requests()
    faulted = {endpoint: counts["faulted"] for endpoint, counts in counters.items()}
    assert faulted == {"auth": 0, "tables": 0, "schema": 0, "query": 2, "job": 2,
                       "object_url": 1, "object": 3}  # fmt: skip
    assert set(run.final_state["bookmarks"]) == {"canvas-accounts", "canvas-users"}


def test_a_download_broken_midway_resumes_without_duplicates(emulator_factory) -> None:
    emu = emulator_factory(tables="canvas.users", rows=60, rows_per_object=60)
    emu.faults([{"endpoint": "object", "kind": "truncate", "count": 2}])
    run = run_tap(tap_config(emu))
    assert run.error is None
    records = run.records("canvas-users")
    assert [r["id"] for r in records] == sorted({r["id"] for r in records})
    assert len(records) == 60


def test_an_object_broken_after_lines_were_written_is_read_again_and_resumed(
    emulator_factory, caplog
) -> None:
    # One object several times larger than a download chunk, so that the breaks come after the
    # client has handed out lines (a break before the first line the client retries itself).
    rows = 12_000
    emu = emulator_factory(tables="canvas.users", rows=rows, rows_per_object=rows)
    emu.faults([
        {"endpoint": "object", "kind": "truncate", "count": 1},
        {"endpoint": "object", "kind": "reset", "count": 1},
        {"endpoint": "object", "kind": "truncate", "count": 1},
    ])  # fmt: skip
    caplog.set_level(logging.WARNING, logger="tap-dap.prefetch")
    run = run_tap(tap_config(emu))
    assert run.error is None
    records = run.records("canvas-users")
    assert len(records) == rows and len({r["id"] for r in records}) == rows
    table: dict = {}
    apply_records(table, records, ["id"])
    assert table == flat_truth(emu, "canvas", "users")
    assert emu.requests()["object"] == {"total": 4, "throttled": 0, "faulted": 3}
    restarts = [r.getMessage() for r in caplog.records if "download broke after" in r.getMessage()]
    assert len(restarts) == 2
    assert all(" bytes of data " in m for m in restarts), restarts  # restarts skip by bytes
    delivered = [int(m.split("download broke after ")[1].split(" ")[0]) for m in restarts]
    assert 0 < delivered[0] <= delivered[1]  # both breaks came after data was handed out


def test_job_creation_429_is_handled_by_the_scheduler_not_slept_in_the_client(
    emulator_factory,
) -> None:
    emu = emulator_factory(tables="canvas.accounts,canvas.users,canvas.courses")
    emu.faults([{"endpoint": "query", "kind": "429", "count": 2, "retry_after": 1}])
    credentials = Credentials.create(client_id=emu.client_id, client_secret=emu.client_secret)
    requests = [TableRequest(f"canvas-{t}", "canvas", t, None)
                for t in ("accounts", "users", "courses")]  # fmt: skip
    with DAPClient(emu.base_url, credentials) as session:
        jobs = JobScheduler(
            session, requests, max_concurrent_jobs=10, max_jobs_per_minute=None,
            poll_interval=0.05, job_timeout=60, resnapshot_on_refusal=True,
        )  # fmt: skip
        started = time.monotonic()
        jobs.start()
        ready = [jobs.result(r.stream_name) for r in requests]
        elapsed = time.monotonic() - started
        jobs.close()
    assert [r.request.table for r in ready] == ["accounts", "users", "courses"]
    # each 429 reached the scheduler: one request each, no retries hidden in the client ...
    assert emu.requests()["query"] == {"total": 5, "throttled": 0, "faulted": 2}
    # ... which paused for Retry-After twice and capped its rate at DAP's published 5/min for now
    assert jobs.rate.cap(time.monotonic()) == 5
    # the refused attempts did not use up that cap: the other tables did not wait for a window
    assert 2.0 <= elapsed < 15.0


def test_failed_jobs_are_recreated(emulator, caplog) -> None:
    emulator.faults([{"endpoint": "query", "kind": "failed", "count": 2}])
    caplog.set_level(logging.WARNING)
    run = run_tap(tap_config(emulator, tables=["accounts"]))
    assert run.error is None
    assert len(run.records("canvas-accounts")) == 20
    assert emulator.requests()["query"] == {"total": 3, "throttled": 0, "faulted": 2}
    # recovered: WARNINGs only (ERROR is for what failed)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert sum("failed" in r.getMessage() for r in caplog.records) >= 2


def test_jobs_that_keep_failing_fail_the_stream_with_type_and_uuid(emulator, caplog) -> None:
    emulator.faults([{"endpoint": "query", "kind": "failed", "count": 10}])
    run = run_tap(tap_config(emulator, tables=["accounts"]))
    assert isinstance(run.error, StreamsFailedError)
    failure = run.error.failures[0]
    assert failure.stream == "canvas-accounts"
    assert failure.job_id and failure.error_type and failure.error_uuid
    assert f"(job {failure.job_id}, type {failure.error_type}, uuid {failure.error_uuid})" in str(
        failure
    )
    assert run.of_type("RECORD") == [] and run.of_type("STATE") == []
