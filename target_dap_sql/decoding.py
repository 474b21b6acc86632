"""Typed RECORD decoding: one msgspec Struct per stream, generated from its table layout.

Decoding straight into the Python types the database driver needs (int, float, datetime, UUID,
raw JSON bytes …) validates types, enums, lengths and key presence in C at almost no cost, and
replaces both jsonschema validation and the SDK's per-value timestamp parsing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from decimal import Context, Decimal
from typing import Annotated, Any, AnyStr, Literal

import msgspec

from target_dap_sql.errors import InputError, MissingKeyPropertyError, undecodable
from target_dap_sql.layout import DELETED_AT, Column, SqlType, TableLayout
from target_dap_sql.value_checks import explain_generic, generic_checks

#: A dialect hook: the msgspec type a column's values decode to.
FieldTypeFn = Callable[[Column, TableLayout], Any]
#: A dialect hook: per-column converters applied after decoding (index, function).
Converters = list[tuple[int, Callable[[Any], Any]]]
#: A decoded record: (key, row, is_delete). The row is a tuple of column values, or the bytes a
#: dialect's row codec encoded it to (dialects/pg_codec.py).
Decoded = tuple[Any, Any, bool]

_INT_RANGES = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


class RecordMeta(msgspec.Struct, gc=False):
    action: Literal["U", "D"] | None = None
    ts: str | None = None


def constrained(base: Any, sql_type: SqlType, layout: TableLayout) -> Any:
    """Wrap a scalar decode type with the cheap checks the schema implies.

    Integer ranges are checked whatever `validate_records` says: a driver sends an int that does
    not fit its column as another value (binary COPY wraps 3000000000 into int4 as -1294967296),
    so skipping the check would store wrong numbers silently.
    """
    kind = sql_type.kind
    if kind in _INT_RANGES and base is int:
        bound = _INT_RANGES[kind]
        return Annotated[int, msgspec.Meta(ge=-bound, le=bound - 1)]
    if not layout.validate:
        return base
    if kind == "enum":
        return Literal[sql_type.labels] if sql_type.labels else base  # type: ignore[valid-type]
    if kind in ("varchar", "char") and sql_type.length is not None:
        return Annotated[base, msgspec.Meta(max_length=sql_type.length)]
    return base


def decimal_fits(sql_type: SqlType) -> Callable[[Decimal], Decimal]:
    """A check of a `decimal(p, s)` column's values: PostgreSQL and MySQL round a value to `s`
    digits after the point (half away from zero) and refuse one whose rounded integer part has
    more than `p - s` digits, in an error naming no line; refused here, while decoding, so the
    error names it. NaN passes (PostgreSQL stores it; MySQL's own check refuses it)."""
    precision, scale = sql_type.precision or 0, sql_type.scale or 0
    # The smallest magnitude that rounds up to 10^(p-s): 10^(p-s) - 5·10^(-s-1), exactly (its
    # p + 1 digits: the default context's 28 would round it up to 10^(p-s) when p > 27).
    exact = Context(prec=abs(precision) + 2)
    bound = exact.subtract(exact.power(10, precision - scale), Decimal(5).scaleb(-scale - 1))
    limit = f"decimal({precision}, {scale}) holds less than 10^{precision - scale}"

    def check(value: Decimal) -> Decimal:
        # copy_abs, not abs(): abs() rounds to the context's 28 digits, and a longer value just
        # below the bound (999.99499999999999999999999999999) would compare as at it.
        if not value.is_nan() and value.copy_abs() >= bound:
            text = str(value)  # (up to 131072 digits get here: shown in short)
            raise ValueError(f"{text if len(text) <= 40 else f'{value:.6E}'} does not fit: "
                             f"{limit}")
        return value
    return check


#: A JSON-escaped NUL (U+0000) preceded by an even number of backslashes (an odd number would
#: make it the literal text `\\u0000`); JSON has no other way to carry a NUL in a string.
NUL_ESCAPE_BYTES = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
NUL_ESCAPE_TEXT = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def replace_nul_escapes(line: AnyStr) -> AnyStr:
    """The JSON text with every escaped NUL replaced by U+FFFD (the replacement character)."""
    if isinstance(line, bytes):
        return NUL_ESCAPE_BYTES.sub(rb"\1\\ufffd", line)
    return NUL_ESCAPE_TEXT.sub(r"\1\\ufffd", line)


def _placeholders(names: list[str]) -> dict[str, str]:
    """Stand-in JSON names for column names msgspec cannot rename a field to (`"` or `\\`)."""
    taken = set(names)
    out: dict[str, str] = {}
    for i, name in enumerate(names):
        if '"' in name or "\\" in name:
            stand_in = f"_dap_column_{i}"
            while stand_in in taken:
                stand_in = "_" + stand_in
            taken.add(stand_in)
            out[name] = stand_in
    return out


class RecordDecoder:
    """Decodes the raw JSON of a RECORD's `record` object into (key, row, is_delete).

    Upserts must carry every required non-key column; deletes only their key. Both are decoded
    with the upsert struct first (required columns have no default there), and only a record it
    rejects is decoded again with the lenient struct — so the check costs nothing per record.
    """

    def __init__(self, layout: TableLayout, field_type: FieldTypeFn, converters: Converters):
        self.layout = layout
        columns = layout.record_columns
        self._names = [c.name for c in columns]
        self._stand_ins = _placeholders(self._names)
        self._real_names = {v: k for k, v in self._stand_ins.items()}
        strict: list[tuple[Any, ...]] = []
        lenient: list[tuple[Any, ...]] = []
        rename: dict[str, str] = {}
        types = dialect_types = [field_type(col, layout) for col in columns]
        checks: Converters = []
        if layout.dap is None:  # another tap's stream: its values are checked strictly
            types, checks = generic_checks(columns, types)
        for i, (col, py_type) in enumerate(zip(columns, types, strict=True)):
            optional = (f"c{i}", py_type | None if py_type is not msgspec.Raw else py_type, None)
            if col.name in layout.key_columns:
                strict.append((f"c{i}", py_type))
                lenient.append((f"c{i}", py_type))
            elif not col.nullable:
                strict.append((f"c{i}", py_type))
                lenient.append(optional)
            else:
                strict.append(optional)
                lenient.append(optional)
            rename[f"c{i}"] = self._stand_ins.get(col.name, col.name)
        trailer: list[tuple[Any, ...]] = [("m", RecordMeta | None, None)]
        # A stream whose `meta` is a column of its own (not a DAP layout: e.g. a stream map gave
        # a DAP stream other key properties) marks deletes with _sdc_deleted_at only; the
        # trailer then reads a member no record has.
        rename["m"] = "meta" if "meta" not in self._names else "~dap~meta~"
        self._width = len(columns)
        if DELETED_AT in self._names:
            self._deleted_index = self._names.index(DELETED_AT)
        else:
            trailer.append(("d", str | None, None))
            rename["d"] = DELETED_AT
            self._deleted_index = self._width + 1
        name = f"{layout.table}_record"
        self._decoder = msgspec.json.Decoder(msgspec.defstruct(
            name, strict + trailer, kw_only=True, rename=rename, gc=False))
        self._lenient: msgspec.json.Decoder | None = None
        if lenient != strict:
            self._lenient = msgspec.json.Decoder(msgspec.defstruct(
                name, lenient + trailer, kw_only=True, rename=rename, gc=False))
        self._astuple = msgspec.structs.astuple
        # Runs of whole RECORD lines decode in one call, straight into the record structs
        # (`type`, `stream`, `version` are skipped: the reader matched them already).
        self._run_decoders = [
            msgspec.json.Decoder(list[msgspec.defstruct(  # type: ignore[misc]
                f"{name}_message", [("record", decoder.type)], gc=False)])
            for decoder in (self._decoder, self._lenient) if decoder is not None
        ]
        #: After a run needed the lenient struct (it held deletes), runs start with it.
        self._run_lenient_first = False
        self._required = [i for i, c in enumerate(columns)
                          if not c.nullable and c.name not in layout.key_columns]
        key_idx = [self._names.index(k) for k in layout.key_columns]
        # A value a check reads from raw JSON instead (a generic number: value_checks) is let
        # through as `null` by msgspec, and the check makes it None: such key and required
        # columns are checked after the conversion. (JSON columns keep their own handling.)
        raw = [i for i, (py_type, dialect_type)
               in enumerate(zip(types, dialect_types, strict=True))
               if py_type is msgspec.Raw and dialect_type is not msgspec.Raw]
        self._raw_keys = [i for i in key_idx if i in raw]
        self._raw_required = [i for i in self._required if i in raw]
        self.key_of: Callable[[tuple], Any] = (
            operator.itemgetter(*key_idx) if key_idx else (lambda row: None)
        )
        # A check runs before the dialect's converter of the same column: it sees the JSON value.
        self._converters = checks + converters

    @property
    def renames_columns(self) -> bool:
        """Whether records need re-keying (`decode_run` then always declines)."""
        return bool(self._stand_ins)

    def decode(self, raw: bytes | msgspec.Raw, stream: str) -> Decoded:
        if self._stand_ins:
            raw = self._rename(raw, stream)
        try:
            obj = self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            if self._lenient is None:
                raise self._explain(str(exc), stream, raw) from None
            return self._decode_lenient(raw, str(exc), stream)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            reason = undecodable(raw, exc, "record")
            raise InputError(f"record is {reason}", stream=stream) from None
        return self._finish((obj,), stream, upserts_checked=True)[0]

    def _finish(self, structs: Iterable[Any], stream: str, *, upserts_checked: bool
                ) -> list[Decoded]:
        """(key, row, is_delete) of decoded record structs: the one loop of both decode paths.

        Without `upserts_checked` (decoded with the lenient struct) an upsert that lacks a
        required column raises _IncompleteUpsert. Names are bound locally: this loop runs once
        per record.
        """
        astuple, width, deleted_index = self._astuple, self._width, self._deleted_index
        key_of, required, convert = self.key_of, self._required, self._converters
        refuse_nulls = self._refuse_nulls if self._raw_keys or self._raw_required else None
        out = []
        for struct in structs:
            values = astuple(struct)
            meta = values[width]
            deleted = values[deleted_index] is not None or (
                meta is not None and meta.action == "D")
            row = values[:width]
            if not upserts_checked and not deleted and any(row[i] is None for i in required):
                raise _IncompleteUpsert
            if convert:
                row = self._convert(row, stream)
                if refuse_nulls is not None:
                    refuse_nulls(row, deleted, stream)
            out.append((key_of(row), row, deleted))
        return out

    def decode_run(self, lines: list[bytes]) -> list[Decoded] | None:
        """Decode whole RECORD message lines of this stream as one JSON array.

        Returns (key, row, is_delete) per line, or None when any line needs the line-by-line
        path: invalid input (whose error must name its line) or renamed column names.
        """
        if self._stand_ins:
            return None
        # One copy of the run: brackets go onto the first and last line, not around the join.
        if len(lines) > 1:
            data = b",".join([b"[" + lines[0], *lines[1:-1], lines[-1] + b"]"])
        else:
            data = b"[" + lines[0] + b"]"
        decoders = self._run_decoders
        lenient = self._run_lenient_first and len(decoders) > 1
        try:
            messages = decoders[lenient].decode(data)
        except msgspec.ValidationError:
            if lenient or len(decoders) < 2:
                return None
            try:  # the strict struct refuses deletes without their required columns
                messages = decoders[1].decode(data)
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
                return None
            lenient = self._run_lenient_first = True
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None
        try:
            return self._finish([m.record for m in messages], "", upserts_checked=not lenient)
        except (InputError, _IncompleteUpsert):
            return None

    def _decode_lenient(self, raw: bytes | msgspec.Raw, strict_error: str,
                        stream: str) -> Decoded:
        """A record the upsert struct rejected: fine if it is a delete, else one clear error."""
        assert self._lenient is not None
        try:
            obj = self._lenient.decode(raw)
        except msgspec.ValidationError as exc:
            raise self._explain(str(exc), stream, raw) from None
        try:
            return self._finish((obj,), stream, upserts_checked=False)[0]
        except _IncompleteUpsert:
            raise self._explain(strict_error, stream, raw, upsert=True) from None

    def _rename(self, raw: bytes | msgspec.Raw, stream: str) -> bytes:
        """Re-key a record whose column names msgspec cannot match directly (slow, rare)."""
        try:
            record = msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            reason = undecodable(raw, exc, "record")
            raise InputError(f"record is {reason}", stream=stream) from None
        if not isinstance(record, dict):
            raise InputError("record is not a JSON object", stream=stream)
        for name, stand_in in self._stand_ins.items():
            if name in record:
                record[stand_in] = record.pop(name)
        return msgspec.json.encode(record)

    def find_nul(self, raw: bytes | msgspec.Raw, stream: str) -> InputError | None:
        """The error to raise if a decoded value holds a NUL character, else None."""
        key, row, _ = self.decode(raw, stream)
        for name, value in zip(self._names, row, strict=True):
            if (isinstance(value, str) and "\x00" in value) or (
                    isinstance(value, (bytes, msgspec.Raw))
                    and NUL_ESCAPE_BYTES.search(bytes(value))):
                key_text = f" (key {key!r})" if self.layout.key_columns else ""
                return InputError(
                    f"column '{name}'{key_text} contains a NUL character (U+0000), which "
                    "PostgreSQL cannot store; remove it at the source or set "
                    "sanitize_null_characters to replace it with U+FFFD", stream=stream)
        return None

    def _refuse_nulls(self, row: tuple, deleted: bool, stream: str) -> None:
        for i in self._raw_keys:
            if row[i] is None:
                raise MissingKeyPropertyError(
                    f"record is missing key property '{self._names[i]}'", stream=stream)
        if not deleted:
            for i in self._raw_required:
                if row[i] is None:
                    raise InputError(f"required property '{self._names[i]}' is missing or null "
                                     "in an upsert", stream=stream)

    def _convert(self, row: tuple, stream: str) -> tuple:
        # A copy only once a converter changes a value (checks return it as is); converters of
        # one column chain (a generic value's conversion, then the dialect's check).
        out = None
        for i, fn in self._converters:
            value = row[i] if out is None else out[i]
            if value is not None:
                try:
                    converted = fn(value)
                except (TypeError, ValueError) as exc:
                    raise InputError(f"invalid value for '{self._names[i]}': {exc}",
                                     stream=stream) from None
                if converted is not value:
                    if out is None:
                        out = list(row)
                    out[i] = converted
        return row if out is None else tuple(out)

    def _explain(self, message: str, stream: str, raw: bytes | msgspec.Raw, *,
                 upsert: bool = False) -> InputError:
        for stand_in, name in self._real_names.items():
            message = message.replace(f"`{stand_in}`", f"`{name}`").replace(
                f"$.{stand_in}`", f"$.{name}`")
        for column in self.layout.record_columns:
            name = column.name
            if message == f"Object missing required field `{name}`" or (
                message.endswith(f"got `null` - at `$.{name}`")
            ):
                if name in self.layout.key_columns:
                    return MissingKeyPropertyError(f"record is missing key property '{name}'",
                                                   stream=stream)
                if upsert:
                    return InputError(f"required property '{name}' is missing or null in an "
                                      "upsert", stream=stream)
        if self.layout.dap is None:  # worded as the value checks word it, on every dialect
            try:
                record = msgspec.json.decode(raw)
            except (msgspec.DecodeError, UnicodeDecodeError):
                record = None
            generic = explain_generic(message, record, self.layout.record_columns,
                                      lambda name: self._stand_ins.get(name, name))
            if generic is not None:
                return InputError(generic, stream=stream)
        return InputError(f"invalid record: {message}", stream=stream)


class _IncompleteUpsert(Exception):
    """An upsert decoded with the lenient struct lacks a required column (see _finish)."""
