"""target-dap-sql semantics against real databases (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.integration.helpers import (
    SUBMISSIONS,
    SUBMISSIONS_V1,
    bookmark,
    delete,
    snapshot,
    submissions_schema_message,
    upsert,
)
from tests.unit.target.dap_messages import (
    activate,
    record,
    run_cli,
    run_in_process,
    singer_schema,
    state,
    submission,
    web_logs_schema,
)
from tests.unit.target.target_db import TargetDb, db_fixture  # noqa: F401 (fixture)


def _grades(db: TargetDb) -> list[tuple]:
    return db.rows("canvas", "submissions", '"id", "grade"')


def test_upserts_deletes_and_last_action_per_key_wins(db: TargetDb) -> None:
    messages = [
        SUBMISSIONS_V1,
        *[upsert(i) for i in range(1, 6)],
        upsert(1, grade="B"),   # updated
        delete(2),              # deleted
        upsert(3, grade="C"),   # updated, then deleted
        delete(3),
        delete(4),              # deleted, then re-inserted
        upsert(4, grade="D"),
        delete(99),             # deleting a missing key: no-op
        bookmark("2024-01-15T12:00:00Z"),
    ]
    states = run_in_process({"sqlalchemy_url": db.url}, messages)
    assert _grades(db) == [(1, "B"), (4, "D"), (5, "A5")]
    assert states == [{"bookmarks": {SUBMISSIONS: {"timestamp": "2024-01-15T12:00:00Z",
                                                   "schema_version": 1}}}]

    # The same keys in a later batch (the table already holds them): full-row replacement.
    run_in_process({"sqlalchemy_url": db.url}, [
        SUBMISSIONS_V1,
        record(SUBMISSIONS, {"id": 5}, {"workflow_state": "graded"}),
        delete(1),
    ])
    assert db.rows("canvas", "submissions", '"id", "grade", "workflow_state"') == [
        (4, "D", "submitted"), (5, None, "graded")]


def test_values_round_trip(db: TargetDb) -> None:
    run_in_process({"sqlalchemy_url": db.url}, [SUBMISSIONS_V1, upsert(7)])
    (row,) = db.rows("canvas", "submissions")
    if db.kind == "postgres":
        import uuid
        from datetime import datetime

        assert row == (7, 1007, 1, "submitted", "A7", 9.5, False,
                       datetime(2024, 1, 5, 10, 0, 0, 123456),
                       uuid.UUID("00000000-0000-4000-8000-000000000007"), "essay 7",
                       {"kind": "video", "size": 7}, ["late", "ü"])
    else:
        assert row == (7, 1007, 1, "submitted", "A7", 9.5, 0, "2024-01-05 10:00:00.123456",
                       "00000000-0000-4000-8000-000000000007", "essay 7",
                       '{"kind":"video","size":7}', '["late","ü"]')


def test_snapshot_replaces_the_table_atomically(db: TargetDb) -> None:
    run_in_process({"sqlalchemy_url": db.url},
                   [SUBMISSIONS_V1, *snapshot(1, range(1, 6), grade="old"),
                    bookmark("2024-01-01T00:00:00Z")])
    assert _grades(db) == [(i, "old") for i in range(1, 6)]

    seen_during_load: list[list[tuple]] = []

    def second_snapshot() -> Iterator[dict[str, Any]]:
        yield SUBMISSIONS_V1
        for i, message in enumerate(snapshot(2, range(3, 9), grade="new")):
            if i == 5:  # after two staged commits of batch_size_rows=2
                seen_during_load.append(_grades(db))
            yield message
        yield bookmark("2024-02-01T00:00:00Z")

    run_in_process({"sqlalchemy_url": db.url, "batch_size_rows": 2}, second_snapshot())
    assert seen_during_load == [[(i, "old") for i in range(1, 6)]]
    assert _grades(db) == [(i, "new") for i in range(3, 9)]
    assert db.meta_rows()[0][2] == db.timestamp("2024-02-01 00:00:00")


def test_unfinished_snapshot_leaves_live_table_and_state_alone(db: TargetDb) -> None:
    run_in_process({"sqlalchemy_url": db.url},
                   [SUBMISSIONS_V1, *snapshot(1, range(1, 3), grade="old"),
                    bookmark("2024-01-01T00:00:00Z")])
    # The tap died mid-snapshot: no final ACTIVATE_VERSION, yet a STATE claiming a new bookmark.
    states = run_in_process({"sqlalchemy_url": db.url, "batch_size_rows": 1}, [
        SUBMISSIONS_V1, activate(SUBMISSIONS, 2), upsert(9),
        bookmark("2024-03-01T00:00:00Z"), upsert(10),
    ])
    assert _grades(db) == [(1, "old"), (2, "old")]
    assert states == [{"bookmarks": {SUBMISSIONS: {"timestamp": "2024-01-01T00:00:00Z",
                                                   "schema_version": 1}}}]
    assert db.meta_rows()[0][2] == db.timestamp("2024-01-01 00:00:00")


def test_canvas_logs_snapshot_merges_duplicate_keys(db: TargetDb) -> None:
    logs = singer_schema("canvas_logs", "web_logs", 1, web_logs_schema())
    w = "canvas_logs-web_logs"

    def hit(i: str, url: str) -> dict[str, Any]:
        return record(w, {"id": i}, {"url": url, "http_method": "get",
                                     "timestamp": "2024-01-01T00:00:00Z"})

    run_in_process({"sqlalchemy_url": db.url}, [
        logs, activate(w, 1), hit("a", "/1"), hit("b", "/2"), activate(w, 1),
        state({w: ("2024-01-02T00:00:00Z", 1)})])
    # A later snapshot (30-day window) lacks "a" and repeats "b" twice: history is kept.
    run_in_process({"sqlalchemy_url": db.url}, [
        logs, activate(w, 2), hit("b", "/2-first"), hit("c", "/3"), hit("b", "/2-last"),
        activate(w, 2), state({w: ("2024-02-02T00:00:00Z", 1)})])
    assert db.rows("canvas_logs", "web_logs", '"id", "url"') == [
        ("a", "/1"), ("b", "/2-last"), ("c", "/3")]


def test_schema_evolution_keeps_data(db: TargetDb) -> None:
    run_in_process({"sqlalchemy_url": db.url}, [SUBMISSIONS_V1, upsert(1)])
    run_in_process({"sqlalchemy_url": db.url}, [
        submissions_schema_message(2),
        upsert(2, workflow_state="pending_review", grade="x" * 600, late_days=3)])
    without_body = {k: v for k, v in submission(3).items() if k != "body"}
    run_in_process({"sqlalchemy_url": db.url}, [
        submissions_schema_message(3), record(SUBMISSIONS, {"id": 3}, without_body),
        bookmark("2024-03-01T00:00:00Z", 3)])
    assert db.rows("canvas", "submissions",
                   '"id", "workflow_state", length("grade"), "late_days", "body"') == [
        (1, "submitted", 2, None, "essay 1"),
        (2, "pending_review", 600, 3, "essay 2"),
        (3, "submitted", 2, None, None),
    ]
    assert db.meta_rows()[0][3] == 3


def test_meta_row_and_database_version_contents(db: TargetDb) -> None:
    run_in_process({"sqlalchemy_url": db.url}, [
        SUBMISSIONS_V1, *snapshot(1, range(1, 3), grade="g"),
        bookmark("2024-01-15T12:00:00.123456Z"),
    ])
    assert db.meta_rows() == [("canvas", "submissions", db.timestamp("2024-01-15 12:00:00.123456"),
                               1, "canvas", "submissions", "json")]
    # The DAP schema the SCHEMA message carried, without `properties.meta`.
    dap_schema = SUBMISSIONS_V1["schema"]["x-dap"]["schema"]
    expected_description = {**dap_schema, "properties": {
        k: v for k, v in dap_schema["properties"].items() if k != "meta"}}
    (description,) = db.query(f'SELECT "schema_description" FROM {db.meta_table()}')[0]
    assert description == json.dumps(expected_description, ensure_ascii=False,
                                      separators=(",", ":"))
    assert db.query('SELECT "version" FROM '
                    f'{db.table("instructure_dap", "database_version")}') == [(1,)]

    # An incremental later moves the same row (same id), never adds a second one.
    run_in_process({"sqlalchemy_url": db.url}, [
        SUBMISSIONS_V1, delete(1),
        bookmark("2024-01-16T00:00:00Z")])
    assert db.query(f'SELECT "id", "timestamp" FROM {db.meta_table()}') == [
        (1, db.timestamp("2024-01-16 00:00:00"))]


def test_generic_stream_gets_generic_table_and_no_meta_row(db: TargetDb) -> None:
    schema = {"type": "SCHEMA", "stream": "shop-orders", "key_properties": ["id"],
              "schema": {"properties": {"id": {"type": "integer"},
                                        "items": {"type": "array"},
                                        "note": {"type": ["string", "null"]}}}}
    run_in_process({"sqlalchemy_url": db.url}, [
        schema,
        {"type": "RECORD", "stream": "shop-orders",
         "record": {"id": 1, "items": [{"sku": "x"}], "note": None}},
        {"type": "STATE", "value": {"bookmarks": {"shop-orders": {"x": 1}}}},
    ])
    rows = db.rows("shop", "orders")
    assert rows == [(1, [{"sku": "x"}], None)] if db.kind == "postgres" else [
        (1, '[{"sku":"x"}]', None)]
    meta_exists = db.query(
        "SELECT count(*) FROM sqlite_master WHERE name = 'instructure_dap__table_sync'"
        if db.kind == "sqlite" else
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'instructure_dap'")
    assert meta_exists == [(0,)]


def test_soft_delete_when_hard_delete_is_off(db: TargetDb) -> None:
    run_in_process({"sqlalchemy_url": db.url, "hard_delete": False}, [
        SUBMISSIONS_V1, upsert(1), upsert(2)])
    run_in_process({"sqlalchemy_url": db.url, "hard_delete": False}, [
        SUBMISSIONS_V1, delete(2, ts="2024-02-02T02:02:02Z")])
    assert db.rows("canvas", "submissions", '"id", "grade", "_sdc_deleted_at"') == [
        (1, "A1", None), (2, "A2", db.timestamp("2024-02-02 02:02:02"))]


def test_soft_deletes_do_not_depend_on_batch_boundaries(db: TargetDb) -> None:
    """A key upserted and deleted in one batch keeps its row, marked deleted, as it does when a
    commit falls between the two; a key re-inserted after its delete is live again."""
    messages = [SUBMISSIONS_V1, upsert(1), upsert(2), upsert(3, grade="old"),
                delete(1, ts="2024-02-02T02:02:02Z"), delete(3), upsert(3, grade="new"),
                delete(2, ts="2024-03-03T03:03:03Z"), delete(2, ts="2024-04-04T04:04:04Z")]
    outcomes = []
    for rows in (1, 1000):
        if outcomes:
            db.query(f"DELETE FROM {db.table('canvas', 'submissions')} RETURNING 1")
        run_in_process({"sqlalchemy_url": db.url, "hard_delete": False,
                        "batch_size_rows": rows}, messages)
        outcomes.append(db.rows("canvas", "submissions", '"id", "grade", "_sdc_deleted_at"'))
    assert outcomes[0] == outcomes[1] == [
        (1, "A1", db.timestamp("2024-02-02 02:02:02")),
        (2, "A2", db.timestamp("2024-04-04 04:04:04")), (3, "new", None)]


def test_a_soft_deleted_record_of_a_keyless_stream_is_kept(db: TargetDb) -> None:
    schema = {"type": "SCHEMA", "stream": "shop-events", "key_properties": [], "schema": {
        "type": "object", "properties": {
            "id": {"type": "integer"}, "_sdc_deleted_at": {"type": ["string", "null"]}}}}
    events = [{"type": "RECORD", "stream": "shop-events", "record": {"id": 1}},
              {"type": "RECORD", "stream": "shop-events",
               "record": {"id": 2, "_sdc_deleted_at": "2024-05-05T00:00:00Z"}}]
    run_in_process({"sqlalchemy_url": db.url}, [schema, *events])
    assert db.rows("shop", "events") == [(1,)]  # hard deletes: not stored, no column for it
    db.query(f"DELETE FROM {db.table('shop', 'events')} RETURNING 1")
    run_in_process({"sqlalchemy_url": db.url, "hard_delete": False}, [schema, *events])
    assert db.rows("shop", "events", '"id", "_sdc_deleted_at" IS NOT NULL') == [(1, 0), (2, 1)]


def test_another_taps_table_versions_are_not_applied_and_it_says_so(
        db: TargetDb, tmp_path) -> None:
    """A start-only version cannot be told from a failed one (README): rows stay, one warning."""
    schema = {"type": "SCHEMA", "stream": "shop-items", "key_properties": ["id"],
              "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}
    messages = [schema]
    for version, ids in ((1, [1, 2, 3]), (2, [1, 2])):
        messages.append({"type": "ACTIVATE_VERSION", "stream": "shop-items", "version": version})
        messages += [{"type": "RECORD", "stream": "shop-items", "record": {"id": i},
                      "version": version} for i in ids]
    run = run_cli({"sqlalchemy_url": db.url}, messages, tmp_path)
    assert run.returncode == 0, run.stderr
    assert db.rows("shop", "items") == [(1,), (2,), (3,)]
    assert run.stderr.count("ACTIVATE_VERSION of 'shop-items' (not a DAP stream) is not "
                            "applied: rows the new version lacks stay in the table") == 1


def test_replaying_the_same_input_gives_the_same_database(db: TargetDb, tmp_path) -> None:
    messages = [
        SUBMISSIONS_V1, *snapshot(1, range(1, 20), grade="s"), bookmark("2024-01-01T00:00:00Z"),
        *[upsert(i, grade="u") for i in range(5, 25)],
        *[delete(i) for i in range(1, 4)],
        bookmark("2024-01-02T00:00:00Z"),
    ]
    config = {"sqlalchemy_url": db.url, "batch_size_rows": 7}
    first = run_cli(config, messages, tmp_path)
    assert first.returncode == 0, first.stderr
    after_first = db.dump()
    second = run_cli(config, messages, tmp_path)
    assert second.returncode == 0, second.stderr
    assert db.dump() == after_first
    assert first.states == second.states == [
        {"bookmarks": {SUBMISSIONS: {"timestamp": "2024-01-02T00:00:00Z", "schema_version": 1}}}]
    assert len(db.rows("canvas", "submissions")) == 21


def test_nested_objects_are_stored_as_dap_initdb_stores_them(db: TargetDb) -> None:
    """No null members; no member at all is NULL (DAP's TSV says \\N there, not {})."""
    media = {1: {}, 2: {"kind": None, "size": None}, 3: {"kind": None, "size": 3},
             4: None, 5: {"kind": "x\ty", "size": 0}}
    for activation in ([], [activate(SUBMISSIONS, 3)]):  # incremental, then snapshot
        run_in_process({"sqlalchemy_url": db.url}, [
            SUBMISSIONS_V1, *activation,
            *[upsert(i, media=value) for i, value in media.items()], *activation])
        stored = dict(db.rows("canvas", "submissions", '"id", "media"'))
        decoded = {k: json.loads(v) if isinstance(v, str) else v for k, v in stored.items()}
        assert decoded == {1: None, 2: None, 3: {"size": 3}, 4: None,
                           5: {"kind": "x\ty", "size": 0}}
