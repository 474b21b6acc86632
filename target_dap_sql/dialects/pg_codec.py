"""PostgreSQL's record types and binary COPY rows, without a connection.

What records decode to (`field_type`) and how a decoded row becomes a binary COPY tuple
(`PgRowCodec`) live here, apart from the dialect's connection, so a record worker process
(target_dap_sql/workers.py) can decode and encode rows with nothing but this module, msgspec and
psycopg's dumpers: no URL, no password, no socket.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from target_dap_sql.decoding import (
    Converters,
    Decoded,
    RecordDecoder,
    constrained,
    decimal_fits,
)
from target_dap_sql.layout import Column, SqlType, TableLayout

_AWARE = Annotated[dt.datetime, msgspec.Meta(tz=True)]

# kind → (msgspec decode type, COPY type of the temp table column)
LOAD_TYPES: dict[str, tuple[Any, str]] = {
    "smallint": (int, "int2"), "integer": (int, "int4"), "bigint": (int, "int8"),
    "real": (float, "float4"), "double": (float, "float8"),
    "decimal": (Decimal, "numeric"), "numeric": (Decimal, "numeric"),
    "boolean": (bool, "bool"),
    "text": (str, "text"), "varchar": (str, "text"), "char": (str, "text"), "enum": (str, "text"),
    # DAP timestamps always carry `Z`; other taps' timestamps are parsed by the server (lenient).
    "timestamp": (_AWARE, "timestamptz"), "timestamptz": (str, "text"),
    "date": (dt.date, "date"), "time": (str, "text"), "interval": (str, "text"),
    "uuid": (uuid.UUID, "uuid"), "inet": (str, "text"),
    # Raw JSON bytes go through bytea untouched; the server parses them into jsonb.
    "json": (msgspec.Raw, "bytea"),
}

#: A run's rows as a worker sends them: keys, is-delete flags (one byte each), the binary
#: tuples one after the other, and where each ends.
EncodedRun = tuple[list[Any], bytes, bytearray, array]
#: The binary COPY format's header (signature, flags, no extension) and trailer: rows encoded
#: ahead of time are sent as one block between them (psycopg adds neither in block mode).
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = b"\xff\xff"
#: A `bool` field of a binary tuple: length 1, then the byte.
_FLAG = {False: struct.pack("!iB", 1, 0), True: struct.pack("!iB", 1, 1)}


def field_type(column: Column, layout: TableLayout) -> Any:
    """The msgspec type a column's values decode to (the value its COPY type dumps)."""
    return decode_type(column.type, layout)


#: The most digits after the decimal point binary COPY can carry (psycopg refuses more, as a
#: driver error at the commit that names no line).
_MAX_SCALE = 0x3FFF
#: The most digits before it (the format's weight is an int16 of base-10000 digits): a nonzero
#: value's adjusted exponent is below this.
_MAX_INTEGER_DIGITS = 4 * (0x7FFF + 1)
#: CPython's decimal keeps a coefficient of up to 76 digits inside the object; its size grows
#: only with more. Such a value's scale is at most 75 - adjusted(), so two cheap C calls clear it
#: (the full check builds a tuple of every digit: ~0.4 µs a value, four decimals a row).
_INLINE_SIZE = Decimal(1).__sizeof__()
_SIZE_GROWS = Decimal("1" * 200).__sizeof__() > _INLINE_SIZE  # else: always the full check
_SURELY_FITS = 80 - _MAX_SCALE


def _check_scale(value: Decimal) -> Decimal:
    """Refuse a value binary COPY cannot carry: more than 16383 digits after the point, or
    (nonzero) more than 131072 before it."""
    if (_SIZE_GROWS and value.__sizeof__() == _INLINE_SIZE
            and _SURELY_FITS <= value.adjusted() < _MAX_INTEGER_DIGITS):
        return value
    if value.is_finite():
        if value.as_tuple().exponent < -_MAX_SCALE:  # type: ignore[operator]
            raise ValueError(f"more than {_MAX_SCALE} digits after the decimal point")
        if value and value.adjusted() >= _MAX_INTEGER_DIGITS:
            raise ValueError(f"more than {_MAX_INTEGER_DIGITS} digits before the decimal point")
    return value


def converters(layout: TableLayout) -> Converters:
    """Checks of decoded values that msgspec cannot make: a decimal PostgreSQL's binary format
    or its column cannot hold is refused while decoding, so the error names its line (here and
    in workers)."""
    out: Converters = []
    for i, c in enumerate(layout.record_columns):
        if c.type.kind in ("decimal", "numeric"):
            out.append((i, _check_scale))
        if c.type.kind == "decimal" and c.type.precision is not None:
            out.append((i, decimal_fits(c.type)))
    return out


def decode_type(sql_type: SqlType, layout: TableLayout) -> Any:
    if sql_type.kind == "array":
        # psycopg dumps lists in Python (slow); raw JSON is converted on the server instead.
        return msgspec.Raw
    return constrained(LOAD_TYPES[sql_type.kind][0], sql_type, layout)


def copy_type(sql_type: SqlType) -> str:
    return "bytea" if sql_type.kind == "array" else LOAD_TYPES[sql_type.kind][1]


@dataclass
class PgRowCodec:
    """Decodes RECORD runs of one layout and encodes each row as one binary COPY tuple of its
    record columns (no `_dap_deleted` flag: `with_flags` adds it for the load table).

    Picklable (the layout and type names only); what it builds stays in the process using it.
    """

    layout: TableLayout
    _built: tuple[RecordDecoder, Any, Any] | None = field(default=None, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"layout": self.layout, "_built": None}

    def _parts(self) -> tuple[RecordDecoder, Any, Any]:
        if self._built is None:
            # psycopg's internals: its C row formatter and a transformer with the binary dumpers
            # of the COPY types, as `Copy.write_row` uses them (the global adapters, UTF-8 text:
            # the dialect only uses a codec on a UTF-8 connection).
            from psycopg import adapters, pq
            from psycopg._copy_base import format_row_binary
            from psycopg.adapt import Transformer

            columns = self.layout.record_columns
            transformer = Transformer()
            transformer.set_dumper_types(
                [adapters.types[copy_type(c.type)].oid for c in columns], pq.Format.BINARY)
            decoder = RecordDecoder(self.layout, field_type, converters(self.layout))
            self._built = (decoder, transformer, format_row_binary)
        return self._built

    def decode_run(self, lines: list[bytes]) -> EncodedRun | None:
        """`RecordDecoder.decode_run` with the rows encoded, packed to cross a pipe cheaply
        (`unpack` gives the rows), or None: take the lines one by one."""
        decoder, transformer, format_row = self._parts()
        decoded = decoder.decode_run(lines)
        if decoded is None:
            return None
        keys, deleted, blob, ends = [], bytearray(), bytearray(), array("Q")
        for key, row, is_delete in decoded:
            format_row(row, transformer, blob)
            ends.append(len(blob))
            keys.append(key)
            deleted.append(is_delete)
        return keys, bytes(deleted), blob, ends

    @staticmethod
    def unpack(run: EncodedRun) -> list[Decoded]:
        """(key, binary COPY tuple, is_delete) of each row of a packed run."""
        keys, deleted, blob, ends = run
        blob = bytes(blob)
        rows = [blob[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        return list(zip(keys, rows, map(bool, deleted), strict=True))

    def encode(self, decoded: list[Decoded]) -> list[Decoded]:
        """(key, row tuple, is_delete) → (key, binary COPY tuple, is_delete)."""
        _, transformer, format_row = self._parts()
        out = []
        for key, row, deleted in decoded:
            buffer = bytearray()
            format_row(row, transformer, buffer)
            out.append((key, bytes(buffer), deleted))
        return out


def with_flags(rows: Sequence[bytes], width: int, deleted: bool) -> list[bytes | memoryview]:
    """Pieces of the binary tuples of ``width`` record columns with the `_dap_deleted` flag
    field appended (the field count grows by one), ready for one `b"".join`."""
    count, flag = struct.pack("!h", width + 1), _FLAG[deleted]
    parts: list[bytes | memoryview] = []
    for row in rows:
        parts += (count, memoryview(row)[2:], flag)
    return parts
