"""SQLite stores every DAP property kind exactly as it did with per-value Python converters.

Values now reach SQLite through C adapters and are made text in SQL (sqlite_binding.py). The
oracle is the converter code the dialect ran before (`_timestamp_text`, `str` of UUIDs and dates,
the JSON re-encoders): stored rows must be equal in value and storage class. Also: deletes by a
JSON array of keys, a key updated and deleted in one batch, and a committed batch surviving
kill -9 of the process that wrote it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from target_dap_sql.decoding import RecordDecoder
from target_dap_sql.dialects import dialect_for_url
from target_dap_sql.dialects.base import Batch, compact_json_text, nested_object_text
from target_dap_sql.layout import LayoutOptions, TableLayout, build_layout
from tests.unit.target.dap_messages import META, singer_schema

VALUE_PROPERTIES: dict[str, Any] = {
    "big": {"type": "integer", "format": "int64"},
    "small": {"type": "integer", "format": "int32"},
    "ratio": {"type": "number", "format": "float64"},
    "price": {"type": "number", "exclusiveMinimum": -1e8, "exclusiveMaximum": 1e8,
              "multipleOf": 0.01},
    "flag": {"type": "boolean"},
    "name": {"type": "string", "maxLength": 50},
    "body": {"type": "string"},
    "at": {"type": "string", "format": "date-time"},
    "day": {"type": "string", "format": "date"},
    "clock": {"type": "string", "format": "time"},
    "uid": {"type": "string", "format": "uuid"},
    "ip": {"type": "string", "format": "ipv4"},
    "state": {"type": "string", "enum": ["a", "b", "__dap_unspecified__"]},
    "media": {"type": "object", "properties": {"kind": {"type": "string"},
                                               "size": {"type": "integer"}}},
    "tags": {"type": "array", "items": {"type": "string"}},
}
TIMESTAMPS = [
    "2024-03-17T23:30:55Z", "2024-03-17T23:30:55.5Z", "2024-03-17T23:30:55.123456Z",
    "2024-03-17T23:30:55.1234567Z", "2024-03-17 23:30:55z", "2024-03-17T23:30:55",
    "2024-03-17T23:30:55.000001", "2024-03-17T23:59:59.999999+05:30",
    "2024-01-01T00:00:00.000000-01:00", "2024-02-29T12:00:00+14:00", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z", "2024-03-17T23:30:55.999999-00:00",
    # offsets beyond SQLite's ±14:00 (its date functions read them as NULL)
    "2024-02-29T12:00:00.25+23:59", "2024-02-29T12:00:00-15:00", "0001-01-02T00:00:00+23:59",
    "9999-12-30T23:59:59.999999-23:59",
]
VALUES: list[dict[str, Any]] = [
    {"big": 2**63 - 1, "small": -2**31, "ratio": 0.1, "price": 12.34, "flag": True,
     "name": "Café ☃ 日本語", "body": "line\nbreak\ttab \"quoted\" \\ back", "at": TIMESTAMPS[0],
     "day": "2024-02-29", "clock": "23:59:59", "uid": "56D0C6E2-3260-4A64-BD82-3871B4E9A334",
     "ip": "10.0.0.1", "state": "a", "media": {"kind": "vidéo", "size": None},
     "tags": ["x", "ü", None]},
    {"big": -2**63, "small": 2**31 - 1, "ratio": 5e-324, "price": -0.01, "flag": False,
     "name": "", "body": "\U0001F600 emoji", "at": TIMESTAMPS[1], "day": "0001-01-01",
     "uid": "56d0c6e232604a64bd823871b4e9a334", "state": "__dap_unspecified__",
     "media": {"kind": None, "size": None}, "tags": []},
    {"big": 0, "ratio": 1.7976931348623157e308, "flag": None, "at": None, "day": None,
     "uid": None, "media": None, "tags": None},
    *({"big": i, "ratio": -0.0 if i % 2 else 1e21, "at": ts} for i, ts in enumerate(TIMESTAMPS)),
]


def _timestamp_text(value: dt.datetime) -> str:
    """What the dialect stored for a decoded datetime before (its converter, verbatim)."""
    if value.tzinfo is dt.UTC:
        return value.isoformat(" ", "microseconds")[:26]
    if value.tzinfo is not None and value.utcoffset() != dt.timedelta(0):
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _old_converters(layout: TableLayout) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for i, c in enumerate(layout.record_columns):
        kind = c.type.kind
        if kind == "timestamp":
            out.append((i, _timestamp_text))
        elif kind == "json" and c.type.nested:
            out.append((i, nested_object_text(c.nullable)))
        elif kind in ("json", "array"):
            out.append((i, compact_json_text))
        elif kind in ("uuid", "date"):
            out.append((i, str))
    return out


def _layout() -> TableLayout:
    dap = {"type": "object", "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                "required": ["id"]},
        "value": {"type": "object", "properties": VALUE_PROPERTIES},
        "meta": META}}
    message = singer_schema("canvas", "kinds", 1, dap)
    return build_layout(message["stream"], message["schema"], message["key_properties"],
                        LayoutOptions())


def _records() -> list[bytes]:
    return [json.dumps({"id": i, **v, "meta": {"action": "U", "ts": "2024-01-01T00:00:00Z"}},
                       ensure_ascii=False).encode() for i, v in enumerate(VALUES)]


def _typed(rows: list[tuple]) -> list[tuple]:
    """Rows with each value's storage class, so 1 (INTEGER) and 1.0 (REAL) differ."""
    return [tuple((type(v).__name__, v) for v in row) for row in rows]


def _load(db: Path, layout: TableLayout, rows: list[tuple], *, via: str,
          deletes: list[tuple] = ()) -> list[tuple]:
    dialect = dialect_for_url(f"sqlite:///{db}")
    dialect.ensure_meta_tables()
    dialect.prepare_table(layout, drop_removed_columns=False)
    if via == "old":  # the old way: converted values, one bind per value
        conn = dialect.conn
        names = ", ".join(f'"{c.name}"' for c in layout.record_columns)
        marks = ", ".join("?" for _ in layout.record_columns)
        conn.executemany(f'INSERT INTO "canvas__kinds" ({names}) VALUES ({marks})', rows)
        conn.executemany('DELETE FROM "canvas__kinds" WHERE "id" = ?',
                         [(r[0],) for r in deletes])
    else:
        dialect.write_batch(layout, Batch(list(rows), list(deletes)), staging=False, meta=None)
    dialect.close()
    with sqlite3.connect(db) as conn:
        return conn.execute('SELECT * FROM "canvas__kinds" ORDER BY "id"').fetchall()


def test_every_kind_is_stored_as_the_python_converters_stored_it(tmp_path: Path) -> None:
    layout = _layout()
    dialect = dialect_for_url("sqlite://")
    new = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))
    old = RecordDecoder(layout, dialect.field_type, _old_converters(layout))
    records = _records()
    new_rows = [new.decode(r, "canvas-kinds")[1] for r in records]
    old_rows = [old.decode(r, "canvas-kinds")[1] for r in records]
    stored = _load(tmp_path / "new.db", layout, new_rows, via="write_batch")
    expected = _load(tmp_path / "old.db", layout, old_rows, via="old")
    assert len(stored) == len(VALUES)
    assert _typed(stored) == _typed(expected)
    at = [c.name for c in layout.columns].index("at")
    assert {row[at] for row in stored} >= {"2024-03-17 23:30:55.000000",
                                           "2024-03-17 18:29:59.999999",  # +05:30, no rounding
                                           "2024-01-01 01:00:00.000000"}


def test_deletes_by_key_array_and_a_key_updated_then_deleted(tmp_path: Path) -> None:
    layout = _layout()
    decoder = RecordDecoder(layout, dialect_for_url("sqlite://").field_type,
                            dialect_for_url("sqlite://").converters(layout))
    rows = [decoder.decode(r, "canvas-kinds")[1] for r in _records()]
    db = tmp_path / "d.db"
    _load(db, layout, rows, via="write_batch")
    # One batch: row 0 updated (upsert), rows 1 and 2 deleted, a key never stored deleted.
    width = len(layout.record_columns)
    updated = (0, *rows[0][1:3], 99.5, *rows[0][4:])
    gone = [(1, *[None] * (width - 1)), (2, *[None] * (width - 1)),
            (12345, *[None] * (width - 1))]
    stored = _load(db, layout, [updated], via="write_batch", deletes=gone)
    assert [r[0] for r in stored] == [0, *range(3, len(VALUES))]
    assert stored[0][3] == 99.5


def test_a_key_updated_and_deleted_in_one_input_batch_ends_deleted(tmp_path: Path) -> None:
    from tests.unit.target.dap_messages import record, run_in_process

    layout = _layout()
    db = tmp_path / "t.db"
    schema = singer_schema("canvas", "kinds", 1, {"type": "object", "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                "required": ["id"]},
        "value": {"type": "object", "properties": VALUE_PROPERTIES}, "meta": META}})
    stream = layout.stream
    messages = [schema,
                record(stream, {"id": 1}, {"at": "2024-01-01T00:00:00Z"}),
                record(stream, {"id": 2}, {"at": "2024-01-01T00:00:00Z"}),
                record(stream, {"id": 1}, {"at": "2024-01-02T00:00:00Z"}),
                record(stream, {"id": 1}, action="D"),   # updated, then deleted
                record(stream, {"id": 3}, action="D"),
                record(stream, {"id": 3}, {"at": "2024-01-03T00:00:00.5Z"})]  # deleted, back
    run_in_process({"sqlalchemy_url": f"sqlite:///{db}"}, messages)
    with sqlite3.connect(db) as conn:
        assert conn.execute('SELECT "id", "at" FROM "canvas__kinds" ORDER BY "id"').fetchall() \
            == [(2, "2024-01-01 00:00:00.000000"), (3, "2024-01-03 00:00:00.500000")]


_ADAPTERS_PUT_BACK = textwrap.dedent("""
    import datetime as dt, sqlite3, sys, uuid
    import msgspec
    from target_dap_sql.dialects import dialect_for_url, sqlite_binding
    key = (type(None), sqlite3.PrepareProtocol)
    before = sqlite3.adapters.get(key)
    first = dialect_for_url("sqlite:///" + sys.argv[1] + "/a.db")
    second = dialect_for_url("sqlite:///" + sys.argv[1] + "/b.db")
    first.connect()
    second.connect()
    installed = sqlite3.adapters[key]
    assert installed is sqlite_binding._installed[key] and installed is not before
    first.close()
    assert sqlite3.adapters[key] is installed  # second still open
    second.close()
    assert sqlite3.adapters.get(key) is before
    assert msgspec.json.encode(uuid.UUID(int=1))  # (msgspec itself is untouched)
    print("ok")
""")


def test_adapters_are_put_back_when_the_last_connection_closes(tmp_path: Path) -> None:
    # A fresh interpreter: the adapters are process-wide, and a connection another test left
    # open in this one would keep ours installed.
    done = subprocess.run([sys.executable, "-c", _ADAPTERS_PUT_BACK, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from target_dap_sql.decoding import RecordDecoder
    from target_dap_sql.dialects import dialect_for_url
    from target_dap_sql.dialects.base import Batch
    from tests.unit.target.test_sqlite_values import _layout, _records
    layout = _layout()
    dialect = dialect_for_url("sqlite:///" + sys.argv[1])
    dialect.ensure_meta_tables()
    dialect.prepare_table(layout, drop_removed_columns=False)
    decoder = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))
    rows = [decoder.decode(r, "s")[1] for r in _records()]
    dialect.write_batch(layout, Batch(rows[:3], []), staging=False, meta=None)
    dialect.settle()              # committed (a slice: it loaded on the background thread)
    batch = Batch(rows[3:], [])   # a slice's way (write_batch): rows bound, image handed over
    dialect._bound, dialect._image = batch, dialect._bind(layout, batch, False)
    dialect._begin()              # the image in place of the rows database, BEGIN
    dialect._apply(layout, batch, False)   # and the rows moved into the table
    os.kill(os.getpid(), signal.SIGKILL)   # mid-transaction: the second batch never commits
""")


def test_a_committed_batch_survives_kill_9_and_an_uncommitted_one_is_gone(
        tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(db)],
                          cwd=Path(__file__).resolve().parents[3], capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve()
                                                                .parents[3])})
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    with sqlite3.connect(db) as conn:
        assert conn.execute('SELECT "id" FROM "canvas__kinds" ORDER BY "id"').fetchall() == [
            (0,), (1,), (2,)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_commits_that_move_a_bookmark_are_synced_and_slices_are_not(tmp_path: Path) -> None:
    """WAL + FULL for a commit with a meta row (STATE may cover it once it returns: it must
    survive a power cut); WAL + NORMAL for a slice without one (survives kill -9, not a power
    cut; no bookmark vouches for it, so it would be fetched again)."""
    from target_dap_sql.meta import Bookmark, meta_row_for

    layout = _layout()
    dialect = dialect_for_url(f"sqlite:///{tmp_path / 's.db'}")
    dialect.ensure_meta_tables()
    dialect.prepare_table(layout, drop_removed_columns=False)
    decoder = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))
    rows = [decoder.decode(r, "s")[1] for r in _records()]

    def synchronous() -> int:
        dialect.settle()
        return dialect.conn.execute("PRAGMA synchronous").fetchone()[0]

    assert dialect.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    dialect.write_batch(layout, Batch(rows[:2], []), staging=False, meta=None)
    assert synchronous() == 1  # NORMAL
    meta = meta_row_for(layout, Bookmark(dt.datetime(2024, 1, 1), 1))
    dialect.write_batch(layout, Batch(rows[2:4], []), staging=False, meta=meta)
    assert synchronous() == 2  # FULL
    dialect.write_batch(layout, Batch(rows[4:6], []), staging=False, meta=None)
    dialect.update_meta(meta)  # any other transaction: durable again
    assert synchronous() == 2
    dialect.close()


def _bound_elsewhere() -> list[Any]:
    """What an unrelated sqlite3 connection of the same process stores for these values."""
    conn = sqlite3.connect(":memory:")
    out: list[Any] = []
    for value in (dt.datetime(2024, 1, 2, 3, 4, 5), dt.date(2024, 1, 2), True, None,
                  uuid.UUID(int=1)):
        try:
            out.append(conn.execute("SELECT ?, typeof(?)", (value, value)).fetchone())
        except sqlite3.Error as exc:
            out.append(type(exc).__name__)
    conn.close()
    return out


def test_other_sqlite3_users_in_the_process_bind_as_without_the_target(tmp_path: Path) -> None:
    """`sqlite3` adapters are process-global: an app embedding dap_replicator that also uses
    sqlite3 (another thread, or between batches) must store what it stored without us."""
    import threading
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: default date adapters
    before = _bound_elsewhere()
    layout = _layout()
    dialect = dialect_for_url(f"sqlite:///{tmp_path / 'o.db'}")
    dialect.ensure_meta_tables()
    dialect.prepare_table(layout, drop_removed_columns=False)
    assert _bound_elsewhere() == before  # connection open, between batches
    decoder = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))
    rows = [decoder.decode(r, "s")[1] for r in _records()]
    seen: list[list[Any]] = []
    stop = threading.Event()

    def other_thread() -> None:
        while not stop.is_set():
            seen.append(_bound_elsewhere())

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        for i in range(200):  # background loads while the other thread binds
            batch = [(i * 100 + j, *row[1:]) for j, row in enumerate(rows)]
            dialect.write_batch(layout, Batch(batch, []), staging=False, meta=None)
        dialect.settle()
    finally:
        stop.set()
        thread.join()
    assert seen and all(s == before for s in seen)
    stored = dialect.conn.execute('SELECT "at" FROM "canvas__kinds" WHERE "id" = 0').fetchone()
    assert stored == ("2024-03-17 23:30:55.000000",)
    dialect.close()


def test_an_adapter_the_app_registers_meanwhile_binds_its_values_not_ours(
        tmp_path: Path) -> None:
    key = (dt.datetime, sqlite3.PrepareProtocol)
    saved = sqlite3.adapters.get(key)
    layout = _layout()
    dialect = dialect_for_url(f"sqlite:///{tmp_path / 'r.db'}")
    dialect.ensure_meta_tables()
    dialect.prepare_table(layout, drop_removed_columns=False)
    try:
        sqlite3.register_adapter(dt.datetime, lambda v: "app:" + v.isoformat())
        decoder = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))
        rows = [decoder.decode(r, "s")[1] for r in _records()]
        dialect.write_batch(layout, Batch(rows[:1], []), staging=False, meta=None)
        dialect.settle()
        assert dialect.conn.execute('SELECT "at" FROM "canvas__kinds"').fetchone() == (
            "2024-03-17 23:30:55.000000",)
        other = sqlite3.connect(":memory:")
        assert other.execute("SELECT ?", (dt.datetime(2024, 1, 1),)).fetchone() == (
            "app:2024-01-01T00:00:00",)
        dialect.close()
        # the app's adapter stays after the last connection closes
        assert other.execute("SELECT ?", (dt.datetime(2024, 1, 1),)).fetchone() == (
            "app:2024-01-01T00:00:00",)
    finally:
        if saved is None:
            sqlite3.adapters.pop(key, None)
        else:
            sqlite3.adapters[key] = saved


@pytest.mark.parametrize("staging", [False, True])
def test_a_timestamp_outside_years_1_to_9999_in_utc_is_an_error_not_a_value(
        tmp_path: Path, staging: bool) -> None:
    from target_dap_sql.errors import DatabaseError

    layout = _layout()
    dialect = dialect_for_url(f"sqlite:///{tmp_path / 'y.db'}")
    dialect.ensure_meta_tables()
    dialect.prepare_table(layout, drop_removed_columns=False)
    table = '"canvas__kinds"'
    if staging:  # converted in the move on the load thread (`utc_text`): fails there, rolled back
        dialect.create_staging(layout)
        table = f'"{dialect.staging_table(layout)}"'
    decoder = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))
    for at in ("0001-01-01T00:00:00+05:30", "9999-12-31T23:00:00-01:00"):
        record = json.dumps({"id": 1, "at": at, "meta": {"action": "U"}}).encode()
        row = decoder.decode(record, "s")[1]
        try:
            dialect.write_batch(layout, Batch([row], []), staging=staging, meta=None)
            dialect.settle()
        except DatabaseError as exc:
            assert str(exc).startswith("loading stream 'canvas-kinds': ")
            assert "out of range" in str(exc) and at in str(exc)
        else:
            stored = dialect.conn.execute(f'SELECT "at" FROM {table}').fetchall()
            raise AssertionError(f"{at} stored as {stored}")
    assert dialect.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)
    # The connection is usable: the next batch loads (nothing left staged or begun).
    ok = decoder.decode(json.dumps({"id": 2, "at": "2024-01-01T00:00:00Z",
                                    "meta": {"action": "U"}}).encode(), "s")[1]
    dialect.write_batch(layout, Batch([ok], []), staging=staging, meta=None)
    dialect.settle()
    assert dialect.conn.execute(f'SELECT "id", "at" FROM {table}').fetchall() == [
        (2, "2024-01-01 00:00:00.000000")]
    dialect.close()


@pytest.mark.parametrize("images", ["image", "too large for one", "no serialize"])
def test_every_load_path_stores_the_same_values(tmp_path: Path, images: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice that loads in the background is bound into a rows database of its own and moved
    from its image by one INSERT … SELECT (sqlite_rows.py), or, too large for an image or where
    sqlite3 has no `serialize`, bound on the load thread; a batch with a meta row is upserted
    row by row; the snapshot's last batch is bound into `dap_rows` inside the swap's
    transaction. All store what the old per-value converters stored."""
    from datetime import datetime

    from target_dap_sql.dialects import sqlite as sqlite_dialect
    from target_dap_sql.dialects.sqlite_rows import RowsBinder

    if images == "too large for one":  # what `bind` says past SQLite's 1 GiB image cap
        monkeypatch.setattr(RowsBinder, "bind", lambda self, *args: None)
    elif images == "no serialize":
        monkeypatch.setattr(sqlite_dialect, "IMAGES", False)

    from target_dap_sql.meta import Bookmark, meta_row_for

    layout = _layout()
    dialect = dialect_for_url("sqlite://")
    new = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))
    old = RecordDecoder(layout, dialect.field_type, _old_converters(layout))
    records = _records()
    rows = [new.decode(r, "canvas-kinds")[1] for r in records]
    expected = _typed(_load(tmp_path / "old.db", layout,
                            [old.decode(r, "canvas-kinds")[1] for r in records], via="old"))
    meta = meta_row_for(layout, Bookmark(datetime(2024, 1, 1), 1))
    half = len(rows) // 2

    def stored(db: Path, load: Any) -> list[tuple]:
        target = dialect_for_url(f"sqlite:///{db}")
        target.ensure_meta_tables()
        target.prepare_table(layout, drop_removed_columns=False)
        load(target)
        target.close()
        with sqlite3.connect(db) as conn:
            return _typed(conn.execute('SELECT * FROM "canvas__kinds" ORDER BY "id"').fetchall())

    def with_meta(target: Any) -> None:  # foreground: the batch moves the bookmark
        target.write_batch(layout, Batch(rows[:half], []), staging=False, meta=None)
        target.write_batch(layout, Batch(rows[half:], []), staging=False, meta=meta)

    def snapshot(target: Any) -> None:  # staging slices, then the last batch in the swap
        target.create_staging(layout)
        target.write_batch(layout, Batch(rows[:half], []), staging=True, meta=None)
        target.swap_staging(layout, Batch(rows[half:], []), meta)

    assert stored(tmp_path / "meta.db", with_meta) == expected
    assert stored(tmp_path / "snap.db", snapshot) == expected
    # The same key twice in a row of batches: the later batch's values win.
    changed = [(r[0], *r[1:3], 1.5, *r[4:]) for r in rows[:2]]

    def twice(target: Any) -> None:
        target.write_batch(layout, Batch(rows, []), staging=False, meta=None)
        target.write_batch(layout, Batch(changed, []), staging=False, meta=None)

    again = stored(tmp_path / "twice.db", twice)
    assert [r[3] for r in again[:3]] == [("float", 1.5), ("float", 1.5), expected[2][3]]
    assert again[2:] == expected[2:]


def test_dropping_a_column_of_a_big_table_does_not_hold_the_table_in_memory(
        tmp_path: Path) -> None:
    """`temp_store = MEMORY` also keeps SQLite's statement journals in memory: `ALTER TABLE …
    DROP COLUMN` (drop_removed_columns) inside the target's transaction journalled every page
    of the table in RAM (a 200 MB table took +270 MB). Snapshot rows are bound into an
    attached in-memory database instead; statement journals spill to disk as before."""
    script = textwrap.dedent(f"""
        import resource, sqlite3
        from target_dap_sql.dialects import dialect_for_url
        from target_dap_sql.layout import LayoutOptions, build_layout
        db = {str(tmp_path / 'big.db')!r}
        props = {{"id": {{"type": "integer"}}, "a": {{"type": "string"}},
                  "b": {{"type": "string"}}}}
        layout = build_layout("big", {{"type": "object", "properties": props}}, ["id"],
                              LayoutOptions())
        dialect = dialect_for_url(f"sqlite:///{{db}}")
        dialect.ensure_meta_tables()
        dialect.prepare_table(layout, drop_removed_columns=False)
        dialect.close()
        with sqlite3.connect(db) as conn:
            conn.executemany('INSERT INTO "big" VALUES (?, ?, ?)',
                             ((i, "x" * 200, "y" * 200) for i in range(400_000)))
        del props["b"]
        layout = build_layout("big", {{"type": "object", "properties": props}}, ["id"],
                              LayoutOptions())
        dialect = dialect_for_url(f"sqlite:///{{db}}")
        dialect.conn
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        dialect.prepare_table(layout, drop_removed_columns=True)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        dialect.close()
        print((after - before) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[3])
    assert int(out.stdout.split()[-1]) < 40, out.stdout  # MB; the table is ~170 MB


def test_a_stream_named_like_the_rows_table_of_a_snapshot_gets_its_own_table(
        tmp_path: Path) -> None:
    """A snapshot slice's rows go through `dap_rows."_dap_rows_<width>"` (sqlite.py): another
    tap's stream of that name, in the same run, is still created in the main database (an
    unqualified `PRAGMA table_info` found the rows table and called it the stream's)."""
    layout = _layout()
    dialect = dialect_for_url(f"sqlite:///{tmp_path / 'n.db'}")
    dialect.ensure_meta_tables()
    dialect.prepare_table(layout, drop_removed_columns=False)
    dialect.create_staging(layout)
    rows = [RecordDecoder(layout, dialect.field_type, dialect.converters(layout)).decode(
        r, "s")[1] for r in _records()]
    dialect.write_batch(layout, Batch(rows, []), staging=True, meta=None)
    dialect.swap_staging(layout, Batch([], []), None)
    name = f"_dap_rows_{len(layout.record_columns)}"
    other = build_layout(name, {"type": "object", "properties": {
        "id": {"type": "integer"}, "v": {"type": "string"}}}, ["id"], LayoutOptions())
    dialect.prepare_table(other, drop_removed_columns=False)
    row = RecordDecoder(other, dialect.field_type, dialect.converters(other)).decode(
        b'{"id": 1, "v": "x"}', name)[1]
    dialect.write_batch(other, Batch([row], []), staging=False, meta=None)
    dialect.settle()
    assert dialect.conn.execute(f'SELECT * FROM main."{name}"').fetchall() == [(1, "x")]
    dialect.close()


def test_deletes_by_a_timestamp_and_uuid_key_and_soft_deletes_store_utc(tmp_path: Path) -> None:
    """Keys of other kinds are bound per row (`_delete`): a timestamp key given with another
    offset, or a UUID in capitals, matches the stored row; `_sdc_deleted_at` with an offset is
    stored in UTC. And a value msgspec does not know (a str subclass) binds as sqlite3 binds it."""
    dap = {"type": "object", "properties": {
        "key": {"type": "object", "required": ["uid", "at"], "properties": {
            "uid": {"type": "string", "format": "uuid"},
            "at": {"type": "string", "format": "date-time"}}},
        "value": {"type": "object", "properties": {"name": {"type": "string"}}},
        "meta": META}}
    message = singer_schema("canvas", "pairs", 1, dap)
    uid = "56d0c6e2-3260-4a64-bd82-3871b4e9a334"

    def load(options: LayoutOptions, deletes: list[dict[str, Any]]) -> list[tuple]:
        layout = build_layout(message["stream"], message["schema"], message["key_properties"],
                              options)
        db = tmp_path / f"p{len(list(tmp_path.iterdir()))}.db"
        dialect = dialect_for_url(f"sqlite:///{db}")
        dialect.ensure_meta_tables()
        dialect.prepare_table(layout, drop_removed_columns=False)
        decoder = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))

        class Text(str):
            pass

        rows = [decoder.decode(json.dumps(
            {"uid": uid, "at": at, "name": "n", "meta": {"action": "U"}}).encode(), "s")[1]
            for at in ("2024-03-17T23:30:55Z", "2024-03-17T23:30:56.5Z")]
        name = [c.name for c in layout.record_columns].index("name")
        rows[1] = (*rows[1][:name], Text("subclass"), *rows[1][name + 1:])
        dialect.write_batch(layout, Batch(rows, []), staging=False, meta=None)
        gone = [decoder.decode(json.dumps({**d, "meta": {"action": "D"}}).encode(), "s")[1]
                for d in deletes]
        dialect.write_batch(layout, Batch([], gone), staging=False, meta=None)
        dialect.close()
        with sqlite3.connect(db) as conn:
            return conn.execute('SELECT * FROM "canvas__pairs" ORDER BY "at"').fetchall()

    hard = load(LayoutOptions(), [{"uid": uid.upper(), "at": "2024-03-18T05:00:55+05:30"}])
    assert hard == [(uid, "2024-03-17 23:30:56.500000", "subclass")]
    soft = load(LayoutOptions(hard_delete=False), [
        {"uid": uid.replace("-", ""), "at": "2024-03-17T22:30:56.500000-01:00",
         "_sdc_deleted_at": "2024-03-18T01:00:00.25+01:00"}])
    assert soft == [(uid, "2024-03-17 23:30:55.000000", "n", None),
                    (uid, "2024-03-17 23:30:56.500000", "subclass", "2024-03-18 00:00:00.250000")]


def test_a_large_slice_leaves_nothing_in_the_next_slices_image() -> None:
    """Each slice is bound into an empty rows database: a slice of small rows after one of
    large rows is an image of a few pages, not of the large slice's size."""
    from target_dap_sql.dialects.sqlite_rows import ROWS_DB, RowsBinder

    binder = RowsBinder()
    create = f'CREATE TABLE IF NOT EXISTS {ROWS_DB}."_dap_rows_2" (c0, c1)'
    insert = f'INSERT INTO {ROWS_DB}."_dap_rows_2" VALUES (?, ?)'
    try:
        large = binder.bind(create, insert, [(i, "x" * 1_000_000) for i in range(8)])
        small = binder.bind(create, insert, [(i, "y") for i in range(10)])
    finally:
        binder.close()
    assert large is not None and len(large) > 8_000_000
    assert small is not None and len(small) < 20_000
    # wider than an image may be: bound on the loading connection instead (sqlite.py)
    binder = RowsBinder()
    try:
        assert binder.bind(create, insert, [(i, "x" * 1_000_000) for i in range(40)]) is None
        assert binder.bind(create, insert, [(1, "y")]) is not None
    finally:
        binder.close()
    with sqlite3.connect(":memory:") as conn:
        conn.deserialize(small)
        assert conn.execute('SELECT * FROM "_dap_rows_2"').fetchall() == [
            (i, "y") for i in range(10)]
