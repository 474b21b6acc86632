"""The Singer SDK's standard target tests (get_target_test_class), on SQLite and PostgreSQL.

The SDK's tests only check that nothing raises. Every one that writes data gets a `validate()`
here that queries the database the run wrote (exact rows, columns and STATE lines); the ones that
must fail check the exact error and that nothing was committed. The input is the SDK's own
`.singer` files. Streams without DAP provenance take the generic mapping: a stream name without
`-` becomes a table in `public` (PostgreSQL) or a bare table (SQLite); objects and arrays are JSON.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from singer_sdk.testing import get_target_test_class, target_test_streams
from singer_sdk.testing import target_tests as sdk
from singer_sdk.testing.runners import TargetTestRunner
from singer_sdk.testing.suites import SingerTestSuite
from singer_sdk.testing.templates import TargetFileTestTemplate

from target_dap_sql.errors import (
    InputError,
    MissingKeyPropertyError,
    RecordBeforeSchemaError,
    SchemaError,
)
from target_dap_sql.target import TargetDapSQL


@dataclass
class Db:
    """The database one test's target writes to, read back with plain drivers."""

    kind: str  # "sqlite" | "postgres"
    url: str

    def ref(self, table: str) -> str:
        quoted = '"' + table.replace('"', '""') + '"'
        return quoted if self.kind == "sqlite" else f'"public".{quoted}'

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one query; placeholders are the driver's own (`?` SQLite, `%s` psycopg)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                return conn.execute(sql, params).fetchall()
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def rows(self, table: str, columns: str = "*") -> list[tuple]:
        return self.query(f"SELECT {columns} FROM {self.ref(table)} ORDER BY 1")

    def tables(self) -> set[str]:
        if self.kind == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        return {name for (name,) in self.query(sql)}

    def columns(self, table: str) -> list[str]:
        if self.kind == "sqlite":
            return [r[1] for r in self.query(f"PRAGMA table_info({self.ref(table)})")]
        return [name for (name,) in self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s ORDER BY ordinal_position", (table,))]


def as_json(value: Any) -> Any:
    """A JSON column's value: SQLite returns the text, PostgreSQL the decoded jsonb."""
    return json.loads(value) if isinstance(value, str) else value


def singer_file(name: str) -> list[dict[str, Any]]:
    text = (importlib.resources.files(target_test_streams) / f"{name}.singer").read_text("utf8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def records_of(name: str, stream: str) -> list[dict[str, Any]]:
    return [m["record"] for m in singer_file(name)
            if m["type"] == "RECORD" and m["stream"] == stream]


class Validated(TargetFileTestTemplate):
    """Gives `validate()` the database and the STATE lines the run wrote."""

    @property
    def db(self) -> Db:
        return self.resource

    @property
    def states(self) -> list[Any]:
        return list(self.runner.state_messages)


# --- the standard tests, with data assertions --------------------------------------------------

class ArrayData(Validated, sdk.TargetArrayData):
    def validate(self) -> None:
        assert [(i, as_json(v)) for i, v in self.db.rows("test_array_data")] == [
            (1, ["apple", "orange", "pear"]), (2, ["banana", "apple"]), (3, ["pear"]),
            (4, ["orange", "banana", "apple", "pear"])]
        assert self.states == [{"test_array_data": 4}]


class Camelcase(Validated, sdk.TargetCamelcaseTest):
    def validate(self) -> None:
        assert self.db.columns("TestCamelcase") == ["Id", "clientName"]
        assert self.db.rows("TestCamelcase") == [
            ("1", "Gitter Windows Desktop App"), ("2", "Gitter iOS App")]


class CamelcaseComplexSchema(Validated, sdk.TargetCamelcaseComplexSchema):
    def validate(self) -> None:
        # Two SCHEMA messages and no record: the table has the evolved schema's columns,
        # names exactly as sent (case, leading underscore), and no rows.
        (_, evolved) = singer_file(self.name)
        table = "ForecastingTypeToCategory"
        assert self.db.columns(table) == list(evolved["schema"]["properties"])
        assert self.db.rows(table) == []


class DuplicateRecords(Validated, sdk.TargetDuplicateRecords):
    def validate(self) -> None:
        assert self.db.rows("test_duplicate_records") == [(1, 100), (2, 20)]
        assert self.states == [{"test_duplicate_records": 2}]


class EncodedStringData(Validated, sdk.TargetEncodedStringData):
    """SQLite stores every string as sent. PostgreSQL cannot store U+0000 in text or jsonb."""

    def test(self) -> None:
        if self.db.kind == "sqlite":
            super().test()
            return
        # One input error naming the line, the stream and the column, raised while reading,
        # before the database sees the batch (sanitize_null_characters is off by default).
        with pytest.raises(InputError, match=r"line 12, stream 'test_strings': .*'info'.*NUL"):
            super().test()

    def validate(self) -> None:
        if self.db.kind != "sqlite":
            return
        for stream, column in (("test_strings", "info"), ("test_strings_in_objects", "info"),
                               ("test_strings_in_arrays", "strings")):
            sent = [(r["id"], r[column]) for r in records_of(self.name, stream)]
            stored = self.db.rows(stream, f'"id", "{column}"')
            if column == "info" and stream == "test_strings":
                assert stored == sent, stream
            else:
                assert [(i, as_json(v)) for i, v in stored] == sent, stream
        assert self.states == [
            {"test_strings": 11, "test_strings_in_objects": 11, "test_strings_in_arrays": 6}]


class InvalidSchema(Validated, sdk.TargetInvalidSchemaTest):
    def test(self) -> None:
        with pytest.raises(SchemaError, match=r"^line 1, stream 'test_invalid_schema': SCHEMA "
                                              r"has no 'properties' object$"):
            TargetFileTestTemplate.test(self)

    def validate(self) -> None:
        assert self.db.tables() == set()


class NoPrimaryKeys(Validated, sdk.TargetNoPrimaryKeys):
    def validate(self) -> None:
        assert self.db.rows("test_no_pk") == [(1, 11), (2, 22), (3, 33)]
        # Without a key every record is appended: a second run adds its five rows.
        again = TargetTestRunner(TargetDapSQL, config=self.runner.config,
                                 parse_env_config=False)
        again.input_filepath = (importlib.resources.files(target_test_streams)
                                / "no_primary_keys_append.singer")
        again.sync_all()
        assert sorted(self.db.rows("test_no_pk")) == [
            (1, 11), (1, 101), (2, 22), (2, 202), (3, 33), (3, 303), (4, 404), (5, 505)]


class OptionalAttributes(Validated, sdk.TargetOptionalAttributes):
    def validate(self) -> None:
        assert self.db.rows("test_optional_attributes") == [
            (1, "This is optional"), (2, None), (3, "Also optional"), (4, None)]


class PrimaryKeyUpdates(Validated, sdk.TargetPrimaryKeyUpdates):
    """The SDK's file puts `key_properties` inside `schema`, where Singer does not read it, so
    the stream has no key and both records are appended. A real key change: see below."""

    def validate(self) -> None:
        assert self.db.rows("example_stream") == [
            (1, "Alice", "alice@example.com"), (2, "Bob", "bob@example.com")]


class RecordBeforeSchema(Validated, sdk.TargetRecordBeforeSchemaTest):
    def test(self) -> None:
        with pytest.raises(RecordBeforeSchemaError,
                           match=r"^line 1, stream 'test_record_before_schema': RECORD before"):
            TargetFileTestTemplate.test(self)

    def validate(self) -> None:
        assert self.db.tables() == set()


class RecordMissingKeyProperty(Validated, sdk.TargetRecordMissingKeyProperty):
    def test(self) -> None:
        with pytest.raises(MissingKeyPropertyError,
                           match=r"^line 2, stream 'test_record_missing_key_property': record is "
                                 r"missing key property 'id'$"):
            TargetFileTestTemplate.test(self)

    def validate(self) -> None:
        assert self.db.rows("test_record_missing_key_property") == []


class RecordMissingFields(Validated, sdk.TargetRecordMissingOptionalFields):
    def validate(self) -> None:
        assert self.db.rows("record_missing_fields") == [(1, "now you see me"), (2, None)]
        assert self.states == [{}]


class SchemaNoProperties(Validated, sdk.TargetSchemaNoProperties):
    def validate(self) -> None:
        for table, metrics in (("test_object_schema_with_properties", (187, 203)),
                               ("test_object_schema_no_properties", (1, 2))):
            stored = sorted((as_json(v) for (v,) in self.db.rows(table)), key=lambda o: o["id"])
            assert stored == [{"id": 1, "metric": metrics[0]}, {"id": 2, "metric": metrics[1]}]


class SchemaUpdates(Validated, sdk.TargetSchemaUpdates):
    def validate(self) -> None:
        table = "test_schema_updates"
        assert self.db.columns(table) == ["id", "a1", "a2", "a3", "a4", "a5", "a6"]
        stored = [(i, float(a1), a2, None if a3 is None else bool(a3), as_json(a4), as_json(a5),
                   a6) for i, a1, a2, a3, a4, a5, a6 in self.db.rows(table)]
        assert stored == [
            (1, 101.0, "string1", None, None, None, None),
            (2, 102.0, "string2", True, None, None, None),
            (3, 103.0, "string3", False, {"id": 1, "value": 1}, ["banana", "apple"], None),
            (4, 104.0, "string4", True, {"id": 2, "value": 22}, ["orange", "pear"], None),
            (5, 105.0, "string5", False, {"id": 3, "value": 33}, ["apple"], 985),
            (6, 106.0, "string6", True, {"id": 4, "value": 444}, ["banana", "orange"], 341),
        ]
        assert self.states == [{"test_schema_updates": 6}]


class SpecialCharsInAttributes(Validated, sdk.TargetSpecialCharsInAttributes):
    def validate(self) -> None:
        table = "test:SpecialChars!in?attributes"
        assert self.db.columns(table) == ["_id", "d"]
        assert [(i, as_json(d)) for i, d in self.db.rows(table)] == [
            ("a2e98886", {"env": "prod", "agent:type": "desktop", "agent:os:version": "10.13.1"})]


CHECKED_SUITE = SingerTestSuite(kind="target", tests=[
    ArrayData, Camelcase, CamelcaseComplexSchema, sdk.TargetCliPrintsTest, DuplicateRecords,
    EncodedStringData, InvalidSchema, NoPrimaryKeys, OptionalAttributes, PrimaryKeyUpdates,
    RecordBeforeSchema, RecordMissingKeyProperty, RecordMissingFields, SchemaNoProperties,
    SchemaUpdates, SpecialCharsInAttributes,
])

#: Known defects outside this test's owner's files: (dialect, SDK test name) -> reason.
XFAIL: dict[tuple[str, str], str] = {}


def _runner(db: Db) -> TargetTestRunner:
    return TargetTestRunner(TargetDapSQL, config={"sqlalchemy_url": db.url},
                            parse_env_config=False)


def _mark_known_defects(request: pytest.FixtureRequest, kind: str) -> None:
    reason = XFAIL.get((kind, request.node.originalname))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


_Standard = get_target_test_class(TargetDapSQL, custom_suites=[CHECKED_SUITE],
                                  include_target_tests=False, parse_env_config=False)


class TestStandardSqlite(_Standard):  # type: ignore[misc,valid-type]
    @pytest.fixture
    def resource(self, request: pytest.FixtureRequest, tmp_path: Path) -> Db:
        _mark_known_defects(request, "sqlite")
        return Db("sqlite", f"sqlite:///{tmp_path}/dap.db")

    @pytest.fixture
    def runner(self, resource: Db) -> TargetTestRunner:
        return _runner(resource)


@pytest.mark.postgres
class TestStandardPostgres(_Standard):  # type: ignore[misc,valid-type]
    @pytest.fixture
    def resource(self, request: pytest.FixtureRequest, pg_url: str) -> Db:
        _mark_known_defects(request, "postgres")
        return Db("postgres", pg_url)

    @pytest.fixture
    def runner(self, resource: Db) -> TargetTestRunner:
        return _runner(resource)


# --- what the standard files miss -------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    if request.param == "sqlite":
        return Db("sqlite", f"sqlite:///{tmp_path}/dap.db")
    return Db("postgres", request.getfixturevalue("pg_url"))


USERS = {"properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                        "email": {"type": "string"}}}


def run_target(url: str, messages: list[dict[str, Any]]) -> tuple[list[Any], Exception | None]:
    """Run the target in-process: the STATE lines it wrote, and what it raised (if anything)."""
    out = io.StringIO()
    error: Exception | None = None
    with contextlib.redirect_stdout(out):
        try:
            target = TargetDapSQL(config={"sqlalchemy_url": url}, parse_env_config=False)
            target.listen(file_input=io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
        except Exception as exc:  # noqa: BLE001 - returned to the test, which checks it
            error = exc
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()], error


def _users(keys: list[str], *records: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "SCHEMA", "stream": "users", "key_properties": keys, "schema": USERS},
            *({"type": "RECORD", "stream": "users", "record": r} for r in records)]


ALICE = {"id": 1, "name": "Alice", "email": "alice@example.com"}
BOB = {"id": 2, "name": "Bob", "email": "bob@example.com"}
KEY_CHANGED = (r"stream 'users': key_properties changed from \['id'\] to \['email'\]: the "
               r"table's primary key cannot change")


def test_key_change_within_a_run_is_one_clear_error(db: Db) -> None:
    """What the SDK's pk_updates file means to test. Re-keying a replica could merge or split
    rows, so the target stops with one clear error; nothing of the failing batch is committed."""
    messages = [*_users(["id"], ALICE), {"type": "STATE", "value": 1},
                *_users(["email"], BOB), {"type": "STATE", "value": 2}]
    states, error = run_target(db.url, messages)
    assert isinstance(error, SchemaError)
    assert re.fullmatch(rf"line 4, {KEY_CHANGED}.*", str(error)), str(error)
    assert (states, db.rows("users")) == ([], [])


def test_key_change_across_runs_is_one_clear_error(db: Db) -> None:
    assert run_target(db.url, _users(["id"], ALICE)) == ([], None)
    states, error = run_target(db.url, [*_users(["email"], BOB), {"type": "STATE", "value": 2}])
    assert isinstance(error, SchemaError)
    assert re.fullmatch(rf"line 1, {KEY_CHANGED}.*", str(error)), str(error)
    assert (states, db.rows("users")) == ([], [(1, "Alice", "alice@example.com")])


NOTES_SCHEMA = {"type": "SCHEMA", "stream": "notes", "key_properties": ["id"],
                "schema": {"properties": {"id": {"type": "integer"}, "text": {"type": "string"},
                                          "doc": {"type": "object"}}}}


@pytest.mark.postgres
def test_postgres_nul_is_one_clear_error_and_commits_nothing(pg_url: str) -> None:
    """PostgreSQL cannot store U+0000: the error names line, stream, column and key; nothing of
    the batch and no STATE is committed. An escaped backslash before `u0000` is plain text."""
    db = Db("postgres", pg_url)
    messages = [NOTES_SCHEMA,
                {"type": "RECORD", "stream": "notes", "record": {"id": 1, "text": "lit\\u0000"}},
                {"type": "RECORD", "stream": "notes", "record": {"id": 2, "doc": {"k": "a\u0000"}}},
                {"type": "STATE", "value": {"notes": 2}}]
    states, error = run_target(pg_url, messages)
    assert isinstance(error, InputError)
    assert str(error) == (
        "line 3, stream 'notes': column 'doc' (key 2) contains a NUL character (U+0000), which "
        "PostgreSQL cannot store; remove it at the source or set sanitize_null_characters to "
        "replace it with U+FFFD")
    assert (states, db.rows("notes")) == ([], [])


@pytest.mark.postgres
def test_postgres_sanitize_null_characters_stores_replacement_characters(pg_url: str) -> None:
    db = Db("postgres", pg_url)
    messages = [NOTES_SCHEMA,
                {"type": "RECORD", "stream": "notes", "record": {"id": 1, "text": "a\u0000b"}},
                {"type": "RECORD", "stream": "notes", "record": {"id": 2, "doc": {"k": "\u0000"},
                                                                 "text": "lit\\u0000"}},
                {"type": "STATE", "value": {"notes": 2}}]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        target = TargetDapSQL(config={"sqlalchemy_url": pg_url, "sanitize_null_characters": True},
                              parse_env_config=False)
        target.listen(file_input=io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    assert out.getvalue() == '{"notes":2}\n'
    assert db.rows("notes", '"id", "text", "doc"::text') == [
        (1, "a\ufffdb", None), (2, "lit\\u0000", '{"k": "\ufffd"}')]


def test_sdk_record_missing_required_property_is_one_clear_error(db: Db) -> None:
    states, error = run_target(db.url, singer_file("record_missing_required_property"))
    assert isinstance(error, InputError)
    assert str(error) == ("line 2, stream 'test_record_missing_required_property': required "
                          "property 'id' is missing or null in an upsert")
    assert (states, db.rows("test_record_missing_required_property")) == ([], [])


def test_required_columns_bind_upserts_but_not_deletes(db: Db) -> None:
    """A delete carries only its key (as DAP's do); an upsert lacking a required non-key column,
    or carrying null in it, is refused with its line, stream and column."""
    schema = {"type": "SCHEMA", "stream": "users", "key_properties": ["id"],
              "schema": {"required": ["name"], "properties": {
                  "id": {"type": "integer"}, "name": {"type": "string"},
                  "email": {"type": ["string", "null"]}, "_sdc_deleted_at": {"type": "string"}}}}
    upsert = {"type": "RECORD", "stream": "users"}
    good = [schema, {**upsert, "record": {"id": 1, "name": "Alice"}},
            {**upsert, "record": {"id": 2, "name": "Bob"}},
            {**upsert, "record": {"id": 1, "_sdc_deleted_at": "2024-01-01T00:00:00Z"}},
            {"type": "STATE", "value": 1}]
    assert run_target(db.url, good) == ([1], None)
    for bad in ({"id": 3}, {"id": 3, "name": None}):
        states, error = run_target(db.url, [schema, {**upsert, "record": bad},
                                            {"type": "STATE", "value": 2}])
        assert isinstance(error, InputError)
        assert str(error) == ("line 2, stream 'users': required property 'name' is missing or "
                              "null in an upsert"), str(error)
        assert states == []
    assert db.rows("users", '"id", "name", "email"') == [(2, "Bob", None)]


def test_a_failed_process_lines_leaves_no_connection_open(tmp_path: Path) -> None:
    """The SDK's test runner (and code embedding the target) calls `process_lines` without
    `listen`: an error there still closes the connection (it held our SQLite adapters)."""
    from target_dap_sql.dialects import sqlite_binding

    held = sqlite_binding._holders
    target = TargetDapSQL(config={"sqlalchemy_url": f"sqlite:///{tmp_path}/dap.db"},
                          parse_env_config=False)
    lines = [*_users(["id"], ALICE), {"type": "RECORD", "stream": "users", "record": {"a": 1}}]
    with pytest.raises(MissingKeyPropertyError):
        target.process_lines(io.StringIO("".join(json.dumps(m) + "\n" for m in lines)))
    assert target._dialect._conn is None
    assert sqlite_binding._holders == held


def test_an_interrupted_process_lines_leaves_no_connection_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in a program embedding the target (dap_replicator has no signal handler of its own:
    KeyboardInterrupt) rolls back and closes the connection: an open write transaction would keep
    the SQLite file locked for the rest of the process (a notebook keeps the traceback, and the
    target with it), and our SQLite adapters registered."""
    from target_dap_sql import sinks
    from target_dap_sql.dialects import sqlite_binding

    monkeypatch.setattr(sinks, "SLICE_ROWS", 5)  # slices load into the open transaction
    held = sqlite_binding._holders
    path = tmp_path / "dap.db"
    target = TargetDapSQL(config={"sqlalchemy_url": f"sqlite:///{path}"}, parse_env_config=False)
    records = [{"id": n, "name": f"n{n}", "email": None} for n in range(50)]
    after_records = TargetDapSQL._after_records

    def interrupted(self: TargetDapSQL, sink: Any) -> None:
        after_records(self, sink)
        if sink.rows_loaded:  # a slice is in the open transaction
            raise KeyboardInterrupt

    monkeypatch.setattr(TargetDapSQL, "_after_records", interrupted)
    with pytest.raises(KeyboardInterrupt):
        target.process_lines(io.StringIO("".join(
            json.dumps(m) + "\n" for m in _users(["id"], *records))))
    assert target._dialect._conn is None
    assert sqlite_binding._holders == held
    with contextlib.closing(sqlite3.connect(path, timeout=0)) as other:
        other.execute("BEGIN IMMEDIATE")  # no write lock left behind
        (count,) = other.execute("SELECT count(*) FROM users").fetchone()
        assert count < len(records)  # what was not committed is rolled back
