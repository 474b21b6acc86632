"""`hard_delete: false`: a snapshot replacing a table keeps the rows it no longer has, marked
deleted (their `_sdc_deleted_at` kept, else the time of the swap), on every database."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from target_dap_sql.errors import InputError
from tests.integration.helpers import SUBMISSIONS, bookmark, delete, snapshot, upsert
from tests.integration.replica_dbs import ReplicaDb, rdb_fixture, stamp  # noqa: F401 (fixture)
from tests.unit.target.dap_messages import (
    activate,
    run_in_process,
    singer_schema,
    submissions_schema,
)

SOFT = {"hard_delete": False}


def _schema(version: int = 1, *, required_late_days: bool = False) -> dict[str, Any]:
    dap = copy.deepcopy(submissions_schema(version))
    if required_late_days:  # a new column the old rows never had, NOT NULL in the new schema
        dap["properties"]["value"]["required"].append("late_days")
    return singer_schema("canvas", "submissions", version, dap)


def _rows(rdb: ReplicaDb, extra: str = "") -> list[tuple]:
    columns = '"id", "grade", "_sdc_deleted_at"' + extra
    return [(r[0], r[1], stamp(r[2]), *r[3:]) for r in rdb.rows("canvas", "submissions",
                                                                 columns)]


def _load_and_delete(rdb: ReplicaDb, config: dict[str, Any]) -> None:
    """Snapshot of ids 1–5, then changes deleting 2 and 4."""
    run_in_process({"sqlalchemy_url": rdb.url, **config},
                   [_schema(), *snapshot(1, [1, 2, 3, 4, 5]), bookmark("2024-01-01T00:00:00Z")])
    run_in_process({"sqlalchemy_url": rdb.url, **config},
                   [_schema(), bookmark("2024-01-01T00:00:00Z"),
                    delete(2, ts="2024-01-20T00:00:00Z"), delete(4, ts="2024-01-21T00:00:00Z"),
                    bookmark("2024-02-01T00:00:00Z")])


def test_resnapshot_keeps_soft_deleted_and_vanished_rows(rdb: ReplicaDb) -> None:
    _load_and_delete(rdb, SOFT)
    before = {r[0]: r[2] for r in _rows(rdb)}
    assert before == {1: None, 2: "2024-01-20 00:00:00", 3: None, 4: "2024-01-21 00:00:00",
                      5: None}
    # The new snapshot: 1 and 3 changed, 4 is back, 2 and 5 are gone, 6 is new.
    run_in_process({"sqlalchemy_url": rdb.url, **SOFT},
                   [_schema(), activate(SUBMISSIONS, 2), upsert(1, grade="new1"),
                    upsert(3, grade="new3"), upsert(4, grade="new4"), upsert(6),
                    activate(SUBMISSIONS, 2), bookmark("2024-03-01T00:00:00Z")])
    rows = {r[0]: r[1:] for r in _rows(rdb)}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]
    assert rows[1] == ("new1", None) and rows[3] == ("new3", None)
    assert rows[4] == ("new4", None)  # in the new snapshot: live again
    assert rows[6] == ("A6", None)
    assert rows[2] == ("A2", "2024-01-20 00:00:00")  # its deletion time kept
    assert rows[5][0] == "A5" and rows[5][1] is not None and rows[5][1] > "2024-03-01"
    # A further snapshot changes nothing more for the rows already marked.
    run_in_process({"sqlalchemy_url": rdb.url, **SOFT},
                   [_schema(), *snapshot(3, [1, 6]), bookmark("2024-04-01T00:00:00Z")])
    again = {r[0]: r[2] for r in _rows(rdb)}
    assert again[2] == "2024-01-20 00:00:00" and again[5] == rows[5][1]
    assert again[1] is None and again[6] is None and again[3] is not None
    assert again[4] is not None


def test_hard_delete_snapshot_replaces_the_table(rdb: ReplicaDb) -> None:
    _load_and_delete(rdb, {})
    run_in_process({"sqlalchemy_url": rdb.url},
                   [_schema(), *snapshot(2, [1, 3, 6]), bookmark("2024-03-01T00:00:00Z")])
    assert [r[0] for r in rdb.rows("canvas", "submissions", '"id"')] == [1, 3, 6]


def test_schema_change_with_a_new_required_column(rdb: ReplicaDb) -> None:
    """The re-snapshot comes with schema version 2, which adds `late_days` as required: the
    table evolves first (an added column is nullable on SQLite and PostgreSQL; MySQL fills old
    rows with the type's implicit default), the staging table is made like it, so the old rows
    fit it and stay."""
    _load_and_delete(rdb, SOFT)
    run_in_process({"sqlalchemy_url": rdb.url, **SOFT},
                   [_schema(2, required_late_days=True), activate(SUBMISSIONS, 2),
                    upsert(1, late_days=3), activate(SUBMISSIONS, 2),
                    bookmark("2024-03-01T00:00:00Z", 2)])
    rows = {r[0]: r[1:] for r in _rows(rdb, ', "late_days"')}
    assert sorted(rows) == [1, 2, 3, 4, 5]
    assert rows[1] == ("A1", None, 3)
    assert rows[2][1] == "2024-01-20 00:00:00"
    assert all(rows[i][1] is not None for i in (2, 3, 4, 5))
    assert rows[3][2] in (None, 0)  # never had the column: NULL, or MySQL's implicit 0


def test_dropped_column_with_drop_removed_columns(rdb: ReplicaDb) -> None:
    """Schema version 3 drops `body`; with drop_removed_columns the live table loses it before
    the staging table is made, and the kept rows are copied without it."""
    _load_and_delete(rdb, SOFT)
    run_in_process({"sqlalchemy_url": rdb.url, **SOFT, "drop_removed_columns": True},
                   [_schema(3), *snapshot(2, [1]), bookmark("2024-03-01T00:00:00Z", 3)])
    rows = {r[0]: r[1:] for r in _rows(rdb)}
    assert sorted(rows) == [1, 2, 3, 4, 5]
    assert rows[1][1] is None and rows[2][1] == "2024-01-20 00:00:00"
    columns = rdb.columns("canvas", "submissions")
    assert "body" not in columns and "grade" in columns


def test_empty_snapshot_still_refused_and_then_marks_every_row(rdb: ReplicaDb) -> None:
    """An empty snapshot is refused as with hard deletes (it would mark every row deleted);
    when the tap says the DAP table is empty, every row stays, marked deleted."""
    _load_and_delete(rdb, SOFT)
    with pytest.raises(InputError, match="refusing to replace table 'submissions'"):
        run_in_process({"sqlalchemy_url": rdb.url, **SOFT},
                       [_schema(), activate(SUBMISSIONS, 2), activate(SUBMISSIONS, 2)])
    assert [r[2] is None for r in _rows(rdb)] == [True, False, True, False, True]
    closing = {**activate(SUBMISSIONS, 2), "x-dap-rows": 0}
    run_in_process({"sqlalchemy_url": rdb.url, **SOFT},
                   [_schema(), activate(SUBMISSIONS, 2), closing])
    rows = _rows(rdb)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5] and all(r[2] is not None for r in rows)
    assert rows[1][2] == "2024-01-20 00:00:00"
