"""An edge-case DAP table as an emulator ``--data`` fixture, its recorded timeline, and the rows a
correct replica holds after any prefix of it (computed here from the lines, not by the emulator).

``canvas.edge_cases``: arrays (text with COPY/CSV specials and NULL elements, int32, enum; empty),
a nested object (full, partly null, all null, ``{}``, absent), a required enum, extreme timestamps
(9999-12-31T23:59:59.999999Z, 0001-01-01T00:00:00Z, 1970) and awkward text. Phase 1 is the
fixture's changes.jsonl; phase 2 is appended with ``POST /_emulator/changes``; phase 3 comes after
a schema version jump (1 → 3: a new column and a new enum label).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

NS, TABLE = "canvas", "edge_cases"
MAX_TS = "9999-12-31T23:59:59.999999Z"
MIN_TS = "0001-01-01T00:00:00Z"
TIMESTAMP_COLUMNS = ("happened_at",)

_LABELS = {"type": "string", "enum": ["__dap_unspecified__", "red", "green"]}
SCHEMA_V1: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
    "title": "Edge cases", "description": "Values that two replicators must store alike.",
    "properties": {
        "key": {"type": "object", "additionalProperties": False, "required": ["id"],
                "properties": {"id": {"type": "integer", "format": "int64"}}},
        "value": {
            "type": "object", "additionalProperties": False, "required": ["state"],
            "properties": {
                "state": {"type": "string", "description": "Lifecycle state.",
                          "enum": ["__dap_unspecified__", "active", "deleted"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "scores": {"type": "array", "items": {"type": "integer", "format": "int32"}},
                "labels": {"type": "array", "items": _LABELS},
                "settings": {"type": "object", "additionalProperties": False,
                             "properties": {"enabled": {"type": "boolean"},
                                            "count": {"type": "integer"},
                                            "label": {"type": "string"}}},
                "happened_at": {"type": "string", "format": "date-time"},
                "note": {"type": "string"},
                "score": {"type": "number", "format": "float64"},
            },
        },
        "meta": {"type": "object", "properties": {"ts": {"type": "string",
                                                         "format": "date-time"}}},
    },
}


def schema_v3() -> dict[str, Any]:
    """Version 3 (a jump from 1): adds `extra` and the enum label `archived`."""
    schema = copy.deepcopy(SCHEMA_V1)
    value = schema["properties"]["value"]["properties"]
    value["state"]["enum"].append("archived")
    value["extra"] = {"type": "string", "maxLength": 10}
    return schema


def upsert_line(key: int, ts: str, **value: Any) -> dict[str, Any]:
    return {"meta": {"ts": ts, "action": "U"}, "key": {"id": key},
            "value": {"state": "active", **value}}


def delete_line(key: int, ts: str) -> dict[str, Any]:
    return {"meta": {"ts": ts, "action": "D"}, "key": {"id": key}}


_u, _d = upsert_line, delete_line  # short names for the tables below

PHASE1 = [
    _u(1, "2024-05-01T00:00:00Z", tags=["a", "b,c", "{x}", 'quo"te', "back\\slash", "NULL", ""],
       scores=[1, -2, 2147483647], labels=["red", "green"], happened_at=MAX_TS,
       settings={"enabled": True, "count": 3, "label": "x\ty"}, note="tab\there\nnl \\N",
       score=1.5),
    _u(2, "2024-05-01T00:00:01Z", tags=[], scores=[], labels=[], settings={},
       state="__dap_unspecified__", happened_at=MIN_TS, note=""),
    _u(3, "2024-05-01T00:00:02Z", settings={"enabled": None, "count": 0}, state="deleted",
       happened_at="1970-01-01T00:00:00Z"),
    _u(4, "2024-05-01T00:00:03Z", tags=["ü日本", None], labels=["__dap_unspecified__"],
       happened_at="2024-02-29T12:34:56.000001Z", settings=None, score=-0.0),
    _u(5, "2024-05-01T00:00:04Z", note="gone soon"),
    _d(5, "2024-05-01T00:00:05Z"),
    _u(6, "2024-05-01T00:00:02Z", settings={"label": "first"}),
    _u(6, "2024-05-01T00:00:06Z", settings={"label": None}, happened_at=MAX_TS),
]
PHASE2 = [
    _u(1, "2024-05-02T00:00:00Z", happened_at="2024-05-02T00:00:00Z", settings={},
       tags=["a"], labels=[]),
    _u(2, "2024-05-02T00:00:01Z", happened_at=MAX_TS, tags=["z"], settings={"count": None}),
    _d(3, "2024-05-02T00:00:02Z"),
    _u(7, "2024-05-02T00:00:03Z", tags=[], scores=[], happened_at=MIN_TS,
       settings={"enabled": False}),
    _u(4, "2024-05-02T00:00:04Z", note="first of two"),
    _u(4, "2024-05-02T00:00:04Z", note="second of two wins", happened_at=MAX_TS),
]
PHASE3_TS = "2024-05-03T00:00:00Z"  # when version 3 takes effect
PHASE3 = [
    _u(8, "2024-05-03T00:00:01Z", state="archived", extra="hi", happened_at=MAX_TS),
    _u(1, "2024-05-03T00:00:02Z", extra="", tags=["a"], settings={"enabled": True}),
    _d(6, "2024-05-03T00:00:03Z"),
]


def jsonl(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def write_fixture(root: Path) -> Path:
    """``root/canvas/edge_cases/{schema.json,changes.jsonl}`` (phase 1); returns root."""
    table = root / NS / TABLE
    table.mkdir(parents=True)
    (table / "schema.json").write_text(json.dumps({"schema": SCHEMA_V1, "version": 1}))
    (table / "changes.jsonl").write_text(jsonl(PHASE1), encoding="utf-8")
    return root


def _stored(value: Any) -> Any:
    """The replica form of a nested object: no null members, {} is NULL (README rule)."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
        return value or None
    return value


def expected_rows(*phases: list[dict[str, Any]], columns: list[str]) -> dict[int, dict[str, Any]]:
    """id -> row after applying the phases' lines in timestamp order (last line per ts wins)."""
    lines = [line for phase in phases for line in phase]
    rows: dict[int, dict[str, Any]] = {}
    for line in sorted(lines, key=lambda x: x["meta"]["ts"]):  # stable: file order within a ts
        key = line["key"]["id"]
        if line["meta"]["action"] == "D":
            rows.pop(key, None)
        else:
            value = line["value"]
            rows[key] = {"id": key, **{c: _stored(value.get(c)) for c in columns if c != "id"}}
    return {k: normalise(v) for k, v in rows.items()}


def as_datetime(value: Any) -> Any:
    """Timestamps as naive UTC datetimes; PostgreSQL's ±infinity as the value DAP sent."""
    if value in ("infinity", "-infinity"):
        return datetime.max if value == "infinity" else datetime.min
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    return value


def normalise(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for column in TIMESTAMP_COLUMNS:
        if column in out:
            out[column] = as_datetime(out[column])
    return out
