"""The README's per-row-shape table: cells from one run, replaced only when every cell ran."""

from __future__ import annotations

from pathlib import Path

from bench import shapes
from bench.stats import CHECKS, OURS_PG, summarise
from tests.unit.bench.test_stats_and_report import record, sample

README = f"intro\n{shapes.START}\nold table\n{shapes.END}\nrest\n"


def every_cell() -> list:
    """Records for every scenario the table names (the anchor 6x slower than ours)."""
    runs = {}
    for check in CHECKS:
        if not check.compare:
            continue
        anchor = (check.other_scenario or check.scenario, check.other)
        runs.setdefault(anchor, record(*anchor, "anchor", 0, 100_000, 12.0, target=99))
        ours = (check.scenario, check.variant)
        runs[ours] = record(*ours, "ours", 0, 100_000, 2.0, target=99)
    return list(runs.values())


def test_cell_shows_the_ratio_and_both_times() -> None:
    lines, missing = shapes.table(summarise(sample()))
    initdb = next(line for line in lines if line.startswith("| snapshot → PostgreSQL vs `dap"))
    # 1M rows in 12 s against 120 s: 10×, below the 11× goal; narrow rows were not run
    assert initdb == ("| snapshot → PostgreSQL vs `dap initdb` | 10.00×, not met (12.0 s vs "
                      "120.0 s, 1,000,000 rows) | not run | ≥11× |")
    copy = next(line for line in lines if "raw `COPY FROM`" in line)
    assert "| 2.40× the time, not met (12.0 s vs 5.00 s, 1,000,000 rows) |" in copy
    tp = next(line for line in lines if "target-postgres" in line)
    assert "| 26.67×, not met (83,333 vs 3,125 rows/s, 1,000,000 rows) | — | ≥30× |" in tp
    assert "snapshot → PostgreSQL vs `dap initdb` (submissions-shaped rows (~480 B))" in missing


def test_readme_is_left_alone_by_a_partial_run(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    missing = shapes.update_readme(readme, "x.md", summarise(sample()))
    assert missing and readme.read_text() == README


def test_readme_takes_a_complete_run(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    summaries = summarise(every_cell())
    assert shapes.update_readme(readme, "2026-12-04-1500.md", summaries) == []
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "old table" not in text
    assert "[`bench/results/2026-12-04-1500.md`](bench/results/2026-12-04-1500.md)" in text
    syncdb = next(line for line in text.splitlines() if "MariaDB" in line)
    assert syncdb.count("6.00× (2.00 s vs 12.0 s, 100,000 rows)") == 2
    assert "not run" not in text and OURS_PG.replace("|", "\\|") in text
