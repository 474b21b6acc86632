"""Server faults that a long-running replication must survive, and the ones it must report."""

from __future__ import annotations

from tap_dap.errors import StreamsFailedError
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


def test_failed_jobs_are_recreated(emulator) -> None:
    emulator.faults([{"endpoint": "query", "kind": "failed", "count": 2}])
    run = run_tap(tap_config(emulator, tables=["accounts"]))
    assert run.error is None
    assert len(run.records("canvas-accounts")) == 20
    assert emulator.requests()["query"] == {"total": 3, "throttled": 0, "faulted": 2}


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
