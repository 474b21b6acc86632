"""Medians per variant, ratios to each anchor, and the docs/performance.md targets as checks."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.measure import ProcessStats
from bench.runner import RunRecord
from bench.scenarios import (
    CHANGES_PG,
    CHANGES_SQLITE,
    PARSE_PROBE,
    PG_DESELECTED,
    PG_HASHED,
    TAP_ALONE,
)

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
    # the variant's streaming window (Window), medians: start after the first process started,
    # duration, and rows / duration
    window_start: float | None = None
    window_seconds: float | None = None
    window_rows_per_second: float | None = None


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
        window_start, window_seconds = _window_medians(runs)
        summaries.append(Summary(
            scenario, variant, runs[0].kind, len(runs), rows, seconds,
            rows / seconds if seconds > 0 else 0.0,
            {role: statistics.median(_role(r, role).peak_rss_bytes for r in runs)
             for role in roles},
            {role: statistics.median(_role(r, role).user_seconds + _role(r, role).system_seconds
                                     for r in runs) for role in roles},
            window_start, window_seconds,
            rows / window_seconds if window_seconds else None,
        ))
    return summaries


def _window_medians(runs: list[RunRecord]) -> tuple[float | None, float | None]:
    timed = [r for r in runs if r.window_seconds is not None and r.window_start is not None]
    if not timed:
        return None, None
    return (statistics.median(r.window_start for r in timed),  # type: ignore[misc]
            statistics.median(r.window_seconds for r in timed))  # type: ignore[misc]


def _role(record: RunRecord, role: str) -> ProcessStats:
    return next(p for p in record.processes if p.role == role)


def find(summaries: list[Summary], scenario: str, variant: str) -> Summary | None:
    return next((s for s in summaries if s.scenario == scenario and s.variant == variant), None)


@dataclass(frozen=True)
class Check:
    """One docs/performance.md target, evaluated on the medians of this run."""

    target: str
    scenario: str
    variant: str
    # "speedup" | "slowdown" (wall-time rows/s against an anchor) | "rss" | "rss_growth" |
    # "rows_per_second" (wall time) | "window_rows_per_second" (the variant's streaming window)
    metric: str
    limit: float
    # the anchor variant; for rss: the process role; for window_rows_per_second: the variant
    # whose window rate is shown alongside (not judged)
    other: str = ""
    other_scenario: str = ""  # rss_growth: the scenario at 1× rows; speedup/slowdown: the
    # anchor's scenario when it is not the variant's own
    # the row of the per-row-shape table (bench/shapes.py) this check fills, and its column
    compare: str = ""
    shape: str = "wide"  # "wide": the emulator's ~1.2 KB rows; "narrow": ~480 B

    def measure(self, summaries: list[Summary]) -> float | None:
        ours = find(summaries, self.scenario, self.variant)
        if ours is None:
            return None
        if self.metric in ("speedup", "slowdown"):
            anchor = find(summaries, self.other_scenario or self.scenario, self.other)
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
        if self.metric == "window_rows_per_second":
            return ours.window_rows_per_second
        return ours.rows_per_second

    def passed(self, value: float | None) -> bool | None:
        if value is None:
            return None
        if self.metric in ("speedup", "rows_per_second", "window_rows_per_second"):
            return value >= self.limit
        return value <= self.limit


OURS_PG = "tap-dap | target-dap-sql"
SNAPSHOT = "snapshot → PostgreSQL"
INITDB, COPY, SYNCDB_PG, SYNCDB_MARIADB = ("snapshot → PostgreSQL vs `dap initdb`",
                                         "snapshot → PostgreSQL vs raw `COPY FROM`",
                                         "changes → PostgreSQL vs `dap syncdb`",
                                         "changes → MariaDB vs `dap syncdb`")
CHECKS = (
    Check(f"{SNAPSHOT} within 2× of raw COPY (wall-time rows/s)", "snapshot-pg", OURS_PG,
          "slowdown", 2.0, "raw COPY FROM", compare=COPY),
    Check(f"{SNAPSHOT} within 2× of raw COPY, narrow rows", "snapshot-pg-narrow", OURS_PG,
          "slowdown", 2.0, "raw COPY FROM", compare=COPY, shape="narrow"),
    Check(f"{SNAPSHOT} ≥11× faster than dap initdb (wall-time rows/s)", "snapshot-pg", OURS_PG,
          "speedup", 11, "dap initdb", compare=INITDB),
    Check(f"{SNAPSHOT} ≥11× faster than dap initdb, narrow rows", "snapshot-pg-narrow",
          OURS_PG, "speedup", 11, "dap initdb", compare=INITDB, shape="narrow"),
    Check(f"{SNAPSHOT} ≥30× faster than tap-dap | target-postgres (use_copy) (wall-time rows/s)",
          "snapshot-pg", OURS_PG, "speedup", 30, "tap-dap | target-postgres (use_copy)",
          compare="snapshot → PostgreSQL vs tap-dap | target-postgres (`use_copy`)"),
    Check("changes ≥6× faster than dap syncdb", "changes-pg", OURS_PG, "speedup", 6,
          "dap syncdb", compare=SYNCDB_PG),
    Check("changes ≥6× faster than dap syncdb, narrow rows", "changes-pg-narrow", OURS_PG,
          "speedup", 6, "dap syncdb", compare=SYNCDB_PG, shape="narrow"),
    Check("changes → MariaDB ≥6× faster than dap syncdb", "changes-mariadb", OURS_PG,
          "speedup", 6, "dap syncdb", compare=SYNCDB_MARIADB),
    Check("changes → MariaDB ≥6× faster than dap syncdb, narrow rows", "changes-mariadb-narrow",
          OURS_PG, "speedup", 6, "dap syncdb", compare=SYNCDB_MARIADB, shape="narrow"),
    Check(f"{SNAPSHOT} with 3 properties deselected ≥100% of the unmapped rows/s",
          "snapshot-pg", PG_DESELECTED, "speedup", 1.0, OURS_PG,
          compare=f"{SNAPSHOT}, 3 properties deselected vs none"),
    Check(f"{SNAPSHOT} with 1 property hashed by a stream map ≥60% of the unmapped rows/s",
          "snapshot-pg", PG_HASHED, "speedup", 0.6, OURS_PG,
          compare=f"{SNAPSHOT}, 1 property hashed by a stream map vs none"),
    Check("30 tables ≥5× faster than dap syncdb --table all", "tables-30", OURS_PG, "speedup",
          5, "dap syncdb --table all",
          compare="30 tables, 3 s job latency, vs `dap syncdb --table all`"),
    Check("snapshot → SQLite within 1.3× of the time into PostgreSQL (wall-time rows/s)",
          "snapshot-sqlite", OURS_PG, "slowdown", 1.3, OURS_PG, "snapshot-pg",
          compare="snapshot → SQLite vs → PostgreSQL"),
    Check("changes → SQLite within 1.3× of the time into PostgreSQL (wall-time rows/s)",
          "changes-sqlite", CHANGES_SQLITE, "slowdown", 1.3, CHANGES_PG,
          compare="changes → SQLite vs → PostgreSQL"),
    Check("tap peak RSS ≤100 MB", "snapshot-pg", OURS_PG, "rss", 100, "tap"),
    Check("target peak RSS ≤150 MB", "snapshot-pg", OURS_PG, "rss", 150, "target"),
    Check("tap RSS at 4× rows ≤10% more", "memory-4x", OURS_PG, "rss_growth", 0.10, "tap",
          "snapshot-pg"),
    Check("target RSS at 4× rows ≤10% more", "memory-4x", OURS_PG, "rss_growth", 0.10,
          "target", "snapshot-pg"),
    Check("tap alone ≥200k rows/s emitted (emission rate: rows ÷ first RECORD → EOF)",
          "tap-alone", TAP_ALONE, "window_rows_per_second", 200_000, PARSE_PROBE),
)
