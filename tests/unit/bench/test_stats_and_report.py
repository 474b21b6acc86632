"""Medians, ratios to anchors, target checks and the markdown they produce."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.measure import ProcessStats
from bench.report import README_END, README_START, checks_table, update_readme
from bench.runner import RunRecord
from bench.stats import CHECKS, MB, OURS_PG, summarise


def record(scenario: str, variant: str, kind: str, repeat: int, rows: int, seconds: float,
           **rss_mb: float) -> RunRecord:
    processes = [ProcessStats(role, seconds, 1.0, 0.5, int(mb * MB), 0)
                 for role, mb in rss_mb.items()]
    return RunRecord(scenario, variant, kind, repeat, rows, seconds, processes)


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
    ]


def test_summary_takes_medians_and_ignores_setup_runs() -> None:
    ours = next(s for s in summarise(sample()) if s.variant == OURS_PG
                and s.scenario == "snapshot-pg")
    assert ours.runs == 3
    assert ours.seconds == 12.0
    assert ours.rows_per_second == 1_000_000 / 12.0
    assert ours.peak_rss == {"tap": 90 * MB, "target": 130 * MB}
    assert ours.cpu_seconds == {"tap": 1.5, "target": 1.5}


def test_checks_compare_against_each_anchor() -> None:
    summaries = summarise(sample())
    measured = {check.target: check.measure(summaries) for check in CHECKS}
    assert measured["snapshot within 2× of raw COPY"] == pytest.approx(12.0 / 5.0)
    assert measured["snapshot ≥11× faster than dap initdb"] == pytest.approx(120.0 / 12.0)
    # 83.3k rows/s against 3.125k rows/s
    assert round(measured["snapshot ≥30× faster than tap-dap | target-postgres (use_copy)"],
                 3) == round((1_000_000 / 12) / (250_000 / 80), 3)
    assert measured["tap peak RSS ≤100 MB"] == 90
    assert round(measured["target RSS at 4× rows ≤10% more"], 4) == round(150 / 130 - 1, 4)
    assert measured["changes ≥6× faster than dap syncdb"] is None  # not run


def test_checks_table_marks_results() -> None:
    table = "\n".join(checks_table(summarise(sample())))
    assert "| snapshot within 2× of raw COPY | 2.40× | **not met** |" in table
    assert "| snapshot ≥11× faster than dap initdb | 10.00× | **not met** |" in table
    assert "| tap peak RSS ≤100 MB | 90 MB | met |" in table
    assert "| target RSS at 4× rows ≤10% more | +15.4% | **not met** |" in table
    assert "| changes ≥6× faster than dap syncdb | not run | — |" in table
    # pipes inside a cell are escaped, or the markdown table would gain a column
    assert r"tap-dap \| target-postgres (use_copy) | 26.67× |" in table


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
