"""Singer SCHEMA (and DAP provenance) → a dialect-neutral table layout.

Streams carrying the `x-dap` annotation get exactly the official replicator's columns: they are
derived from the original DAP schema (key properties, then value properties, server order; the
JSON Schema → SQL rules of docs/database-layout.md). Other streams get a generic mapping of the flat
Singer schema (object/array → JSON). Dialects turn the neutral `SqlType`s into DDL.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from target_dap_sql.errors import SchemaError

#: Namespaces whose snapshots merge into the live table instead of replacing it: DAP keeps only a
#: 30-day window of them, so a replacement would throw away the history the user accumulated.
MERGING_NAMESPACES = frozenset({"canvas_logs"})

DELETED_AT = "_sdc_deleted_at"
_layout_ids = itertools.count(1)
BATCHED_AT = "_sdc_batched_at"
#: The record-metadata columns singer-sdk targets add (`add_record_metadata`). Upstream mappers
#: may have declared them; they are Singer bookkeeping, not data, and stay out of the table unless
#: this target adds its own. Any other `_sdc_*` property (tap-jsonl's `_sdc_filename`, …) is data.
SDK_METADATA_COLUMNS = frozenset({
    "_sdc_extracted_at", "_sdc_received_at", "_sdc_batched_at", DELETED_AT, "_sdc_sequence",
    "_sdc_table_version", "_sdc_sync_started_at",
})


@dataclass(frozen=True)
class SqlType:
    """A column type independent of the dialect.

    kind: smallint integer bigint real double decimal numeric boolean text varchar char timestamp
    timestamptz date time interval uuid inet enum json array.
    """

    kind: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    labels: tuple[str, ...] = ()
    element: SqlType | None = None
    #: json only: a DAP nested object (properties fixed by the schema). Stored without null
    #: members, and NULL when none is left, as the official client gets it from DAP's TSV.
    nested: bool = False


@dataclass(frozen=True)
class Column:
    name: str
    type: SqlType
    nullable: bool = True
    comment: str | None = None
    default: Any = None
    #: "record" = decoded from the RECORD; "batched_at" = set by the target when the batch loads.
    source: str = "record"


@dataclass(frozen=True)
class DapProvenance:
    """What the tap told us about the DAP table behind a stream (the `x-dap` annotation)."""

    namespace: str
    table: str
    version: int
    schema_description: str
    table_comment: str | None = None


@dataclass
class TableLayout:
    stream: str
    schema: str | None
    table: str
    columns: list[Column]
    key_columns: list[str]
    dap: DapProvenance | None = None
    soft_delete: bool = False
    validate: bool = True
    enum_native: bool = True
    #: Unique per layout object: dialects cache statements and load tables under it.
    uid: int = field(default_factory=lambda: next(_layout_ids))
    _by_name: dict[str, Column] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {c.name: c for c in self.columns}

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def state_key(self) -> str:
        """The stream's name in STATE: the tap's own stream name even under a stream-map alias
        (tap-dap keeps its bookmarks under the DAP table's stream, whatever maps rename)."""
        if self.dap is None:
            return self.stream
        return f"{self.dap.namespace}-{self.dap.table}"

    @property
    def record_columns(self) -> list[Column]:
        """Columns whose values come from the RECORD, in table order."""
        return [c for c in self.columns if c.source == "record"]

    @property
    def value_columns(self) -> list[Column]:
        return [c for c in self.columns if c.name not in self.key_columns]

    @property
    def merges_snapshots(self) -> bool:
        return self.dap is not None and self.dap.namespace in MERGING_NAMESPACES

    def enum_type_name(self, column: Column) -> str:
        """Name of the native enum type of a column (official: `<table>__<column>`)."""
        return f"{self.table}__{column.name}"


@dataclass(frozen=True)
class LayoutOptions:
    default_target_schema: str | None = None
    enum_native: bool = True
    validate: bool = True
    hard_delete: bool = True
    add_record_metadata: bool = False


def build_layout(
    stream: str,
    schema: dict[str, Any],
    key_properties: list[str] | None,
    options: LayoutOptions,
) -> TableLayout:
    """Map one SCHEMA message to a table layout."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        raise SchemaError("SCHEMA has no 'properties' object", stream=stream)
    keys = list(key_properties or [])
    x_dap = schema.get("x-dap")
    if x_dap is not None:
        layout = _dap_layout(stream, x_dap, keys, options, schema["properties"])
    else:
        layout = _generic_layout(stream, schema, keys, options)
    extra: list[Column] = []
    if options.add_record_metadata or not options.hard_delete:
        extra.append(Column(DELETED_AT, SqlType("timestamp" if layout.dap else "timestamptz")))
    if options.add_record_metadata:
        extra.append(Column(BATCHED_AT, SqlType("timestamp" if layout.dap else "timestamptz"),
                            source="batched_at"))
    if extra:
        layout = TableLayout(
            stream=layout.stream, schema=layout.schema, table=layout.table,
            columns=layout.columns + [c for c in extra if c.name not in layout._by_name],
            key_columns=layout.key_columns, dap=layout.dap,
        )
    layout.soft_delete = not options.hard_delete
    layout.validate = options.validate
    layout.enum_native = options.enum_native
    return layout


# --- DAP layout ---------------------------------------------------------------------------------

def _dap_layout(stream: str, x_dap: Any, keys: list[str], options: LayoutOptions,
                sent: dict[str, Any]) -> TableLayout:
    """The official layout of the DAP table, limited to the properties the stream sends (`sent`):
    a property deselected in the tap's catalog or dropped by a stream map gets no column, one a
    stream map adds (not in the DAP schema) gets a column of its own type after the others.
    Under a stream-map alias (a stream name other than `<namespace>-<table>`) the table is named
    after the alias, as for any other stream; the meta row still names the DAP table."""
    try:
        namespace, table, version = x_dap["namespace"], x_dap["table"], int(x_dap["version"])
        dap_schema = x_dap["schema"]
        key_node = dap_schema["properties"]["key"]
        value_node = dap_schema["properties"].get("value", {"properties": {}})
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"malformed 'x-dap' annotation: missing or invalid {exc}",
                          stream=stream) from exc
    definitions = dap_schema.get("definitions", {})
    required = set(key_node.get("required", [])) | set(value_node.get("required", []))
    dap_keys = list(key_node.get("properties", {}))
    if not dap_keys:
        raise SchemaError("DAP schema has no key properties", stream=stream)
    if keys and keys != dap_keys:
        raise SchemaError(f"key_properties {keys} differ from the DAP key {dap_keys}",
                          stream=stream)

    plain: list[Column] = []
    with_default: list[Column] = []
    for parent in (key_node, value_node):
        for name, node in parent.get("properties", {}).items():
            if name not in sent and name not in dap_keys:
                continue
            node = _resolve_ref(node, definitions, stream)
            col = Column(
                name=name,
                type=_dap_type(node, definitions, stream, name),
                nullable=name not in required,
                comment=_comment(node),
                default=node.get("default"),
            )
            # The official generator moves properties with a default after all others.
            (with_default if "default" in node else plain).append(col)

    taken = {c.name for c in plain + with_default} | {"meta", DELETED_AT}
    added = _generic_columns(stream, {k: v for k, v in sent.items() if k not in taken}, set(),
                             keys)
    if stream == f"{namespace}-{table}":
        schema_name, table_name = namespace, table
    else:
        alias_schema, table_name = split_stream_name(stream)
        schema_name = alias_schema or namespace
    without_meta = {k: v for k, v in dap_schema.items()}
    without_meta["properties"] = {
        k: v for k, v in dap_schema["properties"].items() if k != "meta"
    }
    description = json.dumps(without_meta, ensure_ascii=False, separators=(",", ":"))
    return TableLayout(
        stream=stream,
        schema=options.default_target_schema or schema_name,
        table=table_name,
        columns=plain + with_default + added,
        key_columns=dap_keys,
        dap=DapProvenance(namespace, table, version, description, _table_comment(dap_schema)),
    )


def _resolve_ref(node: dict[str, Any], definitions: dict[str, Any], stream: str) -> dict:
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.rsplit("/", 1)[-1]
    if name not in definitions:
        raise SchemaError(f"unresolvable $ref {ref!r}", stream=stream)
    return definitions[name]


def _int_type_for_range(low: float, high: float) -> SqlType:
    if low >= -(2**15) and high < 2**15:
        return SqlType("smallint")
    if low >= -(2**31) and high < 2**31:
        return SqlType("integer")
    return SqlType("bigint")


def _dap_type(node: dict[str, Any], definitions: dict, stream: str, name: str) -> SqlType:
    kind = node.get("type")
    fmt = node.get("format")
    if "oneOf" in node:
        return SqlType("json")
    if kind == "integer":
        by_format = {"int64": "bigint", "int32": "integer", "int16": "smallint"}
        if fmt in by_format:
            return SqlType(by_format[fmt])
        if node.get("enum"):
            return _int_type_for_range(min(node["enum"]), max(node["enum"]))
        if "minimum" in node and "maximum" in node:
            return _int_type_for_range(node["minimum"], node["maximum"])
        return SqlType("bigint")
    if kind == "number":
        lo, hi, step = (node.get("exclusiveMinimum"), node.get("exclusiveMaximum"),
                        node.get("multipleOf"))
        if lo is not None and hi is not None and step and lo == -hi:
            scale = -round(math.log10(step))
            return SqlType("decimal", precision=round(math.log10(hi)) + scale, scale=scale)
        return SqlType("real" if fmt == "float32" else "double")
    if kind == "boolean":
        return SqlType("boolean")
    if kind == "string":
        return _dap_string_type(node)
    if kind == "object":
        return SqlType("json", nested=True)
    if kind == "array":
        items = _resolve_ref(node.get("items", {}), definitions, stream)
        if items.get("type") in ("object", "array") or "oneOf" in items or not items:
            return SqlType("json")
        return SqlType("array", element=_dap_type(items, definitions, stream, name))
    raise SchemaError(f"property '{name}' has unsupported JSON Schema type {kind!r}",
                      stream=stream)


def _dap_string_type(node: dict[str, Any]) -> SqlType:
    if node.get("enum"):
        return SqlType("enum", labels=tuple(str(v) for v in node["enum"]))
    if "const" in node:
        return SqlType("char", length=len(str(node["const"])))
    by_format = {"date-time": "timestamp", "date": "date", "time": "time", "duration": "interval",
                 "uuid": "uuid", "ipv4": "inet", "ipv6": "inet"}
    fmt = node.get("format")
    if fmt in by_format:
        return SqlType(by_format[fmt])
    if "maxLength" in node:
        return SqlType("varchar", length=int(node["maxLength"]))
    return SqlType("text")


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _comment(node: dict[str, Any]) -> str | None:
    text = node.get("title") or node.get("description")
    return _collapse(text) if isinstance(text, str) and text.strip() else None


def _table_comment(dap_schema: dict[str, Any]) -> str | None:
    title, description = dap_schema.get("title"), dap_schema.get("description")
    if not title:
        return None  # the official replicator writes no table comment without a title
    text = _collapse(title)
    return f"{text}\n\n{description.strip()}" if description else text


# --- generic layout (any other tap) -------------------------------------------------------------

def split_stream_name(stream: str) -> tuple[str | None, str]:
    """`a-b` → (a, b); `a-b-c` → (b, c) like the SDK's SQL targets; `t` → (None, t)."""
    parts = stream.split("-")
    if len(parts) == 1:
        return None, stream
    return parts[-2], parts[-1]


def _generic_layout(stream: str, schema: dict, keys: list[str], options: LayoutOptions
                    ) -> TableLayout:
    props: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    missing = [k for k in keys if k not in props]
    if missing:
        raise SchemaError(f"key properties {missing} are not in the schema", stream=stream)
    columns = _generic_columns(stream, props, required, keys)
    schema_name, table = split_stream_name(stream)
    return TableLayout(
        stream=stream,
        schema=options.default_target_schema or schema_name,
        table=table,
        columns=columns,
        key_columns=keys,
    )


def _generic_columns(stream: str, props: dict[str, Any], required: set[str], keys: list[str]
                     ) -> list[Column]:
    columns = []
    for name, node in props.items():
        if name in SDK_METADATA_COLUMNS:
            continue  # added back by build_layout when add_record_metadata asks for it
        if not isinstance(node, dict):
            raise SchemaError(f"property '{name}' is not a JSON Schema object", stream=stream)
        sql_type, nullable = _generic_type(node)
        columns.append(Column(
            name=name, type=sql_type, comment=_comment(node),
            nullable=name not in keys and (nullable or name not in required),
        ))
    return columns


def _generic_type(node: dict[str, Any]) -> tuple[SqlType, bool]:
    if "anyOf" in node or "oneOf" in node:
        return SqlType("json"), True
    kinds = node.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    nullable = "null" in kinds or not kinds
    kinds = [k for k in kinds if k != "null"]
    if sorted(kinds) == ["integer", "number"]:
        kinds = ["number"]  # every integer is a number: keep a numeric column, not JSON text
    if len(kinds) != 1:
        return SqlType("json"), True
    kind, fmt = kinds[0], node.get("format")
    if kind == "integer":
        return SqlType("bigint"), nullable
    if kind == "number":
        return SqlType("numeric"), nullable
    if kind == "boolean":
        return SqlType("boolean"), nullable
    if kind == "string":
        by_format = {"date-time": "timestamptz", "date": "date", "time": "time", "uuid": "uuid"}
        if fmt in by_format:
            return SqlType(by_format[fmt]), nullable
        if "maxLength" in node:
            return SqlType("varchar", length=int(node["maxLength"])), nullable
        return SqlType("text"), nullable
    return SqlType("json"), nullable
