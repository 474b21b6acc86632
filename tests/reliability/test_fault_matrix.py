"""Issue 9.1: every server fault, end to end through `tap-dap | target-dap-sql`, then the truth.

Each case asserts which of the two allowed outcomes holds: the run recovers (database == truth),
or it fails cleanly (one error line, non-zero exit, database == last committed state) and the next
run recovers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixture import RunningEmulator
from tests.reliability.outcomes import assert_failed_cleanly, assert_recovered, dump
from tests.reliability.pipeline import Workdir
from tests.reliability.proxy import FaultProxy, Rule, html_gateway_timeout

TABLES = [("canvas", "accounts"), ("canvas", "users")]
SERVE = {"tables": "accounts,users", "rows": 20, "rows_per_object": 8, "seed": 11}

# name -> faults injected before the snapshot run (each must be hit, and survived)
RECOVERED: dict[str, list[dict[str, Any]]] = {
    "429-storm-with-retry-after": [
        {"endpoint": "tables", "kind": "429", "count": 2, "retry_after": 1},
        # two: each 429 on job creation pauses for Retry-After and lowers the tap's job rate
        {"endpoint": "query", "kind": "429", "count": 2, "retry_after": 1},
        {"endpoint": "job", "kind": "429", "count": 3, "retry_after": 1},
        {"endpoint": "object_url", "kind": "429", "count": 3, "retry_after": 1},
    ],
    "500-and-503": [
        {"endpoint": "schema", "kind": "503", "count": 2, "retry_after": 0},
        {"endpoint": "job", "kind": "500", "count": 3, "retry_after": 0},
        {"endpoint": "object_url", "kind": "500", "count": 2, "retry_after": 0},
        {"endpoint": "object", "kind": "503", "count": 2, "retry_after": 0},
    ],
    "connection-reset-mid-object": [
        {"endpoint": "object", "kind": "truncate", "count": 2},  # half the body, then closed
        {"endpoint": "object", "kind": "reset", "count": 1},
    ],
    "expired-presigned-url": [
        {"endpoint": "object_url", "kind": "expired", "count": 1},
        {"endpoint": "object", "kind": "expired", "count": 2},
    ],
    "processing-error-with-empty-message": [{"endpoint": "job", "kind": "processing", "count": 2}],
    "token-rejected-as-expired": [{"endpoint": "query", "kind": "expired", "count": 1}],
}


KNOWN_DEFECTS: dict[str, str] = {}


@pytest.mark.parametrize("case", [
    pytest.param(name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[name])]
                 if name in KNOWN_DEFECTS else []) for name in sorted(RECOVERED)])
def test_fault_is_survived(case: str, emulator_factory: Callable[..., RunningEmulator],
                           db_url: str, tmp_path: Path) -> None:
    emu = emulator_factory(**SERVE, job_latency=0.2)  # so that job status is polled
    emu.faults(RECOVERED[case])
    workdir = Workdir(tmp_path / "job", emu, db_url)
    run = workdir.run()
    assert_recovered(workdir, run, TABLES)
    expected = {}
    for fault in RECOVERED[case]:
        expected[fault["endpoint"]] = expected.get(fault["endpoint"], 0) + fault["count"]
    faulted = {e: c["faulted"] for e, c in emu.requests().items() if c["faulted"]}
    assert faulted == expected  # every injected fault was really hit, and survived
    if case.startswith("processing"):
        assert "ProcessingError" in run.tap_stderr  # docs/dap-wire.md: always log the type


def test_gateway_timeout_with_html_body_is_survived(
        emulator_factory: Callable[..., RunningEmulator], db_url: str, tmp_path: Path) -> None:
    emu = emulator_factory(**SERVE, job_latency=0.2)
    proxy = FaultProxy(emu.base_url)
    try:
        for path in (r"^/dap/job/", r"^/dap/query/", r"^/objects/"):
            proxy.add(Rule(path, html_gateway_timeout, count=2))
        workdir = Workdir(tmp_path / "job", emu, db_url, base_url=proxy.base_url)
        run = workdir.run()
        assert proxy.pending() == 0
    finally:
        proxy.stop()
    assert_recovered(workdir, run, TABLES)
    assert "HTTP 504: the API gateway timed out" in run.tap_stderr


def test_truncated_gzip_object_is_read_again(
        emulator_factory: Callable[..., RunningEmulator], db_url: str, tmp_path: Path) -> None:
    """A complete HTTP answer whose gzip stream stops early (Content-Length agrees)."""
    emu = emulator_factory(**SERVE)
    proxy = FaultProxy(emu.base_url)

    def cut(status: int, headers: dict[str, str], body: bytes
            ) -> tuple[int, dict[str, str], bytes]:
        return status, headers, body[: len(body) // 2]
    try:
        proxy.add(Rule(r"^/objects/", cut, count=2))
        workdir = Workdir(tmp_path / "job", emu, db_url, base_url=proxy.base_url)
        run = workdir.run()
        assert proxy.pending() == 0
    finally:
        proxy.stop()
    assert_recovered(workdir, run, TABLES)


def test_token_expiring_mid_run_is_renewed(
        emulator_factory: Callable[..., RunningEmulator], db_url: str, tmp_path: Path) -> None:
    emu = emulator_factory(**{**SERVE, "token_ttl": 1, "job_latency": 1.5})
    workdir = Workdir(tmp_path / "job", emu, db_url)
    run = workdir.run()
    assert_recovered(workdir, run, TABLES)
    assert emu.requests()["auth"]["total"] >= 2  # the token did expire and was renewed


def snapshot_then_advance(emu: RunningEmulator, workdir: Workdir) -> dict[str, Any]:
    """A committed snapshot, then server-side changes; returns the committed database."""
    first = workdir.run()
    assert_recovered(workdir, first, TABLES)
    for _, table in TABLES:
        emu.advance("canvas", table, inserts=3, updates=2, deletes=2)
    return dump(workdir.db_url)


def test_snapshot_required_after_reload_resnapshots(
        emulator_factory: Callable[..., RunningEmulator], db_url: str, tmp_path: Path) -> None:
    emu = emulator_factory(**SERVE)
    workdir = Workdir(tmp_path / "job", emu, db_url)
    snapshot_then_advance(emu, workdir)
    emu.reload("canvas", "users")
    emu.advance("canvas", "users", inserts=2, deletes=1)
    run = workdir.run()
    assert_recovered(workdir, run, TABLES)
    assert "SnapshotRequired" in run.tap_stderr


def test_snapshot_required_with_fail_setting_fails_cleanly_then_recovers(
        emulator_factory: Callable[..., RunningEmulator], db_url: str, tmp_path: Path) -> None:
    emu = emulator_factory(**SERVE)
    workdir = Workdir(tmp_path / "job", emu, db_url, tables=["users"])
    first = workdir.run()
    assert_recovered(workdir, first, [("canvas", "users")])
    emu.advance("canvas", "users", inserts=3, deletes=1)
    before = dump(db_url)
    emu.reload("canvas", "users")
    workdir.tap_config["on_snapshot_required"] = "fail"
    failed = workdir.run()
    assert_failed_cleanly(failed, before, db_url, "canvas-users")
    workdir.tap_config["on_snapshot_required"] = "resnapshot"
    assert_recovered(workdir, workdir.run(), [("canvas", "users")])


PERMANENT: dict[str, tuple[list[dict[str, Any]], str]] = {
    "500-never-ending": ([{"endpoint": "query", "kind": "500", "count": 1000,
                           "retry_after": 0}], "500"),
    "account-disabled-403": ([{"endpoint": "query", "kind": "403", "count": 1000}],
                             "AccountDisabled"),
    "failed-job-every-time": ([{"endpoint": "query", "kind": "failed", "count": 1000}],
                              "failed"),
}


@pytest.mark.parametrize("case", sorted(PERMANENT))
def test_permanent_fault_fails_cleanly_and_the_rerun_recovers(
        case: str, emulator_factory: Callable[..., RunningEmulator], db_url: str,
        tmp_path: Path) -> None:
    emu = emulator_factory(**SERVE)
    workdir = Workdir(tmp_path / "job", emu, db_url)
    before = snapshot_then_advance(emu, workdir)
    state_before = workdir.state()
    faults, mention = PERMANENT[case]
    emu.faults(faults)
    workdir.tap_config["retry_budget_seconds"] = 2  # retries end by time, not by attempts
    failed = workdir.run()
    assert_failed_cleanly(failed, before, db_url, mention)
    assert workdir.state() == state_before
    emu.clear_faults()
    assert_recovered(workdir, workdir.run(), TABLES)


def test_a_failed_job_once_is_retried(
        emulator_factory: Callable[..., RunningEmulator], db_url: str, tmp_path: Path) -> None:
    emu = emulator_factory(**SERVE)
    emu.faults([{"endpoint": "query", "kind": "failed", "count": 1}])
    workdir = Workdir(tmp_path / "job", emu, db_url)
    assert_recovered(workdir, workdir.run(), TABLES)
    assert emu.requests()["query"]["faulted"] == 1


def test_out_of_range_on_canvas_logs_resnapshots_by_merging(
        emulator_factory: Callable[..., RunningEmulator], db_url: str, tmp_path: Path) -> None:
    emu = emulator_factory(tables="canvas_logs.web_logs", rows=20, rows_per_object=8, seed=5)
    workdir = Workdir(tmp_path / "job", emu, db_url, namespaces=["canvas_logs"])
    table = [("canvas_logs", "web_logs")]
    assert_recovered(workdir, workdir.run(), table)
    emu.advance("canvas_logs", "web_logs", inserts=4)
    too_old = (datetime.now(UTC) - timedelta(days=45)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    state = workdir.state()
    state["bookmarks"]["canvas_logs-web_logs"]["timestamp"] = too_old
    workdir.state_path.write_text(json.dumps(state))
    run = workdir.run()
    assert_recovered(workdir, run, table)
    assert "OutOfRange" in run.tap_stderr


def _empty_body(status: int, headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, str], bytes]:
    return status, {k: v for k, v in headers.items() if k.lower() != "content-length"}, b""


@pytest.mark.parametrize("count", [2, 1000])
def test_empty_object_is_read_again_or_fails_without_moving_the_bookmark(
        count: int, emulator_factory: Callable[..., RunningEmulator], db_url: str,
        tmp_path: Path) -> None:
    """HTTP 200 with 0 bytes: never "no rows" (that would lose the object's rows for good)."""
    emu = emulator_factory(**SERVE)
    workdir = Workdir(tmp_path / "job", emu, db_url)
    before = snapshot_then_advance(emu, workdir)
    state_before = workdir.state()
    proxy = FaultProxy(emu.base_url)
    try:
        proxy.add(Rule(r"^/objects/", _empty_body, count=count))
        workdir.tap_config["base_url"] = proxy.base_url
        workdir.tap_config["retry_budget_seconds"] = 3  # retries end by time, not attempts
        run = workdir.run()
    finally:
        proxy.stop()
    if count == 2:
        assert_recovered(workdir, run, TABLES)
        return
    assert_failed_cleanly(run, before, db_url, "the object is empty (0 bytes")
    assert workdir.state() == state_before
    workdir.tap_config["base_url"] = emu.base_url
    assert_recovered(workdir, workdir.run(), TABLES)
