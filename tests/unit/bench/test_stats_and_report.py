"""Medians, ratios to anchors, target checks and the markdown they produce."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.measure import ProcessStats
from bench.report import README_END, README_START, checks_table, scenario_table, update_readme
from bench.runner import RunRecord
from bench.scenarios import PARSE_PROBE, TAP_ALONE, Sizes, scenarios
from bench.stats import CHECKS, MB, OURS_PG, summarise

COPY_TARGET = "snapshot → PostgreSQL within 2× of raw COPY (wall-time rows/s)"
INITDB_TARGET = "snapshot → PostgreSQL ≥11× faster than dap initdb (wall-time rows/s)"
TP_TARGET = ("snapshot → PostgreSQL ≥30× faster than tap-dap | target-postgres (use_copy) "
             "(wall-time rows/s)")
TAP_TARGET = "tap alone ≥200k rows/s emitted (emission rate: rows ÷ first RECORD → EOF)"


def record(scenario: str, variant: str, kind: str, repeat: int, rows: int, seconds: float,
           window: tuple[float, float] | None = None, **rss_mb: float) -> RunRecord:
    processes = [ProcessStats(role, seconds, 1.0, 0.5, int(mb * MB), 0)
                 for role, mb in rss_mb.items()]
    return RunRecord(scenario, variant, kind, repeat, rows, seconds, processes,
                     *(window or (None, None)))


def sample() -> list[RunRecord]:
    return [
        # ours: 1M rows in 12, 10, 30 s -> median 12 s; tap RSS 80/90/200 -> median 90 MB
        record("snapshot-pg", OURS_PG, "ours", 0, 1_000_000, 12.0, tap=80, target=120),
        record("snapshot-pg", OURS_PG, "ours", 1, 1_000_000, 10.0, tap=90, target=130),
        record("snapshot-pg", OURS_PG, "ours", 2, 1_000_000, 30.0, tap=200, target=140),
        record("snapshot-pg", OURS_PG, "ours", -1, 1_000_000, 1.0, tap=1, target=1),  # setup
        record("snapshot-pg", "dap initdb", "anchor", 0, 1_000_000, 120.0, dap=367),
        record("snapshot-pg", "raw COPY FROM", "proxy", 0, 1_000_000, 5.0, copy=30),
        # target-postgres measured on fewer rows: compared by rows/s
        record("snapshot-pg", "tap-dap | target-postgres (use_copy)", "anchor", 0, 250_000,
               80.0, tap=60, target=177),
        record("memory-4x", OURS_PG, "ours", 0, 4_000_000, 48.0, tap=99, target=150),
        # tap alone: 1M rows in 9 s wall; rows flow from 2.5 s for 4, 5, 8 s -> median 5 s
        record("tap-alone", TAP_ALONE, "ours", 0, 1_000_000, 9.0, (2.5, 4.0), tap=80, counter=9),
        record("tap-alone", TAP_ALONE, "ours", 1, 1_000_000, 9.0, (2.5, 5.0), tap=80, counter=9),
        record("tap-alone", TAP_ALONE, "ours", 2, 1_000_000, 9.0, (2.5, 8.0), tap=80, counter=9),
        record("tap-alone", PARSE_PROBE, "proxy", 0, 1_000_000, 6.0, (2.0, 4.0), parse=20),
    ]


def test_summary_takes_medians_and_ignores_setup_runs() -> None:
    summaries = summarise(sample())
    ours = next(s for s in summaries if s.variant == OURS_PG and s.scenario == "snapshot-pg")
    assert ours.runs == 3
    assert ours.seconds == 12.0
    assert ours.rows_per_second == 1_000_000 / 12.0
    assert ours.peak_rss == {"tap": 90 * MB, "target": 130 * MB}
    assert ours.cpu_seconds == {"tap": 1.5, "target": 1.5}
    assert (ours.window_start, ours.window_seconds, ours.window_rows_per_second) == (None,) * 3
    tap = next(s for s in summaries if s.variant == TAP_ALONE)
    assert (tap.window_start, tap.window_seconds, tap.window_rows_per_second) == (
        2.5, 5.0, 200_000)
    assert tap.rows_per_second == 1_000_000 / 9.0  # the wall-time rate stays


def test_checks_compare_against_each_anchor() -> None:
    summaries = summarise(sample())
    measured = {check.target: check.measure(summaries) for check in CHECKS}
    assert measured[COPY_TARGET] == pytest.approx(12.0 / 5.0)
    assert measured[INITDB_TARGET] == pytest.approx(120.0 / 12.0)
    # 83.3k rows/s against 3.125k rows/s
    assert round(measured[TP_TARGET], 3) == round((1_000_000 / 12) / (250_000 / 80), 3)
    # the emission rate, not the wall-time rate (111k rows/s)
    assert measured[TAP_TARGET] == 1_000_000 / 5.0
    assert measured["tap peak RSS ≤100 MB"] == 90
    assert round(measured["target RSS at 4× rows ≤10% more"], 4) == round(150 / 130 - 1, 4)
    assert measured["changes ≥6× faster than dap syncdb"] is None  # not run


def test_checks_table_marks_results() -> None:
    table = "\n".join(checks_table(summarise(sample())))
    assert (f"| {COPY_TARGET} | 2.40× (83.3k vs 200.0k rows/s, 1,000,000 rows) "
            "| **not met** |") in table
    assert f"| {INITDB_TARGET} | 10.00× (83.3k vs 8.3k rows/s, 1,000,000 rows) |" in table
    assert (f"| {TAP_TARGET} | 200,000 rows/s (wall 111.1k; download + gunzip + orjson parse: "
            "250.0k first byte parsed → end) | met |") in table
    assert "| tap peak RSS ≤100 MB | 90 MB | met |" in table
    assert "| target RSS at 4× rows ≤10% more | +15.4% | **not met** |" in table
    assert "| changes ≥6× faster than dap syncdb | not run | — |" in table
    # pipes inside a cell are escaped, or the markdown table would gain a column
    assert (r"tap-dap \| target-postgres (use_copy) (wall-time rows/s) | 26.67× (83.3k "
            "rows/s on 1,000,000 rows vs 3.1k on 250,000) | **not met** |") in table


def test_readme_block_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold table\n{README_END}\noutro\n")
    machine = {"cpu": "Test CPU, 2 cores", "memory": "24 GiB", "postgresql": "15.1",
               "commit": "abc123"}
    update_readme(readme, "2026-01-01-1200.md", machine, summarise(sample()), [])
    text = readme.read_text()
    assert text.startswith(f"intro\n{README_START}\n")
    assert text.endswith(f"{README_END}\noutro\n")
    assert "old table" not in text
    assert "on Test CPU, 2 cores, 24 GiB RAM, PostgreSQL 15.1, commit abc123." in text
    assert "| tap peak RSS ≤100 MB | 90 MB | met |" in text


def test_tap_alone_table_shows_wall_and_streaming_rates_side_by_side() -> None:
    tap_alone = next(s for s in scenarios(Sizes.default()) if s.name == "tap-alone")
    lines = scenario_table(tap_alone, summarise(sample()))
    assert lines[2].startswith("| variant | kind | median time | rows | rows/s | "
                               "streaming rows/s (window) | vs ours |")
    assert lines[4] == (
        r"| tap-dap \| line counter | ours | 9.00 s | 1,000,000 | 111.1k | 200.0k (first RECORD "
        "→ EOF: 5.00 s, from 2.50 s) |  | tap 80 MB · counter 9 MB | tap 1.5 · counter 1.5 |  |")
    assert lines[5].startswith(
        "| download + gunzip + orjson parse | proxy | 6.00 s | 1,000,000 | 166.7k | 250.0k "
        "(first byte parsed → end: 4.00 s, from 2.00 s) | ours at 1.50× its time; "
        "streaming: ours at 1.25× its time | parse 20 MB |")


def test_tables_without_windows_keep_their_columns() -> None:
    snapshot = next(s for s in scenarios(Sizes.default()) if s.name == "snapshot-pg")
    lines = scenario_table(snapshot, summarise(sample()))
    assert "streaming" not in lines[2]
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in lines[2:5]]
    assert cells == [10, 10, 10]  # an escaped pipe in a variant name is no column
