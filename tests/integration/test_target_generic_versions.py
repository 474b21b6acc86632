"""ACTIVATE_VERSION of other taps' streams (target_dap_sql/versions.py): a new table version
replaces the table through a staging table, rows it no longer has deleted (or kept and marked
with `hard_delete: false`), on every database; STATE never claims a version before its swap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from target_dap_sql.errors import InputError
from tests.integration.replica_dbs import ReplicaDb, rdb_fixture, stamp  # noqa: F401 (fixture)
from tests.unit.target.dap_messages import compact, run_in_process

STREAM = "src-items"
SCHEMA = {"type": "SCHEMA", "stream": STREAM, "key_properties": ["id"], "schema": {
    "type": "object", "properties": {"id": {"type": "integer"}, "v": {"type": ["string", "null"]}}}}


def av(version: int, stream: str = STREAM) -> dict[str, Any]:
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}


def rec(i: int, v: str, version: int | None = None, stream: str = STREAM) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "RECORD", "stream": stream, "record": {"id": i, "v": v}}
    if version is not None:
        message["version"] = version
    return message


def bookmark(entry: dict[str, Any], stream: str = STREAM) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmarks": {stream: entry}}}


def _run(rdb: ReplicaDb, messages: list[dict[str, Any]], **config: Any) -> list[dict]:
    return run_in_process({"sqlalchemy_url": rdb.url, **config}, [SCHEMA, *messages])


def _rows(rdb: ReplicaDb, table: str = "items") -> list[tuple]:
    return rdb.rows("src", table, '"id", "v"')


def _deleted(rdb: ReplicaDb, table: str = "items") -> dict[int, str | None]:
    return {r[0]: stamp(r[1]) for r in rdb.rows("src", table, '"id", "_sdc_deleted_at"')}


def _version_one(rdb: ReplicaDb, **config: Any) -> None:
    _run(rdb, [av(1), *(rec(i, f"v1-{i}", 1) for i in (1, 2, 3)), av(1)], **config)
    assert _rows(rdb) == [(1, "v1-1"), (2, "v1-2"), (3, "v1-3")]


def test_start_and_end_markers_replace_the_table(rdb: ReplicaDb) -> None:
    """A pipelinewise-style tap: ACTIVATE_VERSION before and after the records."""
    _version_one(rdb)
    _run(rdb, [av(2), rec(1, "v2-1", 2), rec(2, "v2-2", 2), av(2)])
    assert _rows(rdb) == [(1, "v2-1"), (2, "v2-2")]
    assert [t for t in rdb.tables() if "staging" in t] == []


def test_soft_delete_marks_rows_the_new_version_lacks(rdb: ReplicaDb) -> None:
    _version_one(rdb, hard_delete=False)
    _run(rdb, [av(2), rec(1, "v2-1", 2), rec(2, "v2-2", 2), av(2)], hard_delete=False)
    assert _rows(rdb) == [(1, "v2-1"), (2, "v2-2"), (3, "v1-3")]
    marks = _deleted(rdb)
    assert marks[1] is None and marks[2] is None and marks[3] is not None
    _run(rdb, [av(3), rec(1, "v3-1", 3), av(3)], hard_delete=False)
    again = _deleted(rdb)
    assert again[3] == marks[3] and again[2] is not None and again[1] is None


def test_start_only_version_ends_with_the_input(rdb: ReplicaDb) -> None:
    """A singer-sdk tap sends ACTIVATE_VERSION only at the start: the input ending normally
    completes the version."""
    _version_one(rdb)
    _run(rdb, [av(2), rec(2, "v2-2", 2), rec(4, "v2-4", 2)])
    assert _rows(rdb) == [(2, "v2-2"), (4, "v2-4")]


def test_child_stream_versions_of_each_parent(rdb: ReplicaDb) -> None:
    """A singer-sdk child stream announces the same version at the start of each parent's sync
    (one parent without children): every parent's records are the version."""
    _version_one(rdb)
    _run(rdb, [av(2), rec(1, "p1", 2), av(2), av(2), rec(2, "p3", 2), av(2), rec(5, "p4", 2)])
    assert _rows(rdb) == [(1, "p1"), (2, "p3"), (5, "p4")]


def test_error_mid_version_keeps_the_table_and_state_behind(rdb: ReplicaDb) -> None:
    """STATE lines written while the version is staged keep the stream's bookmark as it was;
    an error before its end leaves the live table as it was."""
    _version_one(rdb)
    before = {"version": 1, "done": True}
    messages = [bookmark(before), av(2), rec(1, "v2-1", 2),
                bookmark({"version": 2, "progress": 1}), rec(2, "v2-2", 2),
                bookmark({"version": 2, "progress": 2}), {"type": "RECORD", "stream": STREAM,
                                                          "record": {"id": "not a number"}}]
    lines = [compact(m) for m in [SCHEMA, *messages]]
    out: list[dict] = []

    def feed() -> Iterator[bytes]:
        yield from lines

    import contextlib
    import io
    import json

    from target_dap_sql.target import TargetDapSQL

    stdout = io.StringIO()
    with pytest.raises(InputError), contextlib.redirect_stdout(stdout):
        TargetDapSQL(config={"sqlalchemy_url": rdb.url, "batch_max_seconds": 0}).listen(
            file_input=feed())  # type: ignore[arg-type]
    out = [json.loads(line) for line in stdout.getvalue().splitlines() if line.strip()]
    assert out, "STATE lines were written while the version was staged"
    assert all(s["bookmarks"][STREAM] == before for s in out)
    assert _rows(rdb) == [(1, "v1-1"), (2, "v1-2"), (3, "v1-3")]
    # Completed, the version's bookmark follows it.
    states = _run(rdb, [bookmark(before), av(2), rec(1, "v2-1", 2),
                        bookmark({"version": 2, "progress": 1}), av(2),
                        bookmark({"version": 2, "done": True})])
    assert states[-1]["bookmarks"][STREAM] == {"version": 2, "done": True}
    assert _rows(rdb) == [(1, "v2-1")]


@pytest.mark.parametrize("closing", [True, False])
def test_empty_version_over_rows_is_refused(rdb: ReplicaDb, closing: bool) -> None:
    _version_one(rdb)
    with pytest.raises(InputError) as caught:
        _run(rdb, [av(2), *([av(2)] if closing else [])])
    text = str(caught.value)
    assert ("refusing to replace table 'items', which has rows, by an empty table version "
            "(version 2)") in text
    assert "allow_empty_snapshots: true" in text and STREAM in text
    assert _rows(rdb) == [(1, "v1-1"), (2, "v1-2"), (3, "v1-3")]
    _run(rdb, [av(2), av(2)], allow_empty_snapshots=True)
    assert _rows(rdb) == []


def test_incremental_bookmark_keeps_rows(rdb: ReplicaDb) -> None:
    """A pipelinewise tap's INCREMENTAL sync announces its lasting version at every run: its
    records are changes, so nothing is replaced."""
    _version_one(rdb)
    _run(rdb, [bookmark({"version": 1, "replication_key": "id"}), av(1), rec(4, "new", 1),
               bookmark({"version": 1, "replication_key": "id", "replication_key_value": 4})])
    assert _rows(rdb) == [(1, "v1-1"), (2, "v1-2"), (3, "v1-3"), (4, "new")]


def test_closing_marker_after_live_records_replaces_nothing(rdb: ReplicaDb,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    """A pipelinewise tap's later FULL_TABLE runs send only the closing ACTIVATE_VERSION: the
    records went to the live table, older rows cannot be told apart; warned, nothing lost."""
    _version_one(rdb)
    _run(rdb, [rec(1, "v2-1", 2), av(2)])
    assert _rows(rdb) == [(1, "v2-1"), (2, "v1-2"), (3, "v1-3")]
    assert "came after records already loaded into the table" in caplog.text


def test_stream_map_alias_gets_the_version(rdb: ReplicaDb) -> None:
    maps = {"stream_maps": {STREAM: {"__alias__": "src-renamed"}}}
    run_in_process({"sqlalchemy_url": rdb.url, **maps},
                   [SCHEMA, av(1), rec(1, "a", 1), rec(2, "b", 1), av(1)])
    states = run_in_process({"sqlalchemy_url": rdb.url, **maps},
                            [SCHEMA, bookmark({"v": 1}), av(2), rec(2, "b2", 2),
                             bookmark({"v": 2})])
    assert _rows(rdb, "renamed") == [(2, "b2")]
    assert states[-1]["bookmarks"][STREAM] == {"v": 2}


@pytest.mark.parametrize("hard_delete", [True, False])
def test_keyless_stream(rdb: ReplicaDb, hard_delete: bool) -> None:
    """Without a key the new version replaces every row; with hard_delete false every old row
    stays, marked deleted (which rows the new version repeats cannot be told)."""
    schema = {**SCHEMA, "key_properties": []}
    config = {"sqlalchemy_url": rdb.url, "hard_delete": hard_delete}
    run_in_process(config, [schema, av(1), rec(1, "a", 1), rec(2, "b", 1), av(1)])
    run_in_process(config, [schema, av(2), rec(1, "a", 2), av(2)])
    if hard_delete:
        assert _rows(rdb) == [(1, "a")]
    else:
        rows = sorted((r[0], r[1], r[2] is None) for r in rdb.rows(
            "src", "items", '"id", "v", "_sdc_deleted_at"'))
        assert rows == [(1, "a", False), (1, "a", True), (2, "b", False)]
