"""Emulator ``--data DIR`` fixtures built from compact descriptions (used by the corpus and the
hostile-identifier tests): one table = key columns, value columns and the change records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DRAFT7 = "http://json-schema.org/draft-07/schema#"
BASE_TS = "2026-01-01T00:00:00Z"


def versioned_schema(key: dict[str, Any], value: dict[str, Any], required: list[str] = ()
                     ) -> dict[str, Any]:
    meta = {"type": "object", "properties": {
        "ts": {"type": "string", "format": "date-time"},
        "action": {"type": "string", "enum": ["U", "D"]}}}
    return {"version": 1, "schema": {
        "$schema": DRAFT7, "type": "object",
        "properties": {
            "key": {"type": "object", "properties": key, "required": sorted(key),
                    "additionalProperties": False},
            "value": {"type": "object", "properties": value, "required": list(required),
                      "additionalProperties": False},
            "meta": meta},
        "required": ["key", "value", "meta"], "additionalProperties": False}}


def write_table(root: Path, namespace: str, table: str, key: dict[str, Any],
                value: dict[str, Any], changes: list[dict[str, Any]],
                required: list[str] = ()) -> None:
    """``changes``: DAP records without meta (a ``"delete": true`` item is a delete)."""
    folder = root / namespace / table
    folder.mkdir(parents=True)
    (folder / "schema.json").write_text(json.dumps(versioned_schema(key, value, required)))
    lines = []
    for change in changes:
        action = "D" if change.get("delete") else "U"
        record: dict[str, Any] = {"key": change["key"], "meta": {"ts": BASE_TS, "action": action}}
        if action == "U":
            record["value"] = change["value"]
        lines.append(json.dumps(record, ensure_ascii=False))
    (folder / "changes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
