"""Record worker processes (target_dap_sql/workers.py) leave exactly the database the target's own
process leaves: same rows, same values, same STATE lines, and the same error naming the same
line. Small slices and a small start threshold make workers take most runs of small inputs."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from target_dap_sql import sinks, workers
from target_dap_sql.dialects import lanes
from target_dap_sql.errors import InputError
from tests.integration.helpers import bookmark, delete, snapshot, submissions_schema_message, upsert
from tests.integration.test_target_lanes import _changes
from tests.unit.target.dap_messages import run_in_process

SNAPSHOT_KEYS = range(1, 1201)


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Slices of 40 rows, workers from the 100th record, lanes from 2 rows; returns a list
    that gets one entry per worker process started."""
    monkeypatch.setattr(sinks, "SLICE_ROWS", 40)
    monkeypatch.setattr(workers, "MIN_ROWS", 100)
    monkeypatch.setattr(lanes, "MIN_LANE_ROWS", 2)
    started: list[int] = []
    real_start = workers.ParallelRuns._start

    def counting_start(self: workers.ParallelRuns) -> Any:
        worker = real_start(self)
        started.append(worker.process.pid)
        return worker

    monkeypatch.setattr(workers.ParallelRuns, "_start", counting_start)
    return started


def _load(url: str, count: int) -> list[dict[str, Any]]:
    """A snapshot, then changes (several slices, deletes, keys coming back); the STATE lines."""
    config = {"sqlalchemy_url": url, "workers": count}
    states = run_in_process(config, [
        submissions_schema_message(), *snapshot(1, SNAPSHOT_KEYS, grade="s"),
        bookmark("2024-01-01T00:00:00Z")])
    changes, _ = _changes()
    # the changes again on keys shifted by 1000: enough records to reach the workers
    more = [delete(m["record"]["id"] + 1000) if m["record"].get("meta", {}).get("action") == "D"
            else upsert(m["record"]["id"] + 1000, grade=m["record"]["grade"]) for m in changes]
    return states + run_in_process(config, [
        submissions_schema_message(), *changes, *more, bookmark("2024-01-02T00:00:00Z")])


def _rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute('SELECT * FROM canvas.submissions ORDER BY "id"').fetchall()


def _meta(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute('SELECT "source_table", "timestamp", "schema_version" '
                            "FROM instructure_dap.table_sync").fetchall()


@pytest.mark.postgres
def test_workers_leave_the_database_one_process_leaves(postgres_server: Any,
                                                       small_slices: list[int]) -> None:
    databases: dict[int, str] = {}
    states: dict[int, list[dict[str, Any]]] = {}
    for count in (1, 2, 3):  # 3: more workers than this machine may have cores
        databases[count] = postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
        before = len(small_slices)
        states[count] = _load(databases[count], count)
        # two runs (snapshot, changes), each starting its own workers; none with workers=1
        assert len(small_slices) - before == (2 * count if count > 1 else 0)
    assert states[1] == states[2] == states[3]
    assert states[1][-1] == {"bookmarks": {"canvas-submissions": {
        "timestamp": "2024-01-02T00:00:00Z", "schema_version": 1}}}
    assert _rows(databases[1]) == _rows(databases[2]) == _rows(databases[3])
    assert _meta(databases[1]) == _meta(databases[2]) == _meta(databases[3])
    # and what the changes say the table holds
    _, truth = _changes()
    truth.update({k + 1000: g for k, g in truth.items()})
    truth.update({k: "s" for k in SNAPSHOT_KEYS if k not in truth})
    expected = sorted((k, g) for k, g in truth.items() if g is not None)
    assert [(r[0], r[4]) for r in _rows(databases[2])] == expected


@pytest.mark.postgres
def test_a_bad_record_names_its_line_as_without_workers(postgres_server: Any,
                                                        small_slices: list[int]) -> None:
    """The bad line sits deep in a run a worker decodes; the error is the in-process one."""
    messages = [submissions_schema_message(), *snapshot(1, range(1, 801))]
    bad = upsert(700)
    bad["record"]["workflow_state"] = "no such state"  # not one of the enum's labels
    messages[700] = bad  # input line 701
    errors = {}
    for count in (1, 2):
        url = postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
        with pytest.raises(InputError) as raised:
            run_in_process({"sqlalchemy_url": url, "workers": count}, messages)
        errors[count] = str(raised.value)
    assert len(small_slices) == 2  # the run with workers=2 did use them
    assert errors[1] == errors[2]
    assert errors[2].startswith("line 701, stream 'canvas-submissions': ")
