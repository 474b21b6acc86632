"""Typed RECORD decoding: one msgspec Struct per stream, generated from its table layout.

Decoding straight into the Python types the database driver needs (int, float, datetime, UUID,
raw JSON bytes …) validates types, enums, lengths and key presence in C at almost no cost, and
replaces both jsonschema validation and the SDK's per-value timestamp parsing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from target_dap_sql.errors import InputError, MissingKeyPropertyError
from target_dap_sql.layout import DELETED_AT, Column, SqlType, TableLayout

#: A dialect hook: the msgspec type a column's values decode to.
FieldTypeFn = Callable[[Column, TableLayout], Any]
#: A dialect hook: per-column converters applied after decoding (index, function).
Converters = list[tuple[int, Callable[[Any], Any]]]

_INT_RANGES = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


class RecordMeta(msgspec.Struct, gc=False):
    action: Literal["U", "D"] | None = None
    ts: str | None = None


def constrained(base: Any, sql_type: SqlType, layout: TableLayout) -> Any:
    """Wrap a scalar decode type with the cheap checks the schema implies (when validating)."""
    if not layout.validate:
        return base
    kind = sql_type.kind
    if kind == "enum":
        return Literal[sql_type.labels] if sql_type.labels else base  # type: ignore[valid-type]
    if kind in ("varchar", "char") and sql_type.length is not None:
        return Annotated[base, msgspec.Meta(max_length=sql_type.length)]
    if kind in _INT_RANGES and base is int:
        bound = _INT_RANGES[kind]
        return Annotated[int, msgspec.Meta(ge=-bound, le=bound - 1)]
    return base


class RecordDecoder:
    """Decodes the raw JSON of a RECORD's `record` object into (key, row, is_delete)."""

    def __init__(self, layout: TableLayout, field_type: FieldTypeFn, converters: Converters):
        self.layout = layout
        columns = layout.record_columns
        self._names = [c.name for c in columns]
        fields: list[tuple[Any, ...]] = []
        rename: dict[str, str] = {}
        for i, col in enumerate(columns):
            py_type = field_type(col, layout)
            if col.name in layout.key_columns:
                fields.append((f"c{i}", py_type))
            else:
                fields.append((f"c{i}", py_type | None if py_type is not msgspec.Raw else py_type,
                               None))
            rename[f"c{i}"] = col.name
        fields.append(("m", RecordMeta | None, None))
        rename["m"] = "meta"
        self._width = len(columns)
        if DELETED_AT in self._names:
            self._deleted_index = self._names.index(DELETED_AT)
        else:
            fields.append(("d", str | None, None))
            rename["d"] = DELETED_AT
            self._deleted_index = self._width + 1
        struct = msgspec.defstruct(f"{layout.table}_record", fields, kw_only=True, rename=rename,
                                  gc=False)
        self._decoder = msgspec.json.Decoder(struct)
        self._astuple = msgspec.structs.astuple
        key_idx = [self._names.index(k) for k in layout.key_columns]
        self.key_of: Callable[[tuple], Any] = (
            operator.itemgetter(*key_idx) if key_idx else (lambda row: None)
        )
        self._converters = converters

    def decode(self, raw: bytes | msgspec.Raw, stream: str) -> tuple[Any, tuple, bool]:
        try:
            obj = self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise self._explain(str(exc), stream) from None
        except msgspec.DecodeError as exc:
            raise InputError(f"record is not valid JSON: {exc}", stream=stream) from None
        values = self._astuple(obj)
        meta = values[self._width]
        deleted = values[self._deleted_index] is not None or (
            meta is not None and meta.action == "D"
        )
        row = values[: self._width]
        if self._converters:
            row = self._convert(row, stream)
        return self.key_of(row), row, deleted

    def _convert(self, row: tuple, stream: str) -> tuple:
        out = list(row)
        for i, fn in self._converters:
            value = out[i]
            if value is not None:
                try:
                    out[i] = fn(value)
                except (TypeError, ValueError) as exc:
                    raise InputError(f"invalid value for '{self._names[i]}': {exc}",
                                     stream=stream) from None
        return tuple(out)

    def _explain(self, message: str, stream: str) -> InputError:
        for key in self.layout.key_columns:
            if message == f"Object missing required field `{key}`" or (
                message.endswith(f"got `null` - at `$.{key}`")
            ):
                return MissingKeyPropertyError(f"record is missing key property '{key}'",
                                               stream=stream)
        return InputError(f"invalid record: {message}", stream=stream)
