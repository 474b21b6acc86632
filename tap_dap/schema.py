"""Conversion of a DAP table schema (VersionedSchema) into a flat Singer stream schema.

DAP describes a table as ``{"key": {...}, "value": {...}, "meta": {...}}``; the Singer stream is the
flat union of the key and value properties (key first, server order) plus the tap's own ``meta``
and ``_sdc_deleted_at`` columns. The original schema travels unchanged in the ``x-dap`` annotation
so that target-dap-sql can reproduce the official replicator's layout exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tap_dap.errors import SchemaConversionError

#: Keywords copied from a DAP property node into the Singer property (everything else is dropped).
KEPT_KEYWORDS = (
    "title",
    "description",
    "format",
    "maxLength",
    "minLength",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "default",
)

ANNOTATION = "x-dap"
DELETED_AT = "_sdc_deleted_at"
META = "meta"

META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["U", "D"]},
        "ts": {"type": "string", "format": "date-time"},
    },
    "required": ["action", "ts"],
}
DELETED_AT_SCHEMA: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}


@dataclass(frozen=True)
class StreamSchema:
    """The Singer view of one DAP table at one schema version."""

    stream_name: str
    schema: dict[str, Any]
    key_properties: list[str]
    version: int


#: Properties every record carries whatever the catalog says (like key properties).
ALWAYS_SENT = frozenset({META, DELETED_AT})


def without_properties(stream_schema: StreamSchema, dropped: frozenset[str]) -> StreamSchema:
    """The stream schema minus deselected value properties, also in the ``x-dap`` annotation
    (target-dap-sql builds the official layout, and its meta row's schema description, from it)."""
    if not dropped:
        return stream_schema
    schema = dict(stream_schema.schema)
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in dropped}
    schema["required"] = [k for k in schema.get("required", []) if k not in dropped]
    annotation = copy.deepcopy(schema[ANNOTATION])
    dap_schema = annotation["schema"]
    value = dap_schema.get("properties", {}).get("value")
    if isinstance(value, Mapping):
        value = dict(_NodeConverter(dap_schema.get("definitions") or {}, "").resolve(value))
        value["properties"] = {
            k: v for k, v in (value.get("properties") or {}).items() if k not in dropped
        }
        if "required" in value:
            value["required"] = [k for k in value["required"] if k not in dropped]
        dap_schema["properties"]["value"] = value
    schema[ANNOTATION] = annotation
    return StreamSchema(
        stream_schema.stream_name, schema, stream_schema.key_properties, stream_schema.version
    )


def stream_name_for(namespace: str, table: str) -> str:
    """Singer stream name: SDK SQL targets split it into schema ``namespace``, table ``table``."""
    return f"{namespace}-{table}"


def convert_table_schema(
    namespace: str, table: str, dap_schema: Mapping[str, Any], version: int
) -> StreamSchema:
    """Build the Singer schema of ``namespace.table`` from its DAP VersionedSchema parts."""
    where = f"{namespace}.{table} (schema version {version})"
    converter = _NodeConverter(dap_schema.get("definitions") or {}, where)
    properties = dap_schema.get("properties")
    if not isinstance(properties, Mapping):
        raise SchemaConversionError(f"{where}: schema has no 'properties' object")
    key = _object_part(properties, "key", where, mandatory=True)
    value = _object_part(properties, "value", where, mandatory=False)

    flat: dict[str, Any] = {}
    for part_name, part in (("key", key), ("value", value)):
        part = converter.resolve(part)
        required = set(part.get("required") or ())
        for name, node in (part.get("properties") or {}).items():
            if name in flat or name in (META, DELETED_AT):
                raise SchemaConversionError(
                    f"{where}: property {name!r} of '{part_name}' clashes with another column"
                )
            flat[name] = converter.convert(node, nullable=name not in required, path=name)

    key_properties = list((converter.resolve(key).get("properties") or {}).keys())
    if not key_properties:
        raise SchemaConversionError(f"{where}: the 'key' object declares no properties")
    flat[META] = copy.deepcopy(META_SCHEMA)
    flat[DELETED_AT] = dict(DELETED_AT_SCHEMA)

    schema: dict[str, Any] = {
        "type": "object",
        "properties": flat,
        "required": [*key_properties, META],
        ANNOTATION: {
            "namespace": namespace,
            "table": table,
            "version": version,
            "schema": copy.deepcopy(dict(dap_schema)),
        },
    }
    return StreamSchema(stream_name_for(namespace, table), schema, key_properties, version)


def _object_part(
    properties: Mapping[str, Any], name: str, where: str, *, mandatory: bool
) -> Mapping[str, Any]:
    part = properties.get(name)
    if part is None and not mandatory:
        return {}
    if not isinstance(part, Mapping):
        raise SchemaConversionError(
            f"{where}: schema property {name!r} is missing or not an object"
        )
    return part


class _NodeConverter:
    """Converts DAP property nodes, resolving local ``#/definitions`` references."""

    def __init__(self, definitions: Mapping[str, Any], where: str) -> None:
        self._definitions = definitions
        self._where = where

    def resolve(self, node: Mapping[str, Any], path: str = "") -> Mapping[str, Any]:
        seen: set[str] = set()
        while "$ref" in node:
            ref = node["$ref"]
            prefix = "#/definitions/"
            if not isinstance(ref, str) or not ref.startswith(prefix):
                raise SchemaConversionError(f"{self._where}: {path}: unsupported $ref {ref!r}")
            if ref in seen:
                raise SchemaConversionError(f"{self._where}: {path}: circular $ref {ref!r}")
            seen.add(ref)
            target = self._definitions.get(ref[len(prefix) :])
            if not isinstance(target, Mapping):
                raise SchemaConversionError(f"{self._where}: {path}: unresolved $ref {ref!r}")
            node = target
        return node

    def convert(self, node: Any, *, nullable: bool, path: str) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            raise SchemaConversionError(f"{self._where}: property {path!r} is not a JSON object")
        node = self.resolve(node, path)
        if "oneOf" in node or "anyOf" in node:
            return self._convert_union(node, nullable=nullable, path=path)
        json_type = node.get("type")
        if json_type is None:
            raise SchemaConversionError(f"{self._where}: property {path!r} has no 'type'")
        result: dict[str, Any] = {"type": json_type}
        for keyword in KEPT_KEYWORDS:
            if keyword in node:
                result[keyword] = copy.deepcopy(node[keyword])
        if json_type == "object":
            self._convert_object_members(node, result, path)
        elif json_type == "array" and "items" in node:
            result["items"] = self.convert(node["items"], nullable=False, path=f"{path}[]")
        if nullable:
            _make_nullable(result)
        return result

    def _convert_object_members(
        self, node: Mapping[str, Any], result: dict[str, Any], path: str
    ) -> None:
        members = node.get("properties")
        if members is not None:
            required = set(node.get("required") or ())
            result["properties"] = {
                name: self.convert(sub, nullable=name not in required, path=f"{path}.{name}")
                for name, sub in members.items()
            }
            if node.get("required"):
                result["required"] = list(node["required"])
        if "additionalProperties" in node:
            extra = node["additionalProperties"]
            result["additionalProperties"] = (
                extra
                if isinstance(extra, bool)
                else self.convert(extra, nullable=False, path=f"{path}.*")
            )

    def _convert_union(self, node: Mapping[str, Any], *, nullable: bool, path: str) -> dict:
        # anyOf is what Singer targets understand; DAP's oneOf alternatives never overlap.
        alternatives = node.get("oneOf") or node.get("anyOf") or []
        result: dict[str, Any] = {
            "anyOf": [self.convert(alt, nullable=False, path=path) for alt in alternatives]
        }
        for keyword in ("title", "description"):
            if keyword in node:
                result[keyword] = node[keyword]
        if nullable:
            result["anyOf"].append({"type": "null"})
        return result


def _make_nullable(prop: dict[str, Any]) -> None:
    json_type = prop["type"]
    types = list(json_type) if isinstance(json_type, list) else [json_type]
    if "null" not in types:
        types.append("null")
    prop["type"] = types
    # JSON Schema checks enum membership for null too, so a nullable enum must list it.
    if "enum" in prop and None not in prop["enum"]:
        prop["enum"] = [*prop["enum"], None]
