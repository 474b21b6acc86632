"""The README's results table: each comparison against an anchor, one column per row shape.

A cell holds what one run measured: the ratio, and the two wall times (or rates) it came from.
README.md's table is replaced only by a run that measured every cell, so that it never mixes
runs (a partial run still writes its own report under bench/results/).
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.stats import CHECKS, Check, Summary, find

START = "<!-- bench:shapes:start -->"
END = "<!-- bench:shapes:end -->"
SHAPES = (("wide", "emulator rows (~1.2 KB)"), ("narrow", "submissions-shaped rows (~480 B)"))


def _goal(check: Check) -> str:
    if check.metric == "speedup":
        return f"≥{check.limit:g}×"
    return f"≤{check.limit:g}× the time"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def cell(check: Check, summaries: list[Summary]) -> str | None:
    """``"10.6× (12.2 s vs 129.8 s)"``; None when the run did not measure it."""
    value = check.measure(summaries)
    ours = find(summaries, check.scenario, check.variant)
    other = find(summaries, check.other_scenario or check.scenario, check.other)
    if value is None or ours is None or other is None:
        return None
    if ours.rows == other.rows:
        basis = f"{_seconds(ours.seconds)} vs {_seconds(other.seconds)}"
    else:  # another row count (target-postgres): rates compare, times would not
        basis = f"{ours.rows_per_second:,.0f} vs {other.rows_per_second:,.0f} rows/s"
    shown = f"{value:.2f}×" + (" the time" if check.metric == "slowdown" else "")
    verdict = "" if check.passed(value) else ", not met"
    return f"{shown}{verdict} ({basis}, {ours.rows:,} rows)"


def table(summaries: list[Summary]) -> tuple[list[str], list[str]]:
    """(markdown lines, the comparisons the run did not measure)."""
    rows: dict[str, dict[str, Check]] = {}
    for check in CHECKS:
        if check.compare:
            rows.setdefault(check.compare, {})[check.shape] = check
    lines = ["| tap-dap \\| target-dap-sql | " + " | ".join(title for _, title in SHAPES)
             + " | goal |", "|---" * (len(SHAPES) + 2) + "|"]
    missing = []
    for compare, by_shape in rows.items():
        cells = []
        for shape, title in SHAPES:
            check = by_shape.get(shape)
            if check is None:
                cells.append("—")
                continue
            shown = cell(check, summaries)
            if shown is None:
                missing.append(f"{compare} ({title})")
            cells.append(shown or "not run")
        goal = _goal(next(iter(by_shape.values())))
        lines.append("| " + " | ".join([compare.replace("|", "\\|"), *cells, goal]) + " |")
    return lines, missing


def update_readme(readme: Path, report_name: str, summaries: list[Summary]) -> list[str]:
    """Replace the table between the markers if this run measured every cell; returns what it
    did not measure (the table is then left as it was)."""
    lines, missing = table(summaries)
    text = readme.read_text()
    if missing or START not in text or END not in text:
        return missing or ["the README has no bench:shapes markers"]
    report = f"bench/results/{report_name}"
    block = "\n".join([START, "", *lines, "", f"From one run: [`{report}`]({report}).", END])
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    readme.write_text(pattern.sub(lambda _: block, text))
    return []
