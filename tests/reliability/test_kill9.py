"""Issue 9.2: kill -9 of the tap, the target or the whole pipeline at seeded random points.

The kill point is a byte count of the tap's output that passed through the relay to the target,
drawn (seed 9) over the whole snapshot run or the whole incremental run. After the kill the state
the README loop saved must never be ahead of the data; the rerun must reach the truth with no
duplicate rows and meta rows equal to the final bookmarks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.replica import Replica, as_utc, diff_table, fetch_truth
from tests.emulator_fixture import RunningEmulator
from tests.reliability.outcomes import assert_recovered
from tests.reliability.pipeline import KillPlan, Workdir

TABLES = [("canvas", "accounts"), ("canvas", "courses"), ("canvas", "users")]
SERVE = {"tables": "accounts,courses,users", "rows": 30, "rows_per_object": 10, "seed": 13}
# Small batches: the target commits (and emits STATE) many times per run, so kills land between
# commits, inside them, and inside snapshots that are still in their staging tables.
TARGET_SETTINGS = {"batch_size_rows": 7, "batch_max_seconds": 0.05}
VICTIMS = {"tap": ("tap",), "target": ("target",), "pipeline": ("tap", "target")}
# Measured output of one run of SERVE (bytes); kill points are drawn inside it.
OUTPUT_BYTES = {"snapshot": 100_000, "incremental": 40_000}


def kill_points(count: int, seed: int = 9) -> list[tuple[str, str, int, bool]]:
    """(phase, victim, byte offset, at a line end): phases and victims alternate, the rest is
    drawn; half the kills of a tap leave a clean end of input (the target commits what it got)."""
    rng = random.Random(seed)
    points = []
    for i in range(count):
        phase = "snapshot" if i % 2 == 0 else "incremental"
        victim = list(VICTIMS)[i % 3]
        offset = rng.randint(200, OUTPUT_BYTES[phase] - 200)
        points.append((phase, victim, offset, rng.random() < 0.5))
    return points


POINTS = kill_points(12)
PG_POINTS = kill_points(4, seed=10)


def start(emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, url: str,
          phase: str) -> tuple[RunningEmulator, Workdir, str | None]:
    emu = emulator_factory(**SERVE)
    workdir = Workdir(tmp_path / "job", emu, url)
    workdir.target_config.update(TARGET_SETTINGS)
    if phase == "snapshot":
        return emu, workdir, None
    assert_recovered(workdir, workdir.run(), TABLES)
    last = ""
    for _, table in TABLES:
        last = emu.advance("canvas", table, inserts=4, updates=5, deletes=3)
    return emu, workdir, last


def assert_meta_never_ahead(workdir: Workdir, emu: RunningEmulator, changed_at: str | None
                            ) -> None:
    """A table whose meta row (or saved bookmark) covers the latest change holds exactly it."""
    replica = Replica(workdir.db_url)
    try:
        synced = replica.table_sync()
    except Exception:  # noqa: BLE001 (no meta table yet: the kill came before the first commit)
        synced = {}
    bookmarks: dict[str, Any] = workdir.state().get("bookmarks", {})
    for (namespace, table), (ts, _) in synced.items():
        saved = bookmarks.get(f"{namespace}-{table}")
        if saved is not None:
            assert as_utc(saved["timestamp"]) <= ts, f"state ahead of {namespace}.{table}'s data"
        if changed_at is None or ts >= as_utc(changed_at):
            diff = diff_table(namespace, table, fetch_truth(emu.base_url, namespace, table),
                              replica.rows(namespace, table))
            assert not diff, f"meta row says synced to {ts}, data is not: {diff}"
    for stream in bookmarks:
        namespace, _, table = stream.partition("-")
        assert (namespace, table) in synced, f"state has {stream}, the database has no meta row"


def assert_no_duplicates(url: str) -> None:
    replica = Replica(url)
    for namespace, table in TABLES:
        _, rows = replica.query(f'SELECT "id", COUNT(*) FROM {replica.qualified(namespace, table)} '
                                'GROUP BY "id" HAVING COUNT(*) > 1')
        assert rows == [], f"duplicate keys in {namespace}.{table}: {rows[:5]}"


def kill_and_rerun(emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, url: str,
                   point: tuple[str, str, int, bool]) -> None:
    phase, victim, after_bytes, at_line_end = point
    emu, workdir, changed_at = start(emulator_factory, tmp_path, url, phase)
    killed = workdir.run(kill=KillPlan(VICTIMS[victim], after_bytes, at_line_end))
    assert killed.killed, f"the run ended after {killed.relayed_bytes} bytes, before the kill"
    for name in VICTIMS[victim]:
        rc = killed.tap_rc if name == "tap" else killed.target_rc
        assert rc == -9, killed.explain()
    assert_meta_never_ahead(workdir, emu, changed_at)

    rerun = workdir.run()
    assert_recovered(workdir, rerun, TABLES)
    assert_no_duplicates(url)
    synced = Replica(url).table_sync()
    assert {f"{ns}-{t}": ts for (ns, t), (ts, _) in synced.items()} == {
        s: as_utc(b["timestamp"]) for s, b in workdir.state()["bookmarks"].items()}


def point_id(point: tuple[str, str, int, bool]) -> str:
    phase, victim, offset, at_line_end = point
    return f"{phase}-{victim}-{offset}{'-eol' if at_line_end else ''}"


@pytest.mark.parametrize("point", POINTS, ids=map(point_id, POINTS))
def test_kill9_then_rerun_sqlite(point: tuple[str, str, int, bool],
                                 emulator_factory: Callable[..., RunningEmulator],
                                 tmp_path: Path) -> None:
    kill_and_rerun(emulator_factory, tmp_path, f"sqlite:///{tmp_path}/dap.db", point)


@pytest.mark.postgres
@pytest.mark.parametrize("point", PG_POINTS, ids=map(point_id, PG_POINTS))
def test_kill9_then_rerun_postgres(point: tuple[str, str, int, bool],
                                   emulator_factory: Callable[..., RunningEmulator],
                                   tmp_path: Path, pg_url: str) -> None:
    kill_and_rerun(emulator_factory, tmp_path, pg_url, point)
