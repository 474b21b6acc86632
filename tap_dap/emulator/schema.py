"""Versioned DAP table schemas: validation against the official client's keyword whitelist, columns,
and schema evolution (added columns, added enum labels) with the clock time each change took effect.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from tap_dap.emulator.errors import DatasetError

UNSPECIFIED = "__dap_unspecified__"
TOP_LEVEL_KEYWORDS = {
    "$schema", "type", "title", "description", "format", "properties", "additionalProperties",
    "required", "definitions",
}
COMMON = {"title", "description", "type", "format"}
KEYWORDS_BY_TYPE: dict[str, set[str]] = {
    "boolean": COMMON | {"const", "default", "examples"},
    "integer": COMMON | {"const", "default", "examples", "enum", "minimum", "maximum"},
    "number": COMMON | {
        "const", "default", "examples", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf",
    },
    "string": COMMON | {"const", "default", "examples", "enum", "minLength", "maxLength"},
    "array": COMMON | {"items"},
    "object": COMMON | {"properties", "additionalProperties", "required"},
}


def check_node(node: Any, where: str) -> None:
    """Reject schema nodes the official replicator cannot parse (docs/dap-wire.md, Schemas)."""
    if not isinstance(node, dict):
        raise DatasetError(f"{where}: a property schema must be an object")
    if "$ref" in node or "oneOf" in node:
        raise DatasetError(f"{where}: $ref/oneOf properties are not supported by the emulator")
    kind = node.get("type")
    if kind not in KEYWORDS_BY_TYPE:
        raise DatasetError(
            f"{where}: 'type' must be one of {sorted(KEYWORDS_BY_TYPE)}, got {kind!r}"
        )
    extra = set(node) - KEYWORDS_BY_TYPE[kind]
    if extra:
        raise DatasetError(f"{where}: keyword(s) {sorted(extra)} not accepted for type {kind}")
    if "enum" in node:
        labels = node["enum"]
        distinct = len(set(map(str, labels))) if isinstance(labels, list) else 0
        if not isinstance(labels, list) or distinct < 2 or distinct != len(labels):
            raise DatasetError(f"{where}: 'enum' needs at least 2 distinct values")
    if kind == "array":
        check_node(node.get("items"), f"{where}.items")
        if node["items"]["type"] in ("object", "array"):
            raise DatasetError(f"{where}: arrays of objects/arrays break the official replicator")
    if kind == "object":
        props = node.get("properties")
        if not isinstance(props, dict) or not props:
            raise DatasetError(f"{where}: objects need non-empty 'properties'")
        if node.get("additionalProperties") is not False:
            raise DatasetError(f"{where}: nested objects need additionalProperties: false")
        for name, sub in props.items():
            check_node(sub, f"{where}.{name}")


@dataclass
class Column:
    """One key or value column; ``added_ts`` is when it appeared (0 = from the start)."""

    name: str
    node: dict[str, Any]
    required: bool
    added_ts: int = 0

    @property
    def kind(self) -> str:
        node = self.node
        if node["type"] == "string":
            if "enum" in node:
                return "enum"
            return {"date-time": "datetime", "date": "date", "uuid": "uuid"}.get(
                node.get("format", ""), "string"
            )
        kinds = {"integer": "int", "number": "float", "boolean": "bool"}
        return kinds.get(node["type"], node["type"])


@dataclass
class SchemaVersion:
    version: int
    ts: int
    document: dict[str, Any]
    enum_labels: dict[str, list[str]] = field(default_factory=dict)


class TableSchema:
    """The schema history of one table; versions only grow (DAP schemas stay compatible)."""

    def __init__(self, where: str, document: dict[str, Any], version: int = 1, ts: int = 0) -> None:
        self.where = where
        check_document(document, where)
        props = document["properties"]
        self.key_columns = [
            Column(name, node, True) for name, node in props["key"]["properties"].items()
        ]
        value = props.get("value", {"properties": {}, "required": []})
        required = set(value.get("required", []))
        self.value_columns = [
            Column(name, node, name in required) for name, node in value["properties"].items()
        ]
        self.versions = [SchemaVersion(version, ts, copy.deepcopy(document), self._enum_labels())]

    def _enum_labels(self) -> dict[str, list[str]]:
        return {c.name: list(c.node["enum"]) for c in self.value_columns if "enum" in c.node}

    @property
    def current(self) -> SchemaVersion:
        return self.versions[-1]

    def version_at(self, ts: int) -> SchemaVersion:
        """The schema in force for a record committed at ``ts``."""
        chosen = self.versions[0]
        for candidate in self.versions:
            if candidate.ts <= ts:
                chosen = candidate
        return chosen

    def add_column(self, name: str, node: dict[str, Any], ts: int) -> SchemaVersion:
        if not isinstance(name, str) or not name.isidentifier():
            raise DatasetError(f"{self.where}: column name must be an identifier, got {name!r}")
        if any(c.name == name for c in self.key_columns + self.value_columns):
            raise DatasetError(f"{self.where}: column {name!r} already exists")
        check_node(node, f"{self.where}.{name}")
        self.value_columns.append(Column(name, copy.deepcopy(node), False, ts))
        document = copy.deepcopy(self.current.document)
        document["properties"].setdefault(
            "value", {"type": "object", "properties": {}, "additionalProperties": False}
        )["properties"][name] = copy.deepcopy(node)
        return self._bump(document, ts)

    def add_enum_value(self, column: str, label: str, ts: int) -> SchemaVersion:
        target = next((c for c in self.value_columns if c.name == column), None)
        if target is None or "enum" not in target.node:
            raise DatasetError(f"{self.where}: {column!r} is not an enum column")
        if not isinstance(label, str) or not label:
            raise DatasetError(f"{self.where}: enum value must be a non-empty string")
        if label in target.node["enum"]:
            raise DatasetError(f"{self.where}: {column!r} already has the value {label!r}")
        target.node = {**target.node, "enum": [*target.node["enum"], label]}
        document = copy.deepcopy(self.current.document)
        document["properties"]["value"]["properties"][column]["enum"].append(label)
        return self._bump(document, ts)

    def replace(self, document: dict[str, Any], version: int, ts: int) -> SchemaVersion:
        """A new schema version as a whole document (a recorded VersionedSchema).

        DAP schemas only grow: the key stays, every value column stays (its enum keeps every
        label), new columns and labels may appear. Anything else is refused, because the replicas
        the emulator serves could not follow it either.
        """
        if isinstance(version, bool) or not isinstance(version, int) \
                or version <= self.current.version:
            raise DatasetError(f"{self.where}: schema version must be an integer above "
                               f"{self.current.version}, got {version!r}")
        check_document(document, self.where)
        props = document["properties"]
        keys = props["key"]["properties"]
        if list(keys) != [c.name for c in self.key_columns] or any(
                keys[c.name] != c.node for c in self.key_columns):
            raise DatasetError(f"{self.where}: the key columns cannot change")
        value = props.get("value", {"properties": {}})
        nodes: dict[str, Any] = value["properties"]
        required = set(value.get("required", []))
        old = {c.name: c for c in self.value_columns}
        if removed := [name for name in old if name not in nodes]:
            raise DatasetError(f"{self.where}: column(s) {removed} missing from the new version "
                               "(DAP schemas only add columns)")
        for name, column in old.items():
            if problem := incompatible(column.node, nodes[name], name):
                raise DatasetError(f"{self.where}: {problem} (DAP schemas only grow)")
        if new_required := sorted(required - set(old)):
            raise DatasetError(f"{self.where}: new column(s) {new_required} cannot be required: "
                               "the rows already served have no value for them")
        self.value_columns = [
            Column(name, copy.deepcopy(node), name in required,
                   old[name].added_ts if name in old else ts)
            for name, node in nodes.items()
        ]
        created = SchemaVersion(version, ts, copy.deepcopy(document), self._enum_labels())
        self.versions.append(created)
        return created

    def _bump(self, document: dict[str, Any], ts: int) -> SchemaVersion:
        created = SchemaVersion(self.current.version + 1, ts, document, self._enum_labels())
        self.versions.append(created)
        return created


def incompatible(old: dict[str, Any], new: dict[str, Any], path: str) -> str | None:
    """Why ``new`` cannot follow ``old`` as the same column, or None (it may only add)."""
    for word in ("type", "format"):
        if old.get(word) != new.get(word):
            return f"{path!r} changed its {word} from {old.get(word)!r} to {new.get(word)!r}"
    if "enum" in old and (lost := set(old["enum"]) - set(new.get("enum", []))):
        return f"enum {path!r} lost value(s) {sorted(lost)}"
    for name, sub in old.get("properties", {}).items():
        if name not in new.get("properties", {}):
            return f"{path}.{name} is missing from the new version"
        if problem := incompatible(sub, new["properties"][name], f"{path}.{name}"):
            return problem
    if isinstance(old.get("items"), dict):
        return incompatible(old["items"], new.get("items") or {}, f"{path}[]")
    return None


def check_document(document: Any, where: str) -> None:
    if not isinstance(document, dict):
        raise DatasetError(f"{where}: schema must be a JSON object")
    extra = set(document) - TOP_LEVEL_KEYWORDS
    if extra:
        raise DatasetError(f"{where}: top-level keyword(s) {sorted(extra)} not accepted")
    if not isinstance(document.get("$schema"), str) or document.get("type") != "object":
        raise DatasetError(f"{where}: schema needs '$schema' (string) and type 'object'")
    props = document.get("properties")
    if not isinstance(props, dict) or "key" not in props or "meta" not in props:
        raise DatasetError(f"{where}: schema needs properties 'key', 'value' and 'meta'")
    for part in ("key", "value"):
        if part not in props:
            continue
        node = props[part]
        if not isinstance(node, dict) or not isinstance(node.get("properties"), dict):
            raise DatasetError(f"{where}: properties.{part} must be an object with properties")
        for name, sub in node["properties"].items():
            check_node(sub, f"{where}: {part}.{name}")
    if not props["key"]["properties"]:
        raise DatasetError(f"{where}: properties.key needs at least one key column")
