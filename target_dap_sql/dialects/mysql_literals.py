"""SQL text of a row's values for MySQL statements, as PyMySQL's ``conn.escape`` writes it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from pymysql.converters import escape_float
from pymysql.err import ProgrammingError

from target_dap_sql.layout import SqlType

#: Characters PyMySQL's backslash escaping rewrites (pymysql.converters._escape_table).
_NEEDS_ESCAPE = re.compile("[\x00\n\r\x1a'\"\\\\]").search


def literal_row(conn: Any) -> Callable[[tuple], str]:
    """``conn.escape(row)``, several times faster: PyMySQL escapes each value through an
    isinstance chain and a mapping lookup (~5 s of CPU for 100k 46-column rows); here one dict
    lookup per value picks the same text. Types not listed here go to PyMySQL itself.
    (``_escape_string`` is what ``conn.escape`` uses for text: it follows the session's
    NO_BACKSLASH_ESCAPES; tests/integration/test_target_lanes.py holds both to the same text.)"""
    escape_string, fallback = conn._escape_string, conn.escape

    def text(value: str) -> str:
        return "'" + escape_string(value) + "'"

    def binary(value: bytes) -> str:
        return "X'" + value.hex() + "'"

    def timestamp(value: dt.datetime) -> str:
        # isoformat(" ") of a naive datetime is PyMySQL's text: microseconds only when non-zero
        return "'" + value.isoformat(" ") + "'" if value.tzinfo is None else fallback(value)

    def day(value: dt.date) -> str:
        return "'" + value.isoformat() + "'"

    encoders: dict[type, Callable[[Any], str]] = {
        str: text, bytes: binary, bytearray: binary, int: int.__str__, type(None): _null,
        bool: _bool, float: escape_float, dt.datetime: timestamp, dt.date: day,
    }
    get = encoders.get

    def row_literal(row: tuple) -> str:
        return "(" + ",".join([get(type(v), fallback)(v) for v in row]) + ")"

    return row_literal


#: Per column kind: the expression (of the value ``v``) that writes its literal, for the values
#: the decoder gives that kind (target_dap_sql.dialects.mysql._DECODE and its converters). Each
#: raises on a value of another type (``int.__repr__("x")`` is a TypeError) rather than write
#: unescaped text. Kinds not listed take the per-type table of `literal_row`.
_KIND_EXPRESSIONS = {
    **dict.fromkeys(("smallint", "integer", "bigint"), "N if v is None else INT(v)"),
    "boolean": "BOOL[v]",
    **dict.fromkeys(("real", "double", "numeric"), "N if v is None else FLOAT(v)"),
    "decimal": "N if v is None else DEC(v)",
    **dict.fromkeys(("timestamp", "timestamptz"), "N if v is None else Q + STAMP(v, ' ') + Q"),
    "date": "N if v is None else Q + DAY(v) + Q",
    "uuid": "N if v is None else 'X' + Q + HEX(v) + Q",
}
_TEXT = "N if v is None else Q + (ESC(v) if SPECIAL(v) else STR(v)) + Q"
_TEXT_KINDS = frozenset(("varchar", "char", "text", "enum", "json", "array"))


def literal_row_of(conn: Any, kinds: Sequence[str]) -> Callable[[tuple], str]:
    """`literal_row` for rows whose i-th value is of column kind ``kinds[i]``: one generated
    function per table shape writes the whole row in one f-string, with no per-value type
    dispatch (~3× faster than `literal_row` on 46-column rows, the target's largest CPU cost on
    changes into MySQL). Text without a character to escape is copied as it is."""
    escape_string = conn._escape_string
    # NO_BACKSLASH_ESCAPES (PyMySQL then leaves a backslash as it is): only quotes are doubled
    special = re.compile("'").search if escape_string("\\") == "\\" else _NEEDS_ESCAPE
    generic = literal_row(conn)
    names = {
        "N": "NULL", "Q": "'", "INT": int.__repr__, "BOOL": {True: "1", False: "0", None: "NULL"},
        "FLOAT": escape_float, "DEC": _decimal, "STAMP": dt.datetime.isoformat,
        "DAY": dt.date.isoformat,
        "HEX": bytes.hex, "ESC": escape_string, "SPECIAL": special, "STR": str.__str__,
        "ANY": lambda v: generic((v,))[1:-1],
    }
    parts = []
    for i, kind in enumerate(kinds):
        expression = _KIND_EXPRESSIONS.get(kind) or (_TEXT if kind in _TEXT_KINDS else "ANY(v)")
        parts.append("{" + re.sub(r"\bv\b", f"v{i}", expression) + "}")
    values = "".join(f"v{i}, " for i in range(len(kinds)))  # `() = row`: a row of no values
    source = (f"def row_literal(row):\n    ({values}) = row\n"
              f"    return f\"({','.join(parts)})\"\n")
    exec(compile(source, "<mysql row literal>", "exec"), names)  # noqa: S102 - fixed template
    return names["row_literal"]  # type: ignore[no-any-return]


#: MySQL's DECIMAL holds at most 65 digits, at most 30 of them after the point.
_MAX_DECIMAL_DIGITS = 65
_ZERO = Decimal(0)


def decimal_in_range(value: Decimal) -> Decimal:
    """A decimal column's value checked while decoding (so the error names its line): one MySQL
    cannot hold is refused, and one too small for any DECIMAL's 30 fractional digits is 0, as
    MySQL would store it. Written out in full, `1E-999999999` or `1E+999999999` is a gigabyte
    of SQL text, built before the server could refuse it."""
    if not value.is_finite():  # `NaN`/`Infinity` unquoted would name a column: PyMySQL's check
        raise ValueError(f"{str(value).lower()} can not be used with MySQL")
    adjusted = value.adjusted()
    if adjusted >= _MAX_DECIMAL_DIGITS and value:
        raise ValueError(f"more than {_MAX_DECIMAL_DIGITS} digits before the decimal point "
                         "(MySQL's DECIMAL holds at most 65)")
    # Below 10^-31 a value rounds to 0 at any scale up to 30 (half of 10^-30 is 5·10^-31).
    return _ZERO if adjusted < -31 else value


def rounded_to_scale(sql_type: SqlType) -> Callable[[Decimal], Decimal]:
    """Round a value of a negative-scale `decimal(p, s)` column to its 10^-s, half away from
    zero, as PostgreSQL does: MySQL's column for it has scale 0 (mysql_schema.decimal_ddl) and
    would keep 994 where PostgreSQL stores 990. Values come checked by `decimal_fits`: at most
    p - s digits."""
    precision, scale = sql_type.precision or 0, sql_type.scale or 0
    step = Decimal(1).scaleb(-scale)
    context = Context(prec=precision - scale + 1, rounding=ROUND_HALF_UP)

    def round_(value: Decimal) -> Decimal:
        return value.quantize(step, context=context)
    return round_


def _decimal(value: Decimal) -> str:
    if type(value) is not Decimal:
        raise TypeError(f"not a Decimal: {type(value).__name__}")
    if not value.is_finite():  # `NaN`/`Infinity` unquoted would name a column: PyMySQL's check
        raise ProgrammingError(f"{str(value).lower()} can not be used with MySQL")
    return format(value, "f")


def _null(_: None) -> str:
    return "NULL"


def _bool(value: bool) -> str:
    return "1" if value else "0"
