"""The tap's retry budget, request/download deadlines and Retry-After cap, against the emulator.

Budgets and deadlines are shortened through the tap's settings so that each case takes seconds.
"""

from __future__ import annotations

import logging
import re
import time

import pytest

from tap_dap.errors import TapDapError
from tests.integration.test_tap_harness import (
    apply_records,
    flat_truth,
    run_cli,
    run_tap,
    tap_config,
    write_json,
)

ROWS = 30


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _assert_complete(run, emu) -> None:  # type: ignore[no-untyped-def]
    assert run.error is None
    rows: dict = {}
    apply_records(rows, run.records("canvas-users"), ["id"])
    assert rows == flat_truth(emu, "canvas", "users")
    assert len(run.records("canvas-users")) == ROWS


@pytest.fixture(name="emu")
def emu_fixture(emulator_factory):  # type: ignore[no-untyped-def]
    return emulator_factory(tables="canvas.users", rows=ROWS, rows_per_object=ROWS)


def test_three_500s_on_login_table_listing_and_job_creation_are_recovered(emu, caplog) -> None:
    emu.faults([
        {"endpoint": "auth", "kind": "500", "count": 3},  # backoff with jitter: ~4-7 s
        # the server's Retry-After: 0 keeps the other two quick
        {"endpoint": "tables", "kind": "500", "count": 3, "retry_after": 0},
        {"endpoint": "query", "kind": "500", "count": 3, "retry_after": 0},
    ])  # fmt: skip
    caplog.set_level(logging.WARNING)
    run = run_tap(tap_config(emu, tables=["users"]))
    _assert_complete(run, emu)
    faulted = {e: c["faulted"] for e, c in emu.requests().items() if c["faulted"]}
    assert faulted == {"auth": 3, "tables": 3, "query": 3}
    retries = [m for m in _warnings(caplog) if "injected 500" in m]
    assert len(retries) == 9, retries
    login = [m for m in retries if m.startswith("DAP login")]
    assert [re.sub(r"\d+\.\d s of", "_ of", m.split("; ")[-1]) for m in login] == [
        f"retrying in {m.split('retrying in ')[1].split(' s ')[0]} s (attempt {n}, _ of the 300 s "
        "retry budget spent)" for n, m in zip((2, 3, 4), login, strict=True)]
    assert _errors(caplog) == []


def test_500_forever_fails_once_the_budget_is_spent(emu, tmp_path) -> None:
    emu.faults([{"endpoint": "tables", "kind": "500", "count": 1000}])
    config = write_json(tmp_path / "c.json", tap_config(emu, retry_budget_seconds=2))
    started = time.monotonic()
    result = run_cli("--config", config)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    final = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"tap-dap: error: listing tables of namespace 'canvas': injected 500 \[type="
        r"ProcessingError, uuid=\S+, HTTP 500\] \(gave up after \d attempts in 2\.\d s: the "
        r"retry budget of 2 s is spent\)", final), result.stderr
    retries = [line for line in result.stderr.splitlines() if "| WARNING" in line]
    assert retries and all("of the 2 s retry budget spent)" in line for line in retries)
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert elapsed < 2 + 8  # the budget plus the interpreter's start-up


def test_a_byte_drip_object_hits_its_deadline_and_is_downloaded_again(emu, caplog) -> None:
    emu.faults([{"endpoint": "object", "kind": "drip", "count": 1, "interval": 0.2}])
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    run = run_tap(tap_config(emu, object_download_timeout_seconds=1))
    _assert_complete(run, emu)
    assert time.monotonic() - started < 10
    hits = [m for m in _warnings(caplog) if "object_download_timeout_seconds" in m]
    assert len(hits) == 1, _warnings(caplog)
    assert re.search(r"object \S+: download not complete within 1 s "
                     r"\(object_download_timeout_seconds; \d+ bytes received\); retrying in ",
                     hits[0]), hits[0]
    assert _errors(caplog) == []


def test_a_byte_drip_object_forever_fails_once_the_budget_is_spent(emu, caplog) -> None:
    emu.faults([{"endpoint": "object", "kind": "drip", "count": 100, "interval": 0.2}])
    started = time.monotonic()
    run = run_tap(tap_config(emu, object_download_timeout_seconds=0.5, retry_budget_seconds=2))
    assert isinstance(run.error, TapDapError)
    assert "download not complete within 0.5 s (object_download_timeout_seconds" in str(
        run.error)
    assert "the retry budget of 2 s is spent" in str(run.error)
    assert time.monotonic() - started < 15
    assert run.of_type("RECORD") == []


def test_a_byte_drip_api_answer_hits_the_request_deadline_and_is_retried(emu, caplog) -> None:
    emu.faults([{"endpoint": "tables", "kind": "drip", "count": 1, "interval": 0.2}])
    caplog.set_level(logging.WARNING)
    run = run_tap(tap_config(emu, tables=["users"], request_timeout_seconds=1))
    _assert_complete(run, emu)
    hits = [m for m in _warnings(caplog) if "request_timeout_seconds" in m]
    assert len(hits) == 1 and hits[0].startswith(
        "listing tables of namespace 'canvas': the answer from 127.0.0.1:"), hits
    assert "was not complete within 1 s (request_timeout_seconds); retrying in " in hits[0]


def test_a_retry_after_above_the_cap_is_logged_and_cut(emu, caplog) -> None:
    emu.faults([
        {"endpoint": "tables", "kind": "503", "count": 1, "retry_after": 3600},
        {"endpoint": "schema", "kind": "503", "count": 1, "retry_after": 1},
        {"endpoint": "query", "kind": "429", "count": 1, "retry_after": 3600},
    ])  # fmt: skip
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    run = run_tap(tap_config(emu, tables=["users"], max_retry_after_seconds=1))
    _assert_complete(run, emu)
    assert time.monotonic() - started < 15
    warnings = _warnings(caplog)
    assert any(m.startswith("listing tables of namespace 'canvas': injected 503")
               and "; the server asked to wait 3600 s (Retry-After), more than "
               "max_retry_after_seconds allows: waiting 1 s before retrying (attempt 2, " in m
               for m in warnings), warnings
    assert any("; waiting 1 s as the server asked (Retry-After) before retrying (attempt 2, " in m
               for m in warnings), warnings
    assert any(m.startswith("DAP rate limit hit while creating jobs: pausing 1 s (the server "
                            "asked for 3600 s with Retry-After, more than "
                            "max_retry_after_seconds allows)") for m in warnings), warnings
    assert _errors(caplog) == []


@pytest.mark.parametrize("faults", [
    [{"endpoint": "object", "kind": "500", "count": 1000}],
    [{"endpoint": "object", "kind": "reset", "count": 1000}],
    [{"endpoint": "object", "kind": "truncate", "count": 1000}],
    [{"endpoint": "auth", "kind": "500", "count": 1000}],
    [{"endpoint": "tables", "kind": "503", "count": 1000, "retry_after": 0}],
], ids=["object-500", "object-reset", "object-truncate", "login-500", "tables-503"])
def test_retry_warnings_and_the_budget_error_carry_no_secret(emu, tmp_path, faults) -> None:
    emu.faults(faults)
    config = write_json(tmp_path / "c.json", tap_config(
        emu, retry_budget_seconds=1.5, object_download_timeout_seconds=1))
    result = run_cli("--config", config)
    assert result.returncode == 1
    assert "retry budget of 1.5 s is spent" in result.stderr.strip().splitlines()[-1], result.stderr
    assert "| WARNING" in result.stderr  # the retries were logged …
    leaks = [s for s in (emu.client_secret, "X-Amz-Signature=", "eyJ")
             if s in result.stderr or s in result.stdout]
    assert leaks == []  # … without the secret, a JWT or a pre-signed URL's signature
