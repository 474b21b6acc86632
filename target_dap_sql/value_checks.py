"""Strict value checks for generic (non-DAP) Singer streams, the same on every dialect.

A DAP stream's values are typed by the tap's schema and decode straight into the driver's types.
A generic stream (e.g. from tap-jsonl) may carry anything, and some dialects would store a bad
value as something else: SQLite keeps `not-a-date` as text, PostgreSQL reads `now`/`epoch` as a
time and `"NaN"` as a number. So each mapped JSON-schema type is checked here, whatever
`validate_records` says, and a bad value gets one error worded the same on every database:
``invalid value for 'column': expected <what>, got <value>``.

Temporal values and numbers are parsed here on every dialect (text in a canonical RFC 3339
spelling where the dialect keeps text, else the parsed value; a number from raw JSON, never
from a JSON string, within a double's range); other kinds are refused by msgspec's decode and
`explain_generic` words its error the same way.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from target_dap_sql.layout import Column

#: What a generic column's JSON value must be, by the column's SQL kind.
EXPECTED = {
    "bigint": "an integer within 64 bits",
    "numeric": "a JSON number",
    "boolean": "true or false",
    "timestamptz": "an RFC 3339 date-time",
    "date": "an RFC 3339 date (YYYY-MM-DD)",
    "time": "an RFC 3339 time (HH:MM:SS)",
    "uuid": "a UUID",
    "text": "a string",
}
#: Temporal kinds a dialect may keep as text for its server to parse: checked by parsing here.
_PARSED = {"timestamptz": dt.datetime, "date": dt.date, "time": dt.time}
_SHOWN_CHARS = 60
_NUMBER_START = frozenset(b"-0123456789")


def expected(column: Column) -> str | None:
    """What a generic column's values must be, for error messages; None: anything goes."""
    if column.type.kind == "varchar":
        return f"a string of at most {column.type.length} characters"
    return EXPECTED.get(column.type.kind)


def shown(value: Any) -> str:
    """A value as JSON text for an error message, cut to a readable length."""
    try:
        text = bytes(value).decode() if isinstance(value, msgspec.Raw) else (
            msgspec.json.encode(value).decode())
    except (TypeError, UnicodeDecodeError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def _temporal_check(kind: str, what: str, keep_text: bool) -> Callable[[str], Any]:
    """Parse an RFC 3339 text; return it canonical (`keep_text`) or as the parsed value.

    Canonical text (upper-case `T`/`Z`, at most microseconds) is what every database reads the
    same way: SQLite's date functions read `2024-01-01t00:00:00z` as NULL. A date-time must
    also have its UTC instant within years 1..9999 (MariaDB cannot convert it, PostgreSQL
    stores one it cannot read back), and a time of day has no offset (PostgreSQL drops it).
    """
    parsed_type = _PARSED[kind]

    def check(value: str) -> Any:
        try:
            parsed = msgspec.convert(value, parsed_type)
            if kind == "timestamptz":
                parsed.astimezone(dt.UTC)
            elif kind == "time":
                if parsed.tzinfo is not None:
                    raise ValueError
                if parsed.hour < int(value[:2]):
                    # msgspec rounds to microseconds and wraps 23:59:59.9999995 to 00:00:00,
                    # a day off: it is the last microsecond of the day instead (as MariaDB's
                    # truncation keeps it; PostgreSQL's 24:00:00 is no Python time).
                    parsed = dt.time.max
        except (msgspec.ValidationError, OverflowError, ValueError):
            raise ValueError(f"expected {what}, got {shown(value)}") from None
        return msgspec.json.encode(parsed)[1:-1].decode() if keep_text else parsed

    return check


def _exact_number(what: str, number: type) -> Callable[[msgspec.Raw], Any]:
    """Read a JSON number from raw JSON as `number` (Decimal or float).

    Never from a JSON string (msgspec reads "12.5" as a Decimal), and within a double's range
    on every dialect: SQLite/MariaDB store doubles, so PostgreSQL's numeric takes no 1e309.
    """
    def convert(raw: msgspec.Raw) -> Any:
        text = bytes(raw)
        if text == b"null":
            return None
        if text[0] not in _NUMBER_START:  # a string ("NaN", "12.5"), true, an object …
            raise ValueError(f"expected {what}, got {shown(raw)}")
        value = Decimal(text.decode())
        if math.isinf(float(value)):
            raise ValueError(f"expected {what} within ±{sys.float_info.max!r}, got {shown(raw)}")
        return value if number is Decimal else float(value)

    return convert


def generic_checks(columns: list[Column], decode_types: list[Any]
                   ) -> tuple[list[Any], list[tuple[int, Callable[[Any], Any]]]]:
    """Decode types and checks (index, function) for a generic layout's record columns.

    `decode_types` are the dialect's; a check replaces nothing the dialect converts later, it
    only refuses a value (or, for an exact number, reads it from raw JSON instead of letting
    msgspec accept a JSON string as a Decimal).
    """
    types = list(decode_types)
    checks: list[tuple[int, Callable[[Any], Any]]] = []
    for i, column in enumerate(columns):
        kind, what = column.type.kind, expected(column)
        if what is None:
            continue
        base = _base(types[i])
        if kind in _PARSED and base in (str, _PARSED[kind]):
            checks.append((i, _temporal_check(kind, what, keep_text=base is str)))
            if base is not str:  # parsed here, with the checks msgspec's own parse lacks
                types[i] = str
        elif kind == "numeric" and base in (Decimal, float):
            types[i] = msgspec.Raw
            checks.append((i, _exact_number(what, base)))
    return types, checks


def _base(decode_type: Any) -> Any:
    """`Annotated[str, Meta(...)]` → str; other types unchanged."""
    return getattr(decode_type, "__origin__", decode_type)


def explain_generic(message: str, record: Any, columns: list[Column],
                    json_name: Callable[[str], str]) -> str | None:
    """msgspec's error at `$.<column>` worded as the checks word theirs; None if not a value's.

    `record` is the generically decoded record object, `json_name` maps a column to its key.
    """
    head, sep, path = message.rpartition(" - at `$.")
    if not sep or not isinstance(record, dict):
        return None
    name = path[:-1]
    for column in columns:
        if column.name == name:
            what = expected(column)
            key = json_name(name)
            if what is None or key not in record or (head.endswith("got `null`")):
                return None
            return f"invalid value for '{name}': expected {what}, got {shown(record[key])}"
    return None
