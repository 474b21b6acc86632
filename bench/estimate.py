"""A rough duration estimate, printed before a run starts (``--full`` takes a long while).

Each measured or setup run is modelled as ``fixed + rows ÷ rate``: ``fixed`` is start-up, job
and polling, ``rate`` the throughput beyond it. The paces come from this harness's runs on the
project machine (2 cores, 2026-11-26, 300k rows); on other machines or after optimisation the
estimate is only an order of magnitude, which is all it is for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bench.scenarios import (
    CHANGES_PG,
    CHANGES_SQLITE,
    PARSE_PROBE,
    PG_DESELECTED,
    PG_HASHED,
    TAP_ALONE,
    TAP_DESELECTED,
    TAP_HASHED,
)
from bench.services import EmulatorSpec
from bench.spec import Rows, Scenario, Variant

OURS = "tap-dap | target-dap-sql"
SEED = "seed: tap-dap | target-dap-sql"
PER_RUN = 1.0  # database creation or template copy, the row count check
PER_DATASET = 2.0  # starting an emulator


@dataclass(frozen=True)
class Pace:
    fixed: float  # seconds per run whatever its size
    rate: float  # rows per second beyond that

    def seconds(self, rows: int) -> float:
        return self.fixed + rows / self.rate


PACES: dict[tuple[str, str], Pace] = {
    ("snapshot-pg", OURS): Pace(1.5, 70_000),
    ("snapshot-pg", "dap initdb"): Pace(2.0, 8_000),
    ("snapshot-pg", "raw COPY FROM"): Pace(1.5, 150_000),
    ("snapshot-pg", "tap-dap | target-postgres (use_copy)"): Pace(2.0, 3_200),
    ("snapshot-pg", "tap-dap | target-postgres (INSERT)"): Pace(2.0, 2_700),
    ("snapshot-pg", PG_DESELECTED): Pace(1.5, 70_000),
    ("snapshot-pg", PG_HASHED): Pace(1.5, 60_000),
    ("snapshot-sqlite", OURS): Pace(1.5, 39_000),
    ("changes-sqlite", CHANGES_SQLITE): Pace(1.5, 30_000),
    ("changes-sqlite", CHANGES_PG): Pace(1.5, 33_000),
    ("changes-sqlite", "seed: tap-dap | target-dap-sql (SQLite)"): Pace(1.5, 39_000),
    ("changes-sqlite", SEED): Pace(1.5, 70_000),
    ("tap-alone", TAP_ALONE): Pace(1.2, 180_000),
    ("tap-alone", PARSE_PROBE): Pace(1.0, 150_000),
    ("tap-alone", TAP_DESELECTED): Pace(1.2, 70_000),  # issue 14, 300k rows on 2 shared cores
    ("tap-alone", TAP_HASHED): Pace(1.2, 48_000),
    ("memory-4x", OURS): Pace(1.5, 60_000),
    ("changes-pg", OURS): Pace(1.5, 33_000),
    ("changes-pg", "dap syncdb"): Pace(2.0, 7_000),
    ("changes-pg", SEED): Pace(1.5, 70_000),
    ("changes-pg", "dap initdb"): Pace(2.0, 8_000),
    ("snapshot-pg-narrow", OURS): Pace(1.5, 120_000),
    ("snapshot-pg-narrow", "dap initdb"): Pace(2.0, 14_000),
    ("snapshot-pg-narrow", "raw COPY FROM"): Pace(1.5, 250_000),
    ("changes-pg-narrow", OURS): Pace(1.5, 40_000),
    ("changes-pg-narrow", "dap syncdb"): Pace(2.0, 9_000),
    ("changes-pg-narrow", SEED): Pace(1.5, 120_000),
    ("changes-pg-narrow", "dap initdb"): Pace(2.0, 14_000),
    # MariaDB (2 GB buffer pool): the server's statements dominate both tools
    ("changes-mariadb", OURS): Pace(1.5, 8_000),
    ("changes-mariadb", "dap syncdb"): Pace(2.0, 2_500),
    ("changes-mariadb", SEED): Pace(1.5, 30_000),
    ("changes-mariadb", "dap initdb"): Pace(2.0, 6_000),
    ("changes-mariadb-narrow", OURS): Pace(1.5, 10_000),
    ("changes-mariadb-narrow", "dap syncdb"): Pace(2.0, 3_000),
    ("changes-mariadb-narrow", SEED): Pace(1.5, 40_000),
    ("changes-mariadb-narrow", "dap initdb"): Pace(2.0, 8_000),
    # 3 s job latency: waves of jobs for ours, one table after another for dap
    ("tables-30", OURS): Pace(15.0, 3_000),
    ("tables-30", "dap syncdb --table all"): Pace(150.0, 500),
    ("tables-30", SEED): Pace(15.0, 20_000),
    ("tables-30", "dap initdb (parallel setup)"): Pace(25.0, 5_000),
}
UNKNOWN = Pace(5.0, 5_000)  # a variant added without a pace: a pessimistic guess


def run_rows(scenario: Scenario, variant: Variant, spec: EmulatorSpec) -> int:
    tables = len(spec.tables or ()) or 1
    if variant.rows is Rows.CHANGES and scenario.changes is not None:
        return scenario.changes.per_table * tables
    return spec.rows * tables


def estimate(chosen: list[Scenario], datasets: Mapping[str, EmulatorSpec],
             repeats: int) -> dict[str, float]:
    """Seconds per scenario, in run order; setup runs only where no earlier run leaves the
    template behind, emulator start-up where a dataset is first used."""
    kept: set[tuple[str, str]] = set()
    started: set[str] = set()
    seconds: dict[str, float] = {}
    for scenario in chosen:
        total = 0.0
        runs = [(seed, 1) for seed in scenario.seeds
                if (seed.dataset or scenario.dataset, seed.keep_as) not in kept]
        runs += [(variant, repeats) for variant in scenario.variants]
        for variant, count in runs:
            dataset = variant.dataset or scenario.dataset
            if dataset not in started:
                started.add(dataset)
                total += PER_DATASET
            pace = PACES.get((scenario.name, variant.name), UNKNOWN)
            rows = run_rows(scenario, variant, datasets[dataset])
            total += count * (pace.seconds(rows) + PER_RUN)
            if variant.keep_as:
                kept.add((dataset, variant.keep_as))
        seconds[scenario.name] = total
    return seconds


def describe(seconds: Mapping[str, float]) -> str:
    total = sum(seconds.values())
    parts = ", ".join(f"{name} {_duration(value)}" for name, value in seconds.items())
    return f"bench: rough estimate {_duration(total)} ({parts}); venv set-up not included"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"
