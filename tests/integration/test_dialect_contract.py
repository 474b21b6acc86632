"""The Dialect contract: every database runs through the same cases, through the same interface.

Each case drives a dialect the way the loader and the admin commands do (prepare_table,
write_batch, staging and swap, meta rows, count and drop) and checks the outcome in the database
over a connection of its own. What differs between databases is only data in `CASES`
(dialect_cases.py) — the types each column gets and the names each table gets. Adding a
dialect: its module, its line in target_dap_sql/dialects/__init__.py, and its entry in `CASES`
(CONTRIBUTING.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import inspect
import json
import pickle
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from target_dap_sql.decoding import RecordDecoder
from target_dap_sql.dialects import DIALECTS, Batch, Dialect, dialect_for_url
from target_dap_sql.dialects.connection import ConnectionDialect
from target_dap_sql.errors import DatabaseError, SchemaError
from target_dap_sql.layout import LayoutOptions, TableLayout, build_layout
from target_dap_sql.meta import MetaRow, bookmark_from_state, meta_row_for
from tests.integration.dialect_cases import CASES, EVERY_KIND, EVERY_KIND_COLUMNS, DialectCase
from tests.unit.target.dap_messages import (
    META,
    record,
    singer_schema,
    submission,
    submissions_schema,
)

S = "canvas-submissions"


@dataclass
class Harness:
    """A dialect on a fresh database, with the case that says what to expect of it."""

    case: DialectCase
    url: str
    dialect: Dialect

    def layout(self, version: int = 1, *, stream_schema: dict | None = None,
               keys: list[str] | None = None, stream: str = S,
               options: LayoutOptions | None = None) -> TableLayout:
        message = singer_schema("canvas", "submissions", version, submissions_schema(version))
        return build_layout(stream, stream_schema or message["schema"],
                            message["key_properties"] if keys is None else keys,
                            options or LayoutOptions())

    def rows(self, layout: TableLayout, records: list[dict[str, Any]]) -> list[tuple]:
        """Rows as the loader hands them to the dialect: decoded with its field types."""
        decoder = RecordDecoder(layout, self.dialect.field_type, self.dialect.converters(layout))
        return [decoder.decode(json.dumps(r["record"]).encode(), layout.stream)[1]
                for r in records]

    def upserts(self, layout: TableLayout, *ids: int, **overrides: Any) -> list[tuple]:
        return self.rows(layout, [record(S, {"id": i}, submission(i, **overrides)) for i in ids])

    def deletes(self, layout: TableLayout, *ids: int) -> list[tuple]:
        return self.rows(layout, [record(S, {"id": i}, action="D") for i in ids])

    def query(self, sql: str) -> list[tuple]:
        return self.case.query(self.url, sql)

    def grades(self, table: str = "submissions") -> list[tuple]:
        qualified = self.dialect.qualified_name("canvas", table)
        return [(int(i), g) for i, g in self.query(f'SELECT "id", "grade" FROM {qualified} '
                                                    'ORDER BY "id"')]

    def column_types(self, table: str = "submissions") -> dict[str, str]:
        sql = self.case.column_types_sql.format(schema="canvas", table=table)
        return {name: kind for name, kind in self.query(sql)}

    def tables(self, schema: str = "canvas") -> list[str]:
        return [r[0] for r in self.query(self.case.tables_sql.format(schema=schema))]


def meta_row(layout: TableLayout, timestamp: str, version: int = 1) -> MetaRow:
    """The table_sync row for a bookmark (whole seconds: what every database keeps exactly)."""
    bookmark = bookmark_from_state(
        {"bookmarks": {layout.stream: {"timestamp": timestamp, "schema_version": version}}},
        layout.stream)
    assert bookmark is not None
    return meta_row_for(layout, bookmark)


@pytest.fixture(name="db", params=[pytest.param(name, marks=case.marks)
                                   for name, case in CASES.items()])
def harness_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    case = CASES[request.param]
    url = (request.getfixturevalue(case.server) if case.server
           else f"{case.name}:///{tmp_path}/dap.db")
    dialect = dialect_for_url(url)
    assert dialect.name == case.name
    dialect.ensure_meta_tables()
    try:
        yield Harness(case, url, dialect)
    finally:
        dialect.close()


def _load(db: Harness, layout: TableLayout, upserts: Sequence[tuple] = (),
          deletes: Sequence[tuple] = (), meta: MetaRow | None = None) -> None:
    db.dialect.write_batch(layout, Batch(list(upserts), list(deletes)), staging=False, meta=meta)
    db.dialect.settle()


# --- the cases ------------------------------------------------------------------------------------

def test_types_per_column(db: Harness) -> None:
    layout = db.layout()
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    assert db.column_types() == db.case.types_v1


def test_upsert_delete_and_last_action_wins(db: Harness) -> None:
    layout = db.layout()
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    _load(db, layout, db.upserts(layout, 1, 2, 3))
    _load(db, layout, db.upserts(layout, 2, grade="B2"), db.deletes(layout, 3))
    # A key deleted, then back: the last action wins across batches.
    _load(db, layout, db.upserts(layout, 3, grade="C3"), db.deletes(layout, 1))
    assert db.grades() == [(2, "B2"), (3, "C3")]
    # Deleting what is not there changes nothing; upserting the same row twice keeps one.
    _load(db, layout, db.upserts(layout, 3, grade="C3"), db.deletes(layout, 99))
    assert db.grades() == [(2, "B2"), (3, "C3")]
    assert db.dialect.live_table_has_rows(layout) is True
    assert db.dialect.count_rows("canvas", "submissions") == 2


def test_interrupt_then_close_keeps_nothing_uncommitted(db: Harness) -> None:
    """On SIGTERM the target calls `interrupt` (end the statement in flight), then `close`:
    neither raises, what was committed stays, what was not is gone, and a new dialect works."""
    layout = db.layout()
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    _load(db, layout, db.upserts(layout, 1))
    db.dialect.write_batch(layout, Batch(db.upserts(layout, 2), []), staging=False, meta=None)
    db.dialect.interrupt()
    with contextlib.suppress(DatabaseError):  # the interrupted load's own error, if it was cut
        db.dialect.close()
    after = dialect_for_url(db.url)
    try:
        assert after.count_rows("canvas", "submissions") in (1, 2)  # the slice may have committed
        _load(Harness(db.case, db.url, after), layout, db.upserts(layout, 3))
        assert {i for i, _ in db.grades()} >= {1, 3}
    finally:
        after.close()


def test_snapshot_swap_replaces_the_table_and_moves_the_meta_row(db: Harness) -> None:
    layout = db.layout()
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    _load(db, layout, db.upserts(layout, 1, 2, 3), meta=meta_row(layout, "2024-01-01T00:00:00Z"))
    db.dialect.create_staging(layout)
    db.dialect.write_batch(layout, Batch(db.upserts(layout, 10, 11), []), staging=True, meta=None)
    # Until the swap, readers see the old table.
    db.dialect.settle()
    assert db.grades() == [(1, "A1"), (2, "A2"), (3, "A3")]
    new_meta = meta_row(layout, "2024-02-01T00:00:00Z")
    db.dialect.swap_staging(layout, Batch(db.upserts(layout, 12), []), new_meta)
    assert db.grades() == [(10, "A10"), (11, "A11"), (12, "A12")]
    assert db.tables() == [db.case.submissions[0]]  # no staging table left behind
    assert db.column_types() == db.case.types_v1
    assert db.dialect.read_meta_rows() == [new_meta]
    # The swapped-in table takes changes as the old one did.
    _load(db, layout, db.upserts(layout, 10, grade="Z"), db.deletes(layout, 11))
    assert db.grades() == [(10, "Z"), (12, "A12")]


def test_evolution_adds_widens_and_keeps_or_drops_removed_columns(db: Harness) -> None:
    v1 = db.layout(1)
    db.dialect.prepare_table(v1, drop_removed_columns=False)
    _load(db, v1, db.upserts(v1, 1))
    v2 = db.layout(2)
    db.dialect.prepare_table(v2, drop_removed_columns=False)
    assert db.column_types() == {**db.case.types_v1, **db.case.types_v2}
    _load(db, v2, db.upserts(v2, 2, grade="G" * 1000, workflow_state="pending_review",
                             late_days=3))
    qualified = db.dialect.qualified_name("canvas", "submissions")
    assert db.query(f'SELECT "id", "workflow_state", "late_days", LENGTH("grade") FROM '
                    f'{qualified} ORDER BY "id"') == [(1, "submitted", None, 2),
                                                       (2, "pending_review", 3, 1000)]
    v3 = db.layout(3)  # `body` is gone from the schema
    db.dialect.prepare_table(v3, drop_removed_columns=False)
    assert "body" in db.column_types()  # kept with its data…
    _load(db, v3, db.upserts(v3, 3))  # …and new rows need not fill it
    assert db.query(f'SELECT "id", "body" FROM {qualified} ORDER BY "id"') == [
        (1, "essay 1"), (2, "essay 2"), (3, None)]
    db.dialect.prepare_table(v3, drop_removed_columns=True)
    assert "body" not in db.column_types()
    assert db.dialect.count_rows("canvas", "submissions") == 3


def test_meta_rows_and_database_version(db: Harness) -> None:
    db.dialect.ensure_meta_tables()  # a second time changes nothing
    version_table = db.dialect.qualified_name("instructure_dap", "database_version")
    assert db.query(f'SELECT "version" FROM {version_table}') == [(1,)]
    assert db.dialect.read_meta_rows() == []
    layout = db.layout()
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    first = meta_row(layout, "2024-01-01T10:00:00Z")
    db.dialect.update_meta(first)
    later = meta_row(layout, "2024-03-01T10:00:00Z", version=2)
    _load(db, layout, db.upserts(layout, 1), meta=later)
    assert db.dialect.read_meta_rows() == [later]  # one row per table, updated in place
    assert later.timestamp == dt.datetime(2024, 3, 1, 10, 0)
    assert later.target_table == "submissions" and later.target_schema == "canvas"
    assert json.loads(later.schema_description)["title"] == "Submissions"


def _first_run(dialect: Dialect, start: threading.Barrier,
               errors: list[BaseException]) -> None:
    start.wait()
    try:
        dialect.ensure_meta_tables()
    except BaseException as exc:
        errors.append(exc)


def test_first_runs_at_once_create_the_meta_tables_once(db: Harness) -> None:
    # Loaders starting together on a database without meta tables (dap_replicator initialising
    # several tables on threads): each checks, finds nothing and creates; none may fail.
    names = [db.dialect.qualified_name("instructure_dap", t)
             for t in ("table_sync", "database_version")]
    for _ in range(8):
        for name in names:
            db.query(f"DROP TABLE IF EXISTS {name}")
        dialects = [dialect_for_url(db.url) for _ in range(3)]
        start = threading.Barrier(len(dialects))
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_first_run, args=(d, start, errors))
                   for d in dialects]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for dialect in dialects:
            dialect.close()
        assert errors == []
        assert db.query(f'SELECT "version" FROM {names[1]}') == [(1,)]
        assert db.dialect.read_meta_rows() == []


def test_names_and_quoting(db: Harness) -> None:
    table, qualified = db.case.submissions
    container = db.case.container or db.url.rsplit("/", 1)[1]
    assert db.dialect.table_name("canvas", "submissions") == table
    assert db.dialect.qualified_name("canvas", "submissions") == qualified
    assert db.dialect.container_name("canvas") == container
    # Identifiers that need quoting: mixed case, spaces and a double quote.
    odd = 'Odd "Name"'
    schema = {"type": "object", "properties": {
        "id": {"type": "integer"}, odd: {"type": ["string", "null"], "maxLength": 50}}}
    layout = db.layout(stream_schema=schema, keys=["id"], stream="canvas-Weird Table")
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    rows = db.rows(layout, [record("canvas-Weird Table", {"id": 1}, {odd: "x"}),
                            record("canvas-Weird Table", {"id": 2}, {odd: "y"})])
    _load(db, layout, rows)
    _load(db, layout, deletes=rows[1:])
    name = db.dialect.qualified_name("canvas", "Weird Table")
    assert db.query(f'SELECT "id", "Odd ""Name""" FROM {name}') == [(1, "x")]
    assert db.dialect.count_rows("canvas", "Weird Table") == 1


def test_count_and_drop(db: Harness) -> None:
    layout = db.layout()
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    _load(db, layout, db.upserts(layout, 1, 2), meta=meta_row(layout, "2024-01-01T00:00:00Z"))
    if db.case.enum_types_sql:
        assert db.query(db.case.enum_types_sql) == [("submissions__workflow_state",)]
    assert db.dialect.count_rows("canvas", "submissions") == 2
    assert db.dialect.count_rows("canvas", "missing") is None
    (row,) = db.dialect.read_meta_rows()
    db.dialect.drop_replica(row)
    assert db.dialect.read_meta_rows() == []
    assert db.dialect.count_rows("canvas", "submissions") is None
    assert db.tables() == []
    if db.case.enum_types_sql:
        assert db.query(db.case.enum_types_sql) == []
    db.dialect.drop_replica(row)  # a table already gone: nothing to do, no error


def test_errors(db: Harness) -> None:
    things = {"type": "object", "properties": {"id": {"type": ["integer", "null"]},
                                                "code": {"type": "string", "maxLength": 20}}}
    layout = db.layout(stream_schema=things, keys=["code"], stream="canvas-things")
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    table = db.dialect.qualified_name("canvas", "things")

    def load(*codes: str | None) -> None:
        rows = db.rows(layout, [record("canvas-things", {"code": "?"}, {"id": i})
                                for i, _ in enumerate(codes)])
        _load(db, layout, [(i, code) for (i, _), code in zip(rows, codes, strict=True)])

    load("a")
    # A batch the database refuses (a NULL key) is one DatabaseError line naming the stream, and
    # nothing of it is kept.
    with pytest.raises(DatabaseError) as refused:
        load("b", None)
    text = str(refused.value)
    assert text.startswith("loading stream 'canvas-things': ") and "\n" not in text
    assert db.query(f'SELECT "code" FROM {table}') == [("a",)]
    # A table's key cannot change in place.
    with pytest.raises(SchemaError) as rekeyed:
        db.dialect.prepare_table(db.layout(stream_schema=things, keys=["id"],
                                           stream="canvas-things"), drop_removed_columns=False)
    assert str(rekeyed.value) == (
        "stream 'canvas-things': key_properties changed from ['code'] to ['id']: the table's "
        "primary key cannot change; drop the table to reload it with the new key")
    # The connection is still usable after both.
    load("b", "c")
    assert db.query(f'SELECT "code" FROM {table} ORDER BY 1') == [("a",), ("b",), ("c",)]


def test_rows_a_row_codec_encoded_load_like_decoded_rows(db: Harness) -> None:
    """What record workers hand over (target_dap_sql/workers.py): rows decoded and encoded by
    the dialect's row codec, for the live table (upserts, deletes) and a snapshot's staging."""
    layout = db.layout()
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    codec = db.dialect.row_codec(layout)
    if codec is None:  # this dialect decodes in the target's own process
        assert db.case.name in ("sqlite", "mysql")
        return
    codec = pickle.loads(pickle.dumps(codec))  # as a worker gets it
    lines = [json.dumps(record(S, {"id": i}, submission(i))).encode() for i in (1, 2, 3)]
    rows = codec.unpack(pickle.loads(pickle.dumps(codec.decode_run(lines))))
    assert [(key, deleted) for key, _, deleted in rows] == [(1, False), (2, False), (3, False)]

    def encoded(upserts: list[tuple], deletes: list[tuple] = ()) -> Batch:
        pairs = [[(row[0], row, False) for row in part] for part in (upserts, deletes)]
        encoded = [[row for _, row, _ in codec.encode(part)] for part in pairs]
        return Batch(*encoded, encoded=True, keys=tuple([k for k, _, _ in p] for p in pairs))

    db.dialect.write_batch(layout, Batch([r for _, r, _ in rows], [], True, ([1, 2, 3], [])),
                           staging=False, meta=None)
    db.dialect.write_batch(layout, encoded(db.upserts(layout, 2, grade="B2"),
                                           db.deletes(layout, 3)), staging=False, meta=None)
    db.dialect.settle()
    assert db.grades() == [(1, "A1"), (2, "B2")]
    db.dialect.create_staging(layout)
    db.dialect.write_batch(layout, encoded(db.upserts(layout, 10, 11)), staging=True, meta=None)
    db.dialect.swap_staging(layout, encoded(db.upserts(layout, 12)), None)
    assert db.grades() == [(10, "A10"), (11, "A11"), (12, "A12")]


def test_types_of_every_property_kind(db: Harness) -> None:
    dap_schema = {"type": "object", "required": ["key", "value", "meta"], "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                "required": ["id"]},
        "value": {"type": "object", "properties": EVERY_KIND}, "meta": META}}
    message = singer_schema("canvas", "everything", 1, dap_schema)
    layout = db.layout(stream_schema=message["schema"], keys=["id"], stream="canvas-everything")
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    assert db.column_types("everything") == dict(zip(EVERY_KIND_COLUMNS,
                                                     db.case.types_every_kind, strict=True))


def test_an_empty_table_has_no_rows(db: Harness) -> None:
    layout = db.layout()
    assert db.dialect.table_exists(layout) is False
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    assert db.dialect.table_exists(layout) is True
    assert db.dialect.live_table_has_rows(layout) is False
    assert db.dialect.count_rows("canvas", "submissions") == 0
    _load(db, layout, db.upserts(layout, 1))
    _load(db, layout, deletes=db.deletes(layout, 1))
    assert db.dialect.live_table_has_rows(layout) is False


def test_soft_delete_and_record_metadata(db: Harness) -> None:
    """hard_delete: false marks a deleted key with the record's `_sdc_deleted_at`; an upsert of
    it clears the mark; add_record_metadata's `_sdc_batched_at` is set by the database."""
    layout = db.layout(options=LayoutOptions(hard_delete=False, add_record_metadata=True))
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    _load(db, layout, db.upserts(layout, 1, 2, 3))
    _load(db, layout, deletes=db.deletes(layout, 2, 3))
    _load(db, layout, db.upserts(layout, 3, grade="back"))
    qualified = db.dialect.qualified_name("canvas", "submissions")
    rows = db.query(f'SELECT "id", "grade", "_sdc_deleted_at", "_sdc_batched_at" FROM {qualified} '
                    'ORDER BY "id"')
    assert [(int(i), g, None if d is None else str(d)[:19]) for i, g, d, _ in rows] == [
        (1, "A1", None), (2, "A2", "2024-01-10 00:00:00"), (3, "back", None)]
    assert {str(b)[:4] for *_, b in rows} == {str(dt.datetime.now(dt.UTC).year)}


def test_a_keyless_stream_appends(db: Harness) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"},
                                               "s": {"type": ["string", "null"]}}}
    layout = db.layout(stream_schema=schema, keys=[], stream="canvas-events")
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    rows = db.rows(layout, [record("canvas-events", {}, {"n": 1, "s": "x"}),
                            record("canvas-events", {}, {"n": 1, "s": "x"})])
    _load(db, layout, rows)
    _load(db, layout, rows[:1])
    assert db.query(f'SELECT "n", "s" FROM {db.dialect.qualified_name("canvas", "events")}') == [
        (1, "x")] * 3


def test_nul_characters_as_the_dialect_says(db: Harness) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"},
                                               "s": {"type": ["string", "null"]}}}
    layout = db.layout(stream_schema=schema, keys=["id"], stream="canvas-nul")
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    rows = db.rows(layout, [record("canvas-nul", {"id": 1}, {"s": "a\x00b"})])
    assert db.dialect.stores_nul_characters is db.case.stores_nul_characters
    table = db.dialect.qualified_name("canvas", "nul")
    if db.dialect.stores_nul_characters:
        _load(db, layout, rows)
        assert db.query(f'SELECT "s" FROM {table}') == [("a\x00b",)]
    else:  # the target must then refuse or replace NUL before the database sees it
        with pytest.raises(DatabaseError, match=r"^loading stream 'canvas-nul': [^\n]+$"):
            _load(db, layout, rows)
        assert db.query(f'SELECT "s" FROM {table}') == []


def test_names_of_meta_table_staging_and_claimed_objects(db: Harness) -> None:
    layout = db.layout()
    assert db.dialect.meta_table_label == db.case.meta_table_label
    assert db.dialect.object_names(layout) == db.case.object_names
    # one name per table, as the database reads names: a stream's and a meta row's compare
    assert db.dialect.table_object_name(layout.schema, layout.table) in db.case.object_names
    assert db.dialect.staging_table(layout) == db.case.staging_table
    db.dialect.prepare_table(layout, drop_removed_columns=False)
    db.dialect.create_staging(layout)
    assert db.case.staging_table in db.tables()


@pytest.mark.parametrize("name", list(CASES))
def test_a_refused_connection_is_one_line_without_the_password(name: str) -> None:
    url, expected = CASES[name].refused_connection
    dialect = dialect_for_url(url)
    with pytest.raises(DatabaseError) as refused:
        dialect.connect()
    assert str(refused.value) == expected
    assert "pw-s3cret" not in str(refused.value)


# --- the contract itself -------------------------------------------------------------------------

def test_every_dialect_has_a_case_and_every_case_a_dialect() -> None:
    classes = {getattr(importlib.import_module(m), c) for m, c in DIALECTS.values()}
    assert sorted(c.name for c in classes) == sorted(case.name for case in CASES.values())


def test_every_method_of_the_contract_is_exercised_here() -> None:
    """Each method a dialect must (or may) implement is called by a case of this file."""
    text = Path(__file__).read_text()
    public = {n for n, _ in inspect.getmembers(Dialect, inspect.isfunction)
              if not n.startswith("_")}
    assert {n for n in public if not re.search(rf"dialect\.{n}\b", text)} == set()


def test_the_loader_uses_nothing_of_a_dialect_the_contract_does_not_declare() -> None:
    """What target.py, sinks.py, admin.py … use of a dialect is declared on Dialect, so a dialect
    that implements Dialect (without ConnectionDialect) has everything they need."""
    root = Path(__file__).resolve().parents[2] / "target_dap_sql"
    used: set[str] = set()
    for path in root.glob("*.py"):
        used |= set(re.findall(r"(?:\b|_)dialect\.(\w+)", path.read_text()))
    declared = set(dir(Dialect)) | set(inspect.get_annotations(Dialect))
    assert used and used - declared == set()


def test_contributing_names_every_method_a_new_dialect_implements() -> None:
    text = (Path(__file__).resolve().parents[2] / "CONTRIBUTING.md").read_text()
    required = Dialect.__abstractmethods__ | ConnectionDialect.__abstractmethods__
    assert {n for n in required if f"`{n}`" not in text} == set()
