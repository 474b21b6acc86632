"""Values of another tap's stream (e.g. tap-jsonl) are checked the same way on every database.

A bad value for a mapped JSON-schema type fails the run with one error line naming the line,
stream, column and value — never stored as something else (SQLite kept `not-a-date` as text,
PostgreSQL read `now` as the load time and `"NaN"` as a number) — and what was committed before
stays. Good edge values load exactly.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.helpers import logged_errors
from tests.integration.replica_dbs import ReplicaDb, rdb_fixture  # noqa: F401 (fixture)
from tests.integration.test_target_mysql import mysql_query
from tests.unit.target.dap_messages import jsonl, run_cli

SCHEMA = {"type": "SCHEMA", "stream": "things", "key_properties": ["id"], "schema": {
    "type": "object", "properties": {
        "id": {"type": "integer"},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "day": {"type": ["string", "null"], "format": "date"},
        "clock": {"type": ["string", "null"], "format": "time"},
        "amount": {"type": ["number", "null"]},
        "count": {"type": ["integer", "null"]},
        "flag": {"type": ["boolean", "null"]},
    }}}
COLUMNS = ("at", "day", "clock", "amount", "count", "flag")


def _record(i: int, **values: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": "things", "record": {"id": i, **values}}


@pytest.fixture(name="url")
def url_fixture(rdb: ReplicaDb) -> str:
    return rdb.url


def _rows(url: str) -> list[tuple]:
    """(id, at as an aware UTC datetime, day, clock, amount, count, flag) as stored."""
    sql = 'SELECT "id", "at", "day", "clock", "amount", "count", "flag" FROM {} ORDER BY 1'
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            raw = conn.execute(sql.format('"things"')).fetchall()
    elif url.startswith("postgresql"):
        with psycopg.connect(url) as conn:
            raw = conn.execute(sql.format('"things"')).fetchall()  # type: ignore[arg-type]
    else:
        raw = mysql_query(url, sql.format('"things"'))
    return [_normal(row) for row in raw]


def _normal(row: tuple) -> tuple:
    """One shape whatever the database: SQLite keeps text, MariaDB naive UTC and timedelta."""
    key, at, day, clock, amount, count, flag = row
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if isinstance(at, datetime):
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if isinstance(clock, timedelta):
        clock = (datetime.min + clock).time()
    return (key, at, None if day is None else date.fromisoformat(str(day)),
            None if clock is None else time.fromisoformat(str(clock)),
            None if amount is None else Decimal(str(amount)).normalize(),
            count, None if flag is None else bool(flag))


BAD_VALUES = [
    ("at", "not-a-date", "an RFC 3339 date-time"),
    ("at", "2024-02-30T00:00:00Z", "an RFC 3339 date-time"),
    ("at", "now", "an RFC 3339 date-time"),
    ("at", "epoch", "an RFC 3339 date-time"),
    ("at", "infinity", "an RFC 3339 date-time"),
    ("at", "yesterday", "an RFC 3339 date-time"),
    ("at", 5, "an RFC 3339 date-time"),
    ("day", "2024-02-30", "an RFC 3339 date (YYYY-MM-DD)"),
    ("day", "today", "an RFC 3339 date (YYYY-MM-DD)"),
    ("clock", "allballs", "an RFC 3339 time (HH:MM:SS)"),
    ("clock", "25:00:00", "an RFC 3339 time (HH:MM:SS)"),
    # an offset has no place in a time of day: PostgreSQL dropped it, SQLite kept it
    ("clock", "12:00:00+05:00", "an RFC 3339 time (HH:MM:SS)"),
    ("clock", "12:00:00Z", "an RFC 3339 time (HH:MM:SS)"),
    # valid as written, but its UTC instant falls outside years 1..9999 (MariaDB crashed,
    # PostgreSQL stored a timestamp it could not read back)
    ("at", "9999-12-31T23:59:59-01:00", "an RFC 3339 date-time"),
    ("at", "0001-01-01T00:00:00+01:00", "an RFC 3339 date-time"),
    ("amount", "NaN", "a JSON number"),
    ("amount", "12.5", "a JSON number"),
    ("amount", True, "a JSON number"),
    ("count", "12", "an integer within 64 bits"),
    ("count", 12.5, "an integer within 64 bits"),
    ("count", "NaN", "an integer within 64 bits"),
    ("count", 2**63, "an integer within 64 bits"),
    ("flag", "true", "true or false"),
    ("flag", 1, "true or false"),
    ("at", "x" * 100, "an RFC 3339 date-time"),
]
GOOD = _record(1, at="2024-02-29T23:59:59.999999Z", day="2024-02-29", clock="23:59:59",
               amount=12.5, count=-(2**63), flag=False)
GOOD_ROW = (1, datetime(2024, 2, 29, 23, 59, 59, 999999, UTC), date(2024, 2, 29),
            time(23, 59, 59), Decimal("12.5"), -(2**63), False)


@pytest.mark.parametrize(("column", "value", "what", "validate"), [
    # every other case with validate_records=false: the checks do not depend on it
    (*case, i % 2 == 0) for i, case in enumerate(BAD_VALUES)
], ids=[f"{c}={v!r}"[:40] for c, v, _ in BAD_VALUES])
def test_a_bad_value_is_one_error_on_every_database_and_keeps_what_was_committed(
        url: str, tmp_path: Path, column: str, value: Any, what: str, validate: bool) -> None:
    data = jsonl([SCHEMA, GOOD, _record(2), _record(3, **{column: value}), _record(4)])
    run = run_cli({"sqlalchemy_url": url, "batch_size_rows": 2, "validate_records": validate},
                  data, tmp_path)
    shown = jsonl([value]).decode().strip()
    shown = shown if len(shown) <= 60 else shown[:60] + "…"
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: line 4, stream 'things': invalid value for '{column}': expected "
        f"{what}, got {shown}"]
    assert "Traceback" not in run.stderr
    assert _rows(url) == [GOOD_ROW, (2, None, None, None, None, None, None)]


def test_good_edge_values_load_exactly(url: str, tmp_path: Path) -> None:
    records = [
        GOOD,
        _record(2, at="2024-02-29T10:00:00+05:30", day="9999-12-31", clock="00:00:00",
                amount=-0.001, count=2**63 - 1, flag=True),
        _record(3, at="9999-12-31T23:59:59.5Z", amount=123456789.125, count=0),
        _record(4, at="1970-01-01T00:00:00.25-08:00", amount=3),
        _record(5),
    ]
    run = run_cli({"sqlalchemy_url": url}, [SCHEMA, *records], tmp_path)
    assert run.returncode == 0, run.stderr
    assert _rows(url) == [
        GOOD_ROW,
        (2, datetime(2024, 2, 29, 4, 30, tzinfo=UTC), date(9999, 12, 31), time(0),
         Decimal("-0.001"), 2**63 - 1, True),
        (3, datetime(9999, 12, 31, 23, 59, 59, 500000, UTC), None, None,
         Decimal("123456789.125"), 0, None),
        (4, datetime(1970, 1, 1, 8, 0, 0, 250000, UTC), None, None, Decimal(3), None, None),
        (5, None, None, None, None, None, None),
    ]


@pytest.mark.parametrize("number", ["1e309", "-1e309", "1E+400"])
def test_a_number_beyond_a_double_is_one_error_on_every_database(
        url: str, tmp_path: Path, number: str) -> None:
    line = '{"type":"RECORD","stream":"things","record":{"id":3,"amount":' + number + '}}\n'
    run = run_cli({"sqlalchemy_url": url, "batch_size_rows": 2},
                  jsonl([SCHEMA, GOOD, _record(2)]) + line.encode(), tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: line 4, stream 'things': invalid value for 'amount': expected a JSON "
        f"number within ±1.7976931348623157e+308, got {number}"]
    assert _rows(url) == [GOOD_ROW, (2, None, None, None, None, None, None)]


def test_other_rfc_3339_spellings_are_stored_as_the_database_reads_them(
        url: str, tmp_path: Path) -> None:
    records = [_record(1, at="2024-01-01t10:00:00z", clock="12:00:00.5"),
               _record(2, at="2024-06-01 12:00:00+02:00"),
               _record(3, at="2024-06-01T12:00:00.1234564Z")]
    run = run_cli({"sqlalchemy_url": url}, [SCHEMA, *records], tmp_path)
    assert run.returncode == 0, run.stderr
    assert _rows(url) == [
        (1, datetime(2024, 1, 1, 10, tzinfo=UTC), None, time(12, 0, 0, 500000), None, None, None),
        (2, datetime(2024, 6, 1, 10, tzinfo=UTC), None, None, None, None, None),
        (3, datetime(2024, 6, 1, 12, 0, 0, 123456, UTC), None, None, None, None, None)]
    if url.startswith("sqlite"):  # SQLite's own date functions read every stored text
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            assert conn.execute('SELECT datetime("at") FROM "things" ORDER BY "id"').fetchall() == [
                ("2024-01-01 10:00:00",), ("2024-06-01 10:00:00",), ("2024-06-01 12:00:00",)]


NUMBERS = {"type": "SCHEMA", "stream": "numbers", "key_properties": ["id"], "schema": {
    "type": "object", "required": ["id", "n"], "properties": {
        "id": {"type": "number"}, "n": {"type": "number"},
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"}}}}


@pytest.mark.parametrize(("record", "error"), [
    ({"id": None, "n": 1}, "record is missing key property 'id'"),
    ({"id": 2, "n": None}, "required property 'n' is missing or null in an upsert"),
])
def test_a_null_key_or_required_number_is_refused_like_any_other(
        url: str, record: dict[str, Any], error: str) -> None:
    """A generic number is read from raw JSON (value_checks._exact_number), so msgspec lets its
    `null` through even where the column is a key or required: refused naming the line, as a
    null string is (it was a NOT NULL driver error naming no line, or stored as NULL)."""
    import contextlib
    import io
    import json

    from target_dap_sql.target import TargetDapSQL

    delete = {"id": 9, "n": None, "_sdc_deleted_at": "2024-01-01T00:00:00Z"}  # a delete may
    messages = [NUMBERS, *({"type": "RECORD", "stream": "numbers", "record": r}
                           for r in ({"id": 1, "n": 1.5}, delete, record))]
    target = TargetDapSQL(config={"sqlalchemy_url": url}, parse_env_config=False)
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(Exception) as raised:
        target.listen(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    assert str(raised.value) == f"line 4, stream 'numbers': {error}"


@pytest.mark.mariadb
def test_a_mariadb_time_column_of_an_older_table_keeps_fractions_from_now_on(
        mariadb_url: str, tmp_path: Path) -> None:
    """A generic `time` column is `time(6)`: bare `time` (the first tables' type) dropped a
    value's fraction silently; such a column is widened, its stored values unchanged."""
    first = run_cli({"sqlalchemy_url": mariadb_url}, [SCHEMA, _record(1, clock="08:30:00")],
                    tmp_path)
    assert first.returncode == 0, first.stderr
    assert mysql_query(mariadb_url, "SELECT column_type FROM information_schema.columns WHERE "
                       "table_schema = DATABASE() AND column_name = 'clock'") == [("time(6)",)]
    mysql_query(mariadb_url, 'ALTER TABLE "things" MODIFY COLUMN "clock" time NULL')
    again = run_cli({"sqlalchemy_url": mariadb_url}, [SCHEMA, _record(2, clock="12:00:00.5")],
                    tmp_path)
    assert again.returncode == 0, again.stderr
    assert mysql_query(mariadb_url, "SELECT column_type FROM information_schema.columns WHERE "
                       "table_schema = DATABASE() AND column_name = 'clock'") == [("time(6)",)]
    assert [row[3] for row in _rows(mariadb_url)] == [time(8, 30), time(12, 0, 0, 500000)]


def test_a_time_rounding_past_midnight_is_the_last_microsecond_of_the_day(
        url: str, tmp_path: Path) -> None:
    """A time with more than six fractional digits is rounded to microseconds: one that
    rounds up to 24:00:00 was stored as 00:00:00, a day off, on every database."""
    records = [_record(1, clock="23:59:59.9999999"), _record(2, clock="23:59:59.9999995"),
               _record(3, clock="23:59:59.9999994"), _record(4, clock="00:00:00.0000005")]
    run = run_cli({"sqlalchemy_url": url}, [SCHEMA, *records], tmp_path)
    assert run.returncode == 0, run.stderr
    assert [row[3] for row in _rows(url)] == [time.max, time.max, time(23, 59, 59, 999999),
                                              time(0, 0, 0, 1)]
