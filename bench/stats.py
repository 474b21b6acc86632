"""Medians per variant, ratios to each anchor, and the DESIGN.md §6 targets as checks."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.measure import ProcessStats
from bench.runner import RunRecord

MB = 2**20


@dataclass(frozen=True)
class Summary:
    scenario: str
    variant: str
    kind: str
    runs: int
    rows: int
    seconds: float  # median wall time
    rows_per_second: float  # rows / median seconds
    peak_rss: dict[str, float]  # role -> median peak RSS in bytes
    cpu_seconds: dict[str, float]  # role -> median user+system seconds


def summarise(records: list[RunRecord]) -> list[Summary]:
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        if record.repeat >= 0:
            groups.setdefault((record.scenario, record.variant), []).append(record)
    summaries = []
    for (scenario, variant), runs in groups.items():
        seconds = statistics.median(r.seconds for r in runs)
        rows = runs[0].rows
        roles = [p.role for p in runs[0].processes]
        summaries.append(Summary(
            scenario, variant, runs[0].kind, len(runs), rows, seconds,
            rows / seconds if seconds > 0 else 0.0,
            {role: statistics.median(_role(r, role).peak_rss_bytes for r in runs)
             for role in roles},
            {role: statistics.median(_role(r, role).user_seconds + _role(r, role).system_seconds
                                     for r in runs) for role in roles},
        ))
    return summaries


def _role(record: RunRecord, role: str) -> ProcessStats:
    return next(p for p in record.processes if p.role == role)


def find(summaries: list[Summary], scenario: str, variant: str) -> Summary | None:
    return next((s for s in summaries if s.scenario == scenario and s.variant == variant), None)


@dataclass(frozen=True)
class Check:
    """One DESIGN.md §6 target, evaluated on the medians of this run."""

    target: str
    scenario: str
    variant: str
    metric: str  # "speedup" | "slowdown" | "rss" | "rss_growth" | "rows_per_second"
    limit: float
    other: str = ""  # the anchor variant, or for rss: the process role
    other_scenario: str = ""  # rss_growth: the scenario at 1× rows

    def measure(self, summaries: list[Summary]) -> float | None:
        ours = find(summaries, self.scenario, self.variant)
        if ours is None:
            return None
        if self.metric in ("speedup", "slowdown"):
            anchor = find(summaries, self.scenario, self.other)
            if anchor is None or not ours.rows_per_second or not anchor.rows_per_second:
                return None
            ratio = ours.rows_per_second / anchor.rows_per_second
            return ratio if self.metric == "speedup" else 1 / ratio
        if self.metric == "rss":
            return ours.peak_rss.get(self.other, 0) / MB or None
        if self.metric == "rss_growth":
            base = find(summaries, self.other_scenario, self.variant)
            if base is None or not base.peak_rss.get(self.other):
                return None
            return ours.peak_rss.get(self.other, 0) / base.peak_rss[self.other] - 1
        return ours.rows_per_second

    def passed(self, value: float | None) -> bool | None:
        if value is None:
            return None
        if self.metric in ("speedup", "rows_per_second"):
            return value >= self.limit
        return value <= self.limit


OURS_PG = "tap-dap | target-dap-sql"
CHECKS = (
    Check("snapshot within 2× of raw COPY", "snapshot-pg", OURS_PG, "slowdown", 2.0,
          "raw COPY FROM"),
    Check("snapshot ≥11× faster than dap initdb", "snapshot-pg", OURS_PG, "speedup", 11,
          "dap initdb"),
    Check("snapshot ≥30× faster than tap-dap | target-postgres (use_copy)", "snapshot-pg",
          OURS_PG, "speedup", 30, "tap-dap | target-postgres (use_copy)"),
    Check("changes ≥6× faster than dap syncdb", "changes-pg", OURS_PG, "speedup", 6,
          "dap syncdb"),
    Check("30 tables ≥5× faster than dap syncdb --table all", "tables-30", OURS_PG, "speedup",
          5, "dap syncdb --table all"),
    Check("tap peak RSS ≤100 MB", "snapshot-pg", OURS_PG, "rss", 100, "tap"),
    Check("target peak RSS ≤150 MB", "snapshot-pg", OURS_PG, "rss", 150, "target"),
    Check("tap RSS at 4× rows ≤10% more", "memory-4x", OURS_PG, "rss_growth", 0.10, "tap",
          "snapshot-pg"),
    Check("target RSS at 4× rows ≤10% more", "memory-4x", OURS_PG, "rss_growth", 0.10,
          "target", "snapshot-pg"),
    Check("tap alone ≥200k rows/s", "tap-alone", "tap-dap > /dev/null", "rows_per_second",
          200_000),
)
