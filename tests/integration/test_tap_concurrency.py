"""Jobs of all selected tables overlap: N tables with job latency L take well under N x L."""

from __future__ import annotations

import time

from tests.integration.test_tap_harness import run_tap, tap_config

TABLES = ["accounts", "users", "courses", "enrollments", "assignments", "submissions"]
LATENCY = 1.5


def test_jobs_of_all_tables_run_concurrently(emulator_factory) -> None:
    emu = emulator_factory(
        tables=",".join(f"canvas.{t}" for t in TABLES), rows=10, job_latency=LATENCY
    )
    config = tap_config(emu, tables=TABLES, poll_interval=0.1)
    started = time.monotonic()
    run = run_tap(config)
    elapsed = time.monotonic() - started
    assert run.error is None
    assert sorted(run.final_state["bookmarks"]) == sorted(f"canvas-{t}" for t in TABLES)
    # one table after the other needs >= 9 s; overlapping jobs ~1.5 s plus polling and overheads
    ratio = elapsed / (len(TABLES) * LATENCY)
    assert ratio < 0.6, f"{elapsed:.1f} s for {len(TABLES)} tables of {LATENCY} s latency"
    # output stays contiguous per stream, in stream-name order
    order = [m["stream"] for m in run.messages if m["type"] == "SCHEMA"]
    assert order == sorted(f"canvas-{t}" for t in TABLES)


def test_max_concurrent_jobs_bounds_the_overlap(emulator_factory) -> None:
    emu = emulator_factory(
        tables=",".join(f"canvas.{t}" for t in TABLES[:4]), rows=5, job_latency=LATENCY
    )
    config = tap_config(emu, tables=TABLES[:4], poll_interval=0.1, max_concurrent_jobs=2)
    started = time.monotonic()
    run = run_tap(config)
    elapsed = time.monotonic() - started
    assert run.error is None
    assert elapsed >= 2 * LATENCY  # two waves of two jobs
    assert len(run.final_state["bookmarks"]) == 4
