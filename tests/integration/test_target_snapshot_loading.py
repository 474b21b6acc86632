"""Snapshot loading fast paths: slices loaded in the background, straight COPY into staging.

The submissions schema here has no JSON or array columns, so on PostgreSQL every snapshot slice
is COPYed straight into the staging table unless a test makes that impossible.
"""

from __future__ import annotations

import copy
from typing import Any

import psycopg
import pytest

from target_dap_sql import sinks
from target_dap_sql.errors import DatabaseError
from tests.unit.target.dap_messages import (
    activate,
    record,
    run_in_process,
    singer_schema,
    state,
    submission,
    submissions_schema,
)
from tests.unit.target.target_db import TargetDb, db_fixture  # noqa: F401 (fixture)

S = "canvas-submissions"


def _flat_schema() -> dict[str, Any]:
    dap = copy.deepcopy(submissions_schema(1))
    for name in ("media", "tags"):
        del dap["properties"]["value"]["properties"][name]
    return singer_schema("canvas", "submissions", 1, dap)


SCHEMA = _flat_schema()


def _row(i: int, **overrides: Any) -> dict[str, Any]:
    value = submission(i, **overrides)
    del value["media"], value["tags"]
    return value


def _rows(db: TargetDb) -> list[tuple]:
    return db.rows("canvas", "submissions", '"id", "grade", "score"')


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several staging commits (and so background loads) within a handful of records.
    monkeypatch.setattr(sinks, "SLICE_ROWS", 2)


def test_snapshot_in_slices_with_a_key_repeated_across_slices(
    db: TargetDb, small_slices: None
) -> None:
    run_in_process({"sqlalchemy_url": db.url}, [
        SCHEMA, activate(S, 1), *[record(S, {"id": i}, _row(i)) for i in range(1, 4)],
        activate(S, 1), state({S: ("2024-01-01T00:00:00Z", 1)})])
    # Key 2 comes again two slices later (PostgreSQL: the straight COPY hits the primary key and
    # that slice merges instead); key 5 is deleted within the snapshot.
    run_in_process({"sqlalchemy_url": db.url}, [
        SCHEMA, activate(S, 2),
        record(S, {"id": 2}, _row(2, grade="first")), record(S, {"id": 4}, _row(4)),
        record(S, {"id": 5}, _row(5)), record(S, {"id": 6}, _row(6)),
        record(S, {"id": 2}, _row(2, grade="last", score=1.25)), record(S, {"id": 7}, _row(7)),
        record(S, {"id": 5}, action="D"),
        activate(S, 2), state({S: ("2024-02-01T00:00:00Z", 1)})])
    assert _rows(db) == [(2, "last", 1.25), (4, "A4", 9.5), (6, "A6", 9.5), (7, "A7", 9.5)]
    assert db.meta_rows()[0][2] == db.timestamp("2024-02-01 00:00:00")


def test_snapshot_values_round_trip_through_the_straight_copy(
    db: TargetDb, small_slices: None
) -> None:
    run_in_process({"sqlalchemy_url": db.url}, [
        SCHEMA, activate(S, 1), *[record(S, {"id": i}, _row(i)) for i in (1, 2, 3)],
        activate(S, 1)])
    columns = '"id", "assignment_id", "attempt", "workflow_state", "excused", "lti_id", "body"'
    rows = db.rows("canvas", "submissions", columns)
    false = "0" if db.kind == "sqlite" else "False"
    assert [tuple(str(v) for v in r) for r in rows] == [
        (str(i), str(1000 + i), "1", "submitted", false, f"00000000-0000-4000-8000-{i:012d}",
         f"essay {i}") for i in (1, 2, 3)]
    (submitted,) = {r[0] for r in db.rows("canvas", "submissions", '"submitted_at"')}
    assert submitted == db.timestamp("2024-01-05 10:00:00.123456")


@pytest.mark.postgres
def test_kept_column_of_another_type_is_loaded_with_a_cast(pg_url: str, small_slices: None) -> None:
    run_in_process({"sqlalchemy_url": pg_url}, [SCHEMA, record(S, {"id": 1}, _row(1))])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        # Not a widening of double precision, so the target keeps it; binary float8 values
        # would not fit a numeric column, so this snapshot must not be COPYed straight.
        conn.execute('ALTER TABLE canvas.submissions ALTER COLUMN "score" TYPE numeric(6,2)')
    run_in_process({"sqlalchemy_url": pg_url}, [
        SCHEMA, activate(S, 2), *[record(S, {"id": i}, _row(i, score=i + 0.25)) for i in (1, 2, 3)],
        activate(S, 2)])
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute('SELECT "id", "score"::text, format_type(a.atttypid, a.atttypmod) '
                            'FROM canvas.submissions, pg_attribute a WHERE a.attrelid = '
                            "'canvas.submissions'::regclass AND a.attname = 'score' "
                            "ORDER BY 1").fetchall()
    assert rows == [(1, "1.25", "numeric(6,2)"), (2, "2.25", "numeric(6,2)"),
                    (3, "3.25", "numeric(6,2)")]


@pytest.mark.postgres
def test_failed_background_load_fails_the_run_and_keeps_the_live_table(
    pg_url: str, small_slices: None
) -> None:
    run_in_process({"sqlalchemy_url": pg_url}, [
        SCHEMA, activate(S, 1), record(S, {"id": 1}, _row(1)), activate(S, 1)])
    # Without validation the too-long grade reaches the server, in a slice loaded in the
    # background; its error must surface and stop the run before the swap.
    with pytest.raises(DatabaseError) as caught:
        run_in_process({"sqlalchemy_url": pg_url, "validate_records": False}, [
            SCHEMA, activate(S, 2), record(S, {"id": 2}, _row(2)),
            record(S, {"id": 3}, _row(3, grade="x" * 300)), record(S, {"id": 4}, _row(4)),
            record(S, {"id": 5}, _row(5)), activate(S, 2)])
    assert str(caught.value) == (
        "loading stream 'canvas-submissions': value too long for type character varying(255)")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute('SELECT "id", "grade" FROM canvas.submissions').fetchall() == [
            (1, "A1")]


def test_changes_commit_in_slices_and_the_bookmark_moves_only_with_state(
    db: TargetDb, small_slices: None
) -> None:
    run_in_process({"sqlalchemy_url": db.url}, [
        SCHEMA, *[record(S, {"id": i}, _row(i)) for i in range(1, 5)],
        state({S: ("2024-01-01T00:00:00Z", 1)})])
    changes = [
        record(S, {"id": 1}, _row(1, grade="B")), record(S, {"id": 2}, action="D"),
        record(S, {"id": 1}, _row(1, grade="C")), record(S, {"id": 9}, _row(9)),
        record(S, {"id": 2}, _row(2, grade="back")),
    ]
    # Input that breaks after two full slices: they are committed (key 2 deleted, not yet
    # back), the bookmark is not moved, so a re-run fetches and re-applies the same changes.
    with pytest.raises(Exception, match="line 7"):
        run_in_process({"sqlalchemy_url": db.url, "batch_size_rows": 1000},
                       [SCHEMA, *changes, b"{not json\n"])
    assert _rows(db) == [(1, "C", 9.5), (3, "A3", 9.5), (4, "A4", 9.5), (9, "A9", 9.5)]
    assert db.meta_rows()[0][2] == db.timestamp("2024-01-01 00:00:00")
    states = run_in_process({"sqlalchemy_url": db.url, "batch_size_rows": 1000}, [
        SCHEMA, *changes, state({S: ("2024-01-02T00:00:00Z", 1)})])
    assert _rows(db) == [(1, "C", 9.5), (2, "back", 9.5), (3, "A3", 9.5), (4, "A4", 9.5),
                         (9, "A9", 9.5)]
    assert db.meta_rows()[0][2] == db.timestamp("2024-01-02 00:00:00")
    assert states[-1]["bookmarks"][S]["timestamp"] == "2024-01-02T00:00:00Z"
