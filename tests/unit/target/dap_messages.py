"""Hand-built DAP schemas and Singer message streams in the tap → target contract
(docs/architecture.md).

Shared by the target's unit and integration tests. The schemas are shaped like real DAP
VersionedSchemas: `$schema`, key/value/meta objects, enums containing `__dap_unspecified__`,
int32/int64, maxLength strings, date-time, uuid, a nested object, an array of strings, floats and
booleans.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET = str(Path(sys.executable).with_name("target-dap-sql"))
META = {
    "type": "object",
    "properties": {
        "ts": {"type": "string", "format": "date-time"},
        "action": {"type": "string", "enum": ["U", "D"]},
    },
}


def submissions_schema(version: int = 1) -> dict[str, Any]:
    """A submissions-like DAP schema; versions 2 and 3 evolve it."""
    value: dict[str, Any] = {
        "type": "object",
        "properties": {
            "assignment_id": {"type": "integer", "format": "int64",
                              "description": "The assignment  this\n submission is for."},
            "attempt": {"type": "integer", "format": "int32"},
            "workflow_state": {"type": "string",
                               "enum": ["submitted", "graded", "__dap_unspecified__"]},
            "grade": {"type": "string", "maxLength": 255},
            "score": {"type": "number", "format": "float64"},
            "excused": {"type": "boolean"},
            "submitted_at": {"type": "string", "format": "date-time"},
            "lti_id": {"type": "string", "format": "uuid"},
            "body": {"type": "string"},
            "media": {"type": "object", "additionalProperties": False,
                      "properties": {"kind": {"type": "string"}, "size": {"type": "integer"}}},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["workflow_state"],
        "additionalProperties": False,
    }
    if version >= 2:
        value["properties"]["workflow_state"]["enum"] = [
            "submitted", "graded", "pending_review", "__dap_unspecified__"]
        value["properties"]["grade"]["maxLength"] = 1024
        value["properties"]["late_days"] = {"type": "integer", "format": "int32"}
    if version >= 3:
        del value["properties"]["body"]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Submissions",
        "description": "Submissions of assignments.",
        "type": "object",
        "properties": {
            "key": {"type": "object", "properties": {"id": {"type": "integer",
                                                            "format": "int64"}},
                    "required": ["id"], "additionalProperties": False},
            "value": value,
            "meta": META,
        },
        "required": ["key", "value", "meta"],
        "additionalProperties": False,
    }


def web_logs_schema() -> dict[str, Any]:
    """A canvas_logs table: string key, snapshots merge instead of replace."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "key": {"type": "object", "properties": {"id": {"type": "string", "maxLength": 64}},
                    "required": ["id"]},
            "value": {"type": "object", "properties": {
                "url": {"type": "string"},
                "http_method": {"type": "string", "enum": ["get", "post", "__dap_unspecified__"]},
                "timestamp": {"type": "string", "format": "date-time"},
            }},
            "meta": META,
        },
        "required": ["key", "value", "meta"],
    }


def singer_schema(namespace: str, table: str, version: int, dap_schema: dict[str, Any]
                  ) -> dict[str, Any]:
    """The SCHEMA message the tap emits for a DAP table (flat properties + x-dap)."""
    key = dap_schema["properties"]["key"]
    value = dap_schema["properties"]["value"]
    required = set(key.get("required", [])) | set(value.get("required", []))
    props: dict[str, Any] = {}
    for name, node in [*key["properties"].items(), *value["properties"].items()]:
        node = copy.deepcopy(node)
        if name not in required:
            node["type"] = [node["type"], "null"]
        props[name] = node
    props["meta"] = copy.deepcopy(META)
    props["_sdc_deleted_at"] = {"type": ["string", "null"], "format": "date-time"}
    return {
        "type": "SCHEMA",
        "stream": f"{namespace}-{table}",
        "schema": {
            "type": "object", "properties": props, "required": sorted(required),
            "x-dap": {"namespace": namespace, "table": table, "version": version,
                      "schema": dap_schema},
        },
        "key_properties": list(key["properties"]),
    }


def record(stream: str, key: dict[str, Any], value: dict[str, Any] | None = None, *,
           action: str = "U", ts: str = "2024-01-10T00:00:00Z") -> dict[str, Any]:
    body = dict(key)
    if action == "U":
        body.update(value or {})
    body["meta"] = {"action": action, "ts": ts}
    body["_sdc_deleted_at"] = ts if action == "D" else None
    return {"type": "RECORD", "stream": stream, "record": body}


def state(bookmarks: dict[str, tuple[str, int]]) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmarks": {
        stream: {"timestamp": ts, "schema_version": v} for stream, (ts, v) in bookmarks.items()}}}


def activate(stream: str, version: int) -> dict[str, Any]:
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}


def submission(i: int, **overrides: Any) -> dict[str, Any]:
    value = {
        "assignment_id": 1000 + i, "attempt": 1, "workflow_state": "submitted",
        "grade": f"A{i}", "score": 9.5, "excused": False,
        "submitted_at": "2024-01-05T10:00:00.123456Z",
        "lti_id": f"00000000-0000-4000-8000-{i:012d}", "body": f"essay {i}",
        "media": {"kind": "video", "size": i}, "tags": ["late", "ü"],
    }
    value.update(overrides)
    return value


def compact(message: dict[str, Any]) -> bytes:
    """One message line written as taps write them (no spaces): RECORD lines of one stream
    then reach the target's run decoding; `json.dumps(m)` lines take its line-by-line path."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def jsonl(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(compact(m) for m in messages)


@dataclass
class Run:
    returncode: int
    states: list[dict[str, Any]]
    stderr: str


def run_cli(config: dict[str, Any], messages: list[dict[str, Any]] | bytes, tmp: Path,
            *, env: dict[str, str] | None = None) -> Run:
    """Run the real `target-dap-sql` console script with the messages on stdin."""
    config_path = tmp / "target-config.json"
    config_path.write_text(json.dumps(config))
    data = messages if isinstance(messages, bytes) else jsonl(messages)
    proc = subprocess.run([TARGET, "--config", str(config_path)], input=data,
                          capture_output=True, timeout=120, cwd=tmp,
                          env={**os.environ, **(env or {})})
    states = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return Run(proc.returncode, states, proc.stderr.decode())


def run_in_process(config: dict[str, Any], messages: Any) -> list[dict[str, Any]]:
    """Run the target in this process; `messages` may be any iterable of message dicts/lines.

    Returns the STATE lines it wrote to stdout.
    """
    import contextlib
    import io

    from target_dap_sql.target import TargetDapSQL

    def lines() -> Any:
        for m in messages:
            yield m if isinstance(m, bytes) else compact(m)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        TargetDapSQL(config=config).listen(file_input=lines())  # type: ignore[arg-type]
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def dump_sqlite(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows (sorted), for whole-database comparisons."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in sorted(tables)}


def dump_pg(url: str) -> dict[str, list[tuple]]:
    import psycopg

    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1").fetchall()
        return {t: sorted(conn.execute(
            "SELECT * FROM " + ".".join(f'"{p}"' for p in t.split("."))).fetchall(), key=repr)
            for (t,) in tables}
