"""DAP JSON Schema → column types (docs/database-layout.md), generic mapping, meta-row helpers."""

from __future__ import annotations

from datetime import datetime

import pytest

from target_dap_sql.errors import SchemaError
from target_dap_sql.layout import LayoutOptions, SqlType, build_layout, split_stream_name
from target_dap_sql.meta import Bookmark, bookmark_from_state, parse_timestamp
from tests.unit.target.dap_messages import singer_schema, submissions_schema

OPTIONS = LayoutOptions()


def _dap_layout(value_props: dict, required: list[str] | None = None, **schema_extra):
    dap = {
        "$schema": "x", "type": "object",
        "properties": {
            "key": {"type": "object", "properties": {"id": {"type": "integer",
                                                            "format": "int64"}},
                    "required": ["id"]},
            "value": {"type": "object", "properties": value_props,
                      "required": required or []},
            "meta": {"type": "object", "properties": {}},
        },
        **schema_extra,
    }
    msg = singer_schema("canvas", "t", 1, dap)
    return build_layout(msg["stream"], msg["schema"], msg["key_properties"], OPTIONS)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "integer", "format": "int64"}, SqlType("bigint")),
        ({"type": "integer", "format": "int32"}, SqlType("integer")),
        ({"type": "integer", "format": "int16"}, SqlType("smallint")),
        ({"type": "integer", "minimum": 0, "maximum": 100}, SqlType("smallint")),
        ({"type": "integer", "minimum": 0, "maximum": 40000}, SqlType("integer")),
        ({"type": "integer", "enum": [1, 2, 2**40]}, SqlType("bigint")),
        ({"type": "integer"}, SqlType("bigint")),
        ({"type": "number", "format": "float64"}, SqlType("double")),
        ({"type": "number", "format": "float32"}, SqlType("real")),
        ({"type": "number", "exclusiveMinimum": -1e6, "exclusiveMaximum": 1e6,
          "multipleOf": 0.01}, SqlType("decimal", precision=8, scale=2)),
        ({"type": "boolean"}, SqlType("boolean")),
        ({"type": "string"}, SqlType("text")),
        ({"type": "string", "maxLength": 255}, SqlType("varchar", length=255)),
        ({"type": "string", "format": "date-time"}, SqlType("timestamp")),
        ({"type": "string", "format": "date"}, SqlType("date")),
        ({"type": "string", "format": "uuid"}, SqlType("uuid")),
        ({"type": "string", "format": "ipv4"}, SqlType("inet")),
        ({"type": "string", "const": "abc"}, SqlType("char", length=3)),
        ({"type": "string", "enum": ["b", "a"]}, SqlType("enum", labels=("b", "a"))),
        ({"type": "object", "properties": {"x": {"type": "string"}}}, SqlType("json", nested=True)),
        ({"type": "array", "items": {"type": "string"}},
         SqlType("array", element=SqlType("text"))),
        ({"type": "array", "items": {"type": "integer", "format": "int64"}},
         SqlType("array", element=SqlType("bigint"))),
        ({"type": "array", "items": {"type": "object", "properties": {}}}, SqlType("json")),
    ],
)
def test_dap_property_maps_to_the_official_type(node: dict, expected: SqlType) -> None:
    layout = _dap_layout({"c": node})
    assert layout.column("c").type == expected


def test_dap_columns_order_nullability_comments_and_defaults() -> None:
    layout = _dap_layout({
        "with_default": {"type": "integer", "format": "int32", "default": 3},
        "a": {"type": "string", "title": "  The   A\ncolumn ", "description": "ignored"},
        "b": {"type": "string", "description": "only\tdescription"},
    }, required=["a"])
    assert [c.name for c in layout.columns] == ["id", "a", "b", "with_default"]
    assert [c.nullable for c in layout.columns] == [False, False, True, True]
    assert layout.column("a").comment == "The A column"
    assert layout.column("b").comment == "only description"
    assert layout.column("with_default").default == 3
    assert layout.key_columns == ["id"]


def test_schema_description_is_compact_without_meta_in_server_order() -> None:
    dap = {"$schema": "s", "type": "object", "properties": {
        "meta": {"type": "object"},
        "key": {"type": "object", "properties": {"id": {"type": "integer"}}},
        "value": {"type": "object", "properties": {"é": {"type": "string"}}},
    }}
    msg = singer_schema("canvas", "t", 7, dap)
    layout = build_layout(msg["stream"], msg["schema"], msg["key_properties"], OPTIONS)
    assert layout.dap is not None
    assert layout.dap.schema_description == (
        '{"$schema":"s","type":"object","properties":{"key":{"type":"object","properties":'
        '{"id":{"type":"integer"}}},"value":{"type":"object","properties":{"é":'
        '{"type":"string"}}}}}')
    assert (layout.schema, layout.table, layout.dap.version) == ("canvas", "t", 7)


def test_table_comment_needs_a_title() -> None:
    msg = singer_schema("canvas", "submissions", 1, submissions_schema())
    layout = build_layout(msg["stream"], msg["schema"], msg["key_properties"], OPTIONS)
    assert layout.dap is not None
    assert layout.dap.table_comment == "Submissions\n\nSubmissions of assignments."


def test_metadata_columns_only_when_asked() -> None:
    msg = singer_schema("canvas", "submissions", 1, submissions_schema())
    plain = build_layout(msg["stream"], msg["schema"], msg["key_properties"], OPTIONS)
    assert "_sdc_deleted_at" not in [c.name for c in plain.columns]
    assert "meta" not in [c.name for c in plain.columns]
    soft = build_layout(msg["stream"], msg["schema"], msg["key_properties"],
                        LayoutOptions(hard_delete=False))
    assert [c.name for c in soft.columns][-1] == "_sdc_deleted_at"
    meta = build_layout(msg["stream"], msg["schema"], msg["key_properties"],
                        LayoutOptions(add_record_metadata=True))
    assert [c.name for c in meta.columns][-2:] == ["_sdc_deleted_at", "_sdc_batched_at"]


def test_generic_stream_mapping() -> None:
    schema = {"properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"], "maxLength": 20},
        "when": {"type": "string", "format": "date-time"},
        "price": {"type": "number"},
        "attrs": {"type": "object"},
        "list": {"type": "array", "items": {"type": "integer"}},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "_sdc_extracted_at": {"type": "string"},
    }}
    layout = build_layout("tap-users", schema, ["id"], OPTIONS)
    assert (layout.schema, layout.table, layout.dap) == ("tap", "users", None)
    assert {c.name: c.type.kind for c in layout.columns} == {
        "id": "bigint", "name": "varchar", "when": "timestamptz", "price": "numeric",
        "attrs": "json", "list": "json", "either": "json"}
    assert layout.column("id").nullable is False


def test_stream_name_split_and_schema_override() -> None:
    assert split_stream_name("users") == (None, "users")
    assert split_stream_name("a-b") == ("a", "b")
    assert split_stream_name("x-a-b") == ("a", "b")
    msg = singer_schema("canvas", "submissions", 1, submissions_schema())
    layout = build_layout(msg["stream"], msg["schema"], msg["key_properties"],
                          LayoutOptions(default_target_schema="replica"))
    assert (layout.schema, layout.table) == ("replica", "submissions")


@pytest.mark.parametrize(
    ("schema", "keys", "message"),
    [
        ({"type": "object"}, [], "SCHEMA has no 'properties' object"),
        ({"properties": {"a": {"type": "string"}}}, ["id"],
         "key properties ['id'] are not in the schema"),
        ({"properties": {}, "x-dap": {"namespace": "canvas"}}, ["id"],
         "malformed 'x-dap' annotation: missing or invalid 'table'"),
    ],
)
def test_unusable_schemas_are_rejected_clearly(schema: dict, keys: list, message: str) -> None:
    with pytest.raises(SchemaError) as info:
        build_layout("s-t", schema, keys, OPTIONS)
    assert str(info.value) == f"stream 's-t': {message}"


def test_bookmarks_become_naive_utc() -> None:
    assert parse_timestamp("2024-01-15T12:00:00.123456Z") == datetime(2024, 1, 15, 12, 0, 0,
                                                                     123456)
    assert parse_timestamp("2024-01-15T14:00:00+02:00") == datetime(2024, 1, 15, 12)
    state = {"bookmarks": {"canvas-a": {"timestamp": "2024-01-15T12:00:00Z",
                                        "schema_version": 3, "other": 1},
                           "canvas-b": {"replication_key_value": "x"}}}
    assert bookmark_from_state(state, "canvas-a") == Bookmark(datetime(2024, 1, 15, 12), 3)
    assert bookmark_from_state(state, "canvas-b") is None
    assert bookmark_from_state(state, "missing") is None
    assert bookmark_from_state({"bookmarks": {"s": {"timestamp": "junk"}}}, "s") is None
