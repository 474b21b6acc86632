"""The input must continue what the database holds: a tap's state used with another database
(new, restored from an older backup, a deleted SQLite file) and a stream without DAP provenance
aimed at a DAP replica's table are refused before anything is written."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.helpers import (
    SUBMISSIONS,
    SUBMISSIONS_V1,
    bookmark,
    logged_errors,
    snapshot,
    upsert,
)
from tests.unit.target.dap_messages import run_cli
from tests.unit.target.target_db import TargetDb, db_fixture  # noqa: F401 (fixture)

T0, T1 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"


def _gap_error(db: TargetDb, position: str) -> str:
    table = ("instructure_dap__table_sync" if db.kind == "sqlite"
             else "instructure_dap.table_sync")
    # line 3: the first record, or the STATE moving the bookmark when no record came
    return (f"target-dap-sql: line 3, stream '{SUBMISSIONS}': the input continues "
            f"canvas.submissions from 2024-01-01T00:00:00Z (the tap's state), but this database "
            f"{position} "
            f"({table}): the changes in between would be missing. Continue from the database's "
            "own position (`target-dap-sql export-state` writes it as a state) or clear the "
            "stream's bookmark for a new snapshot")


@pytest.mark.parametrize("records", [[upsert(7)], []], ids=["changes", "no changes"])
def test_changes_onto_a_database_without_the_replica_are_refused(
        db: TargetDb, tmp_path: Path, records: list[dict[str, Any]]) -> None:
    # tap-dap (singer-sdk) writes the state it starts from first, then the changes since it.
    run = run_cli({"sqlalchemy_url": db.url},
                  [bookmark(T0), SUBMISSIONS_V1, *records, bookmark(T1)], tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        _gap_error(db, "holds no replica of it in table 'submissions'")]
    assert run.states == []
    assert db.rows("canvas", "submissions") == []
    assert db.meta_rows() == []


def test_changes_onto_an_older_replica_are_refused_a_newer_one_is_continued(
        db: TargetDb, tmp_path: Path) -> None:
    older = "2023-12-31T23:59:59Z"
    first = run_cli({"sqlalchemy_url": db.url},
                    [SUBMISSIONS_V1, *snapshot(1, [1, 2]), bookmark(older)], tmp_path)
    assert first.returncode == 0, first.stderr
    changes = [bookmark(T0), SUBMISSIONS_V1, upsert(1, grade="new"), bookmark(T1)]
    run = run_cli({"sqlalchemy_url": db.url}, changes, tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        _gap_error(db, "holds it up to 2023-12-31T23:59:59Z only")]
    assert db.rows("canvas", "submissions", '"id", "grade"') == [(1, "A1"), (2, "A2")]

    # Held up to the input's bookmark, or beyond it (the `dap` CLI synced it since): continued.
    for held in (T0, T1):
        run_cli({"sqlalchemy_url": db.url}, [SUBMISSIONS_V1, *snapshot(2, [1, 2]),
                                             bookmark(held)], tmp_path)
        run = run_cli({"sqlalchemy_url": db.url}, changes, tmp_path)
        assert run.returncode == 0, run.stderr
        assert db.rows("canvas", "submissions", '"id", "grade"') == [(1, "new"), (2, "A2")]


def test_a_schema_before_the_first_state_is_checked_the_same(
        db: TargetDb, tmp_path: Path) -> None:
    """Valid Singer in another order than singer-sdk's: the first STATE is where the tap starts,
    not a bookmark moving."""
    for records in ([upsert(7)], []):
        run = run_cli({"sqlalchemy_url": db.url},
                      [SUBMISSIONS_V1, bookmark(T0), *records, bookmark(T1)], tmp_path)
        assert run.returncode == 1
        assert logged_errors(run.stderr) == [_gap_error(db, "holds no replica of it in table "
                                                            "'submissions'")]
        assert db.meta_rows() == []


def test_a_replica_in_another_table_or_a_dropped_table_holds_nothing(
        db: TargetDb, tmp_path: Path) -> None:
    """A meta row vouches for its own table only: changes into a table under a new alias or
    default_target_schema, or into a table dropped since (its meta row kept), are refused."""
    run_cli({"sqlalchemy_url": db.url}, [SUBMISSIONS_V1, *snapshot(1, [1, 2]), bookmark(T0)],
            tmp_path)
    changes = [bookmark(T0), SUBMISSIONS_V1, upsert(3), bookmark(T1)]
    elsewhere = {"stream_maps": {SUBMISSIONS: {"__alias__": "canvas-subs"}}}
    run = run_cli({"sqlalchemy_url": db.url, **elsewhere}, changes, tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        _gap_error(db, "holds no replica of it in table 'subs'").replace(
            f"stream '{SUBMISSIONS}'", "stream 'canvas-subs'")]
    assert db.rows("canvas", "subs") == []

    _execute(db, f"DROP TABLE {db.table('canvas', 'submissions')}")  # its meta row stays
    run = run_cli({"sqlalchemy_url": db.url}, changes, tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        _gap_error(db, "holds no replica of it in table 'submissions'")]
    assert db.rows("canvas", "submissions") == []


def test_a_generic_stream_named_like_a_replicas_table_is_refused(
        db: TargetDb, tmp_path: Path) -> None:
    """SQLite and MySQL name schema `canvas`, table `users` `canvas__users`: a stream of that
    name writes that table (on PostgreSQL it is another table, `public.canvas__users`)."""
    run_cli({"sqlalchemy_url": db.url}, [SUBMISSIONS_V1, *snapshot(1, [1]), bookmark(T0)],
            tmp_path)
    generic = {"type": "SCHEMA", "stream": "canvas__submissions", "key_properties": ["id"],
               "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}
    run = run_cli({"sqlalchemy_url": db.url}, [generic, {
        "type": "RECORD", "stream": "canvas__submissions", "record": {"id": 9}}], tmp_path)
    assert run.returncode == (1 if db.kind == "sqlite" else 0), run.stderr
    assert db.rows("canvas", "submissions", '"id"') == [(1,)]


def _execute(db: TargetDb, sql: str) -> None:
    if db.kind == "sqlite":
        with sqlite3.connect(str(db.path)) as conn:
            conn.execute(sql)
    else:
        with psycopg.connect(db.url) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def test_a_bookmark_a_second_past_the_meta_row_is_not_a_gap(
        db: TargetDb, tmp_path: Path) -> None:
    """MySQL keeps the meta row's timestamp to the second: a fraction past it is no gap."""
    run_cli({"sqlalchemy_url": db.url}, [SUBMISSIONS_V1, *snapshot(1, [1]), bookmark(T0)],
            tmp_path)
    run = run_cli({"sqlalchemy_url": db.url}, [bookmark("2024-01-01T00:00:00.999Z"),
                                               SUBMISSIONS_V1, upsert(2), bookmark(T1)], tmp_path)
    assert run.returncode == 0, run.stderr
    assert db.rows("canvas", "submissions", '"id"') == [(1,), (2,)]


def test_a_stream_without_dap_provenance_never_writes_into_a_dap_replica(
        db: TargetDb, tmp_path: Path) -> None:
    run_cli({"sqlalchemy_url": db.url}, [SUBMISSIONS_V1, *snapshot(1, [1]), bookmark(T0)],
            tmp_path)
    generic = {"type": "SCHEMA", "stream": SUBMISSIONS, "key_properties": ["id"], "schema": {
        "type": "object", "properties": {"id": {"type": "integer"},
                                         "grade": {"type": ["string", "null"]}}}}
    record = {"type": "RECORD", "stream": SUBMISSIONS, "record": {"id": 1, "grade": "X"}}
    meta = "instructure_dap__table_sync" if db.kind == "sqlite" else "instructure_dap.table_sync"
    for messages in ([generic, record], [SUBMISSIONS_V1, generic, record]):
        run = run_cli({"sqlalchemy_url": db.url}, messages, tmp_path)
        assert run.returncode == 1
        assert logged_errors(run.stderr) == [
            f"target-dap-sql: line {len(messages) - 1}, stream '{SUBMISSIONS}': "
            + (f"table 'submissions' replicates DAP table canvas.submissions ({meta}); refusing to "
               "write this stream, which has no DAP provenance (no 'x-dap' annotation), into "
               "it: give it another name (stream maps `__alias__`) or its own "
               "default_target_schema" if messages[0] is generic else
               "the stream's SCHEMA lost its DAP provenance (no 'x-dap' annotation): its rows "
               "would mix into the DAP replica of canvas.submissions")]
        assert db.rows("canvas", "submissions", '"id", "grade"') == [(1, "A1")]
