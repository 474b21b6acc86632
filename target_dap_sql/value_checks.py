"""Strict value checks for generic (non-DAP) Singer streams, the same on every dialect.

A DAP stream's values are typed by the tap's schema and decode straight into the driver's types.
A generic stream (e.g. from tap-jsonl) may carry anything, and some dialects would store a bad
value as something else: SQLite keeps `not-a-date` as text, PostgreSQL reads `now`/`epoch` as a
time and `"NaN"` as a number. So each mapped JSON-schema type is checked here, whatever
`validate_records` says, and a bad value gets one error worded the same on every database:
``invalid value for 'column': expected <what>, got <value>``.

Checks run only where the dialect's own decode type would let a bad value through (text kept for
the server to parse, or a Decimal that msgspec also reads from a JSON string); elsewhere msgspec
has already refused the value and `explain_generic` words its error the same way.
"""

from __future__ import annotations

import datetime as dt
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


def _text_check(kind: str, what: str) -> Callable[[Any], Any]:
    parsed = _PARSED[kind]

    def check(value: str) -> str:
        try:
            msgspec.convert(value, parsed)
        except msgspec.ValidationError:
            raise ValueError(f"expected {what}, got {shown(value)}") from None
        return value  # kept as written: the database parses the same text

    return check


def _exact_number(what: str) -> Callable[[msgspec.Raw], Decimal | None]:
    def convert(raw: msgspec.Raw) -> Decimal | None:
        text = bytes(raw)
        if text == b"null":
            return None
        if text[0] not in _NUMBER_START:  # a string ("NaN", "12.5"), true, an object …
            raise ValueError(f"expected {what}, got {shown(raw)}")
        return Decimal(text.decode())

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
        if kind in _PARSED and _base(types[i]) is str:
            checks.append((i, _text_check(kind, what)))
        elif kind == "numeric" and _base(types[i]) is Decimal:
            types[i] = msgspec.Raw
            checks.append((i, _exact_number(what)))
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
