"""Issue 9.2 into MariaDB: kill -9 of the tap, the target or both of the plain pipe at seeded
points of a snapshot and of an incremental, then a rerun.

The kill points and the relay are test_kill9's; what differs is reading the replica: MariaDB's
official layout (`<ns>__<table>`, binary(16) uuids, `datetime` without fraction, also in the
`instructure_dap__table_sync` meta rows), so truth and bookmarks compare to the whole second.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.compat.test_two_way import _mysql_rows, _whole_seconds
from tests.e2e.replica import as_utc, diff_table
from tests.emulator_fixture import RunningEmulator
from tests.integration.test_target_mysql import meta, mysql_query
from tests.reliability.pipeline import KillPlan, PipelineRun, Workdir
from tests.reliability.test_kill9 import (
    SERVE,
    TABLES,
    TARGET_SETTINGS,
    VICTIMS,
    kill_points,
    point_id,
)

POINTS = kill_points(4, seed=11)  # snapshot and incremental alternate: two of each


def truth_diffs(workdir: Workdir) -> list[str]:
    diffs = []
    for namespace, table in TABLES:
        truth = [{"key": t["key"], "value": _whole_seconds(t["value"])}
                 for t in workdir.emulator.truth(namespace, table)]
        stored = [_whole_seconds(row) for row in _mysql_rows(workdir.db_url, table)]
        if diff := diff_table(namespace, table, truth, stored):
            diffs.append(str(diff))
    return diffs


def not_yet_truth(workdir: Workdir) -> bool:
    try:
        return bool(truth_diffs(workdir))
    except Exception:  # noqa: BLE001 (a table not created yet: certainly not the truth)
        return True


def synced(url: str) -> dict[str, datetime]:
    """Meta rows: stream -> timestamp (whole seconds, as MariaDB stores them)."""
    return {f"{ns}-{table}": as_utc(ts) for ns, table, ts, *_ in meta(url)}


def bookmarks(workdir: Workdir) -> dict[str, datetime]:
    return {stream: as_utc(b["timestamp"]).replace(microsecond=0)
            for stream, b in workdir.state().get("bookmarks", {}).items()}


def assert_recovered(workdir: Workdir, run: PipelineRun) -> None:
    assert run.ok, run.explain()
    assert "Traceback" not in run.tap_stderr + run.target_stderr, run.explain()
    assert truth_diffs(workdir) == []
    assert sorted(bookmarks(workdir)) == sorted(f"{ns}-{t}" for ns, t in TABLES)
    assert synced(workdir.db_url) == bookmarks(workdir)


def assert_state_never_ahead(workdir: Workdir) -> None:
    """What the README loop saved after the kill: each bookmark has a meta row at or past it."""
    try:
        meta_rows = synced(workdir.db_url)
    except Exception:  # noqa: BLE001 (no meta table yet: the kill came before the first commit)
        meta_rows = {}
    for stream, mark in bookmarks(workdir).items():
        assert stream in meta_rows, f"state has {stream}, the database has no meta row"
        assert mark <= meta_rows[stream], f"state ahead of {stream}'s data"


def assert_no_duplicates(url: str) -> None:
    for _, table in TABLES:
        rows = mysql_query(url, f'SELECT "id", COUNT(*) FROM "canvas__{table}" GROUP BY "id" '
                                "HAVING COUNT(*) > 1")
        assert rows == [], f"duplicate keys in canvas__{table}: {rows[:5]}"


@pytest.mark.mariadb
@pytest.mark.parametrize("point", POINTS, ids=map(point_id, POINTS))
def test_kill9_then_rerun_mariadb(point: tuple[str, str, int, bool],
                                  emulator_factory: Callable[..., RunningEmulator],
                                  tmp_path: Path, mariadb_url: str) -> None:
    phase, victim, after_bytes, at_line_end = point
    emu = emulator_factory(**SERVE)
    workdir = Workdir(tmp_path / "job", emu, mariadb_url)
    workdir.target_config.update(TARGET_SETTINGS)
    if phase == "incremental":
        assert_recovered(workdir, workdir.run())
        for namespace, table in TABLES:
            emu.advance(namespace, table, inserts=4, updates=5, deletes=3)

    killed = workdir.run(kill=KillPlan(VICTIMS[victim], after_bytes, at_line_end))
    assert killed.killed, f"the run ended after {killed.relayed_bytes} bytes, before the kill"
    for name in VICTIMS[victim]:
        rc = killed.tap_rc if name == "tap" else killed.target_rc
        assert rc == -9, killed.explain()
    assert not_yet_truth(workdir), "the kill interrupted nothing: the database was the truth"
    assert_state_never_ahead(workdir)

    assert_recovered(workdir, workdir.run())
    assert_no_duplicates(mariadb_url)
