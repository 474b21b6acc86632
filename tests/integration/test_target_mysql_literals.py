"""Hostile values reach MariaDB as themselves through the fast row literals (mysql_literals.py),
whatever `sql_mode` the server defaults to: the target's session sets its own, and the text
escaping follows the session (NO_BACKSLASH_ESCAPES would make `\\'` end a string)."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from target_dap_sql.dialects import dialect_for_url
from target_dap_sql.dialects.base import Batch
from target_dap_sql.layout import LayoutOptions, TableLayout, build_layout
from tests.integration.helpers import logged_errors
from tests.integration.test_target_mysql import mysql_connect, mysql_query
from tests.unit.target.dap_messages import META, jsonl, record, run_cli, singer_schema

HOSTILE = ["it's", "back\\slash", "\\'; DROP TABLE x; --", "q\"uote", "nul\x00byte", "ctrl-z\x1a",
           "\\Z\\0\\n", "🎓 4-byte ☃", "'", "\\", "", "line\r\nbreak", "%s %(x)s"]


def _layout() -> TableLayout:
    dap = {"type": "object", "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "string", "maxLength": 64}},
                "required": ["id"]},
        "value": {"type": "object", "properties": {
            "body": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "uid": {"type": "string", "format": "uuid"},
            "flag": {"type": "boolean"}, "ratio": {"type": "number", "format": "float64"}}},
        "meta": META}}
    message = singer_schema("canvas", "hostile", 1, dap)
    return build_layout(message["stream"], message["schema"], message["key_properties"],
                        LayoutOptions())


@pytest.mark.mariadb
@pytest.mark.parametrize("server_mode", ["NO_BACKSLASH_ESCAPES", ""])
def test_hostile_values_round_trip_whatever_the_server_sql_mode(
        mariadb_url: str, server_mode: str) -> None:
    (old_mode,), = mysql_query(mariadb_url, "SELECT @@GLOBAL.sql_mode")
    mysql_query(mariadb_url, f"SET GLOBAL sql_mode = '{server_mode}'")
    try:
        layout = _layout()
        dialect = dialect_for_url(mariadb_url)
        dialect.ensure_meta_tables()
        dialect.prepare_table(layout, drop_removed_columns=False)
        names = [c.name for c in layout.record_columns]
        at = dt.datetime(2024, 1, 2, 3, 4, 5, 60)
        uid = uuid.UUID("56d0c6e2-3260-4a64-bd82-3871b4e9a334")
        values: dict[str, Any] = {"at": at, "day": dt.date(1, 1, 1), "uid": uid.bytes,
                                  "flag": True, "ratio": -0.0}
        rows = [tuple(text if n in ("id", "body") else values.get(n) for n in names)
                for text in HOSTILE]
        dialect.write_batch(layout, Batch(rows, []), staging=False, meta=None)
        dialect.settle()
        stored = mysql_query(mariadb_url, 'SELECT "id", "body", "at", "day", "uid", "flag" '
                             'FROM "canvas__hostile"')
        whole = at.replace(microsecond=0)  # DAP's MySQL `datetime` keeps whole seconds
        assert sorted(stored) == sorted((t, t, whole, dt.date(1, 1, 1), uid.bytes, 1)
                                        for t in HOSTILE)
        # deletes by a hostile key delete exactly that row
        gone = [r for r in rows if r[0] in ("it's", "\\", "'")]
        dialect.write_batch(layout, Batch([], gone), staging=False, meta=None)
        dialect.settle()
        left = {r[0] for r in mysql_query(mariadb_url, 'SELECT "id" FROM "canvas__hostile"')}
        assert left == set(HOSTILE) - {"it's", "\\", "'"}
        dialect.close()
    finally:
        mysql_query(mariadb_url, f"SET GLOBAL sql_mode = '{old_mode}'")


@pytest.mark.mariadb
def test_typed_row_literals_are_pymysql_literals(mariadb_url: str) -> None:
    """The generated per-table row writer (literal_row_of) writes exactly what PyMySQL's
    conn.escape writes, for every kind it specialises, NULLs and hostile text included, with
    and without NO_BACKSLASH_ESCAPES; a value of the wrong type is refused, not written."""
    import decimal

    from target_dap_sql.dialects.mysql_literals import literal_row_of

    kinds = ["bigint", "integer", "smallint", "boolean", "double", "real", "numeric", "decimal",
             "timestamp", "timestamptz", "date", "uuid", "varchar", "text", "enum", "json",
             "array", "char", "interval", ""]
    uid = uuid.UUID("56d0c6e2-3260-4a64-bd82-3871b4e9a334").bytes
    rows = [
        (2**63 - 1, -7, 0, True, 1.5, -0.0, 1e-7, decimal.Decimal("-12.50"),
         dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5, 60),
         dt.date(999, 12, 31), uid, "plain", '{"a": "b\\\\"}', "graded", '["x"]', "[1]", "c",
         "P1D", dt.datetime(1, 1, 1)),
        tuple([None] * len(kinds)),
        *[(1, 2, 3, False, 3.0, 2.5, 1e300, decimal.Decimal("1E+2"), dt.datetime(1, 1, 1),
           dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.date(2024, 2, 29), b"\x00'\\",
           text, text, text, text, text, text, text, None) for text in HOSTILE],
    ]
    conn = mysql_connect(mariadb_url)
    try:
        for mode in ("", "NO_BACKSLASH_ESCAPES"):
            with conn.cursor() as cur:
                cur.execute(f"SET SESSION sql_mode = '{mode}'")
            write = literal_row_of(conn, kinds)
            for row in rows:
                assert write(row) == conn.escape(row)
        write = literal_row_of(conn, ["bigint", "text"])
        for wrong in [("1); DROP TABLE x; --", "a"), (1, 2), (1.5, "a")]:
            with pytest.raises((TypeError, AttributeError)):
                write(wrong)
    finally:
        conn.close()


@pytest.mark.mariadb
def test_a_schema_left_without_columns_still_loads_its_records(
        mariadb_url: str, tmp_path: Path) -> None:
    """A generic stream whose SCHEMA no longer has any property (its table keeps the old
    columns) loads rows of no values (`INSERT … () VALUES ()`), as before the generated row
    writer (which wrote `(,) = row`: a SyntaxError traceback)."""
    def schema(properties: dict[str, Any]) -> dict[str, Any]:
        return {"type": "SCHEMA", "stream": "bare", "key_properties": [],
                "schema": {"type": "object", "properties": properties}}

    run = run_cli({"sqlalchemy_url": mariadb_url}, [
        schema({"a": {"type": "string"}}),
        {"type": "RECORD", "stream": "bare", "record": {"a": "x"}},
        schema({}), *[{"type": "RECORD", "stream": "bare", "record": {}}] * 2], tmp_path)
    assert run.returncode == 0, run.stderr
    assert mysql_query(mariadb_url, 'SELECT COUNT(*), COUNT("a"), MAX("a") FROM "bare"') == [
        (3, 1, "x")]


@pytest.mark.mariadb
@pytest.mark.parametrize("text", ["Infinity", "NaN", "-Infinity", "sNaN"])
def test_a_non_finite_decimal_is_refused_not_written_as_a_column_name(
        mariadb_url: str, tmp_path: Path, text: str) -> None:
    """A DAP decimal arriving as the JSON string "Infinity"/"NaN" (msgspec reads it as a
    Decimal) is refused as PyMySQL refuses it, not written unquoted: `VALUES (…, Infinity)`
    names a column, and a column of that name earlier in the row gave its value silently."""
    dap = {"type": "object", "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                "required": ["id"]},
        "value": {"type": "object", "properties": {
            "infinity": {"type": "number", "format": "float64"},
            "nan": {"type": "number", "format": "float64"},
            "snan": {"type": "number", "format": "float64"},
            "amount": {"type": "number", "exclusiveMinimum": -1e10, "exclusiveMaximum": 1e10,
                       "multipleOf": 0.01}}},
        "meta": META}}
    schema = singer_schema("canvas", "amounts", 1, dap)
    row = {"infinity": 5.0, "nan": 6.0, "snan": 7.0, "amount": text}
    run = run_cli({"sqlalchemy_url": mariadb_url},
                  [schema, record(schema["stream"], {"id": 1}, row)], tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: line 2, stream 'canvas-amounts': invalid value for 'amount': "
        f"{text.lower()} can not be used with MySQL"]
    assert mysql_query(mariadb_url, 'SELECT * FROM "canvas__amounts"') == []


@pytest.mark.mariadb
def test_decimals_beyond_mysql_are_refused_or_rounded_without_writing_them_out(
        mariadb_url: str, tmp_path: Path) -> None:
    """Written out in full, 1E±999999999 is a gigabyte of SQL text: one too large for any
    DECIMAL is refused naming its line, one too small for 30 fractional digits is 0 (what the
    server stores for it), with validation on or off."""
    dap = {"type": "object", "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                "required": ["id"]},
        "value": {"type": "object", "properties": {
            "amount": {"type": "number", "exclusiveMinimum": -1e10, "exclusiveMaximum": 1e10,
                       "multipleOf": 0.01}}},
        "meta": META}}
    schema = singer_schema("canvas", "amounts", 1, dap)
    tiny = ["1E-999999999", "-1E-32", "0E-999999999", "0E+999999999", "4.9E-3", "5E-3"]

    def lines(amounts: list[str]) -> bytes:  # the amounts as JSON numbers
        return re.sub(rb'"#([^#]*)#"', rb"\1", jsonl([schema, *[
            record(schema["stream"], {"id": i}, {"amount": f"#{text}#"})
            for i, text in enumerate(amounts)]]))

    for validate in (True, False):
        config = {"sqlalchemy_url": mariadb_url, "validate_records": validate}
        run = run_cli(config, lines(tiny), tmp_path)
        assert run.returncode == 0, run.stderr
        assert mysql_query(mariadb_url, 'SELECT "amount" FROM "canvas__amounts" ORDER BY 1') == [
            *[(decimal.Decimal("0.00"),)] * 5, (decimal.Decimal("0.01"),)]
        run = run_cli(config, lines(["-1E+999999999"]), tmp_path)
        assert run.returncode == 1
        assert logged_errors(run.stderr) == [
            "target-dap-sql: line 2, stream 'canvas-amounts': invalid value for 'amount': more "
            "than 65 digits before the decimal point (MySQL's DECIMAL holds at most 65)"]
