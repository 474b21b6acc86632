"""The admin API under ``/_emulator/`` (no auth, loopback only): inspect and drive the emulator."""

from __future__ import annotations

from typing import Any

import orjson

from tap_dap.emulator.app import EmulatorApp
from tap_dap.emulator.changes import LATEST_TS, append_changes
from tap_dap.emulator.clock import format_ts, parse_ts
from tap_dap.emulator.errors import DatasetError
from tap_dap.emulator.faults import parse_faults
from tap_dap.emulator.messages import Request, Response, json_response
from tap_dap.emulator.store import Table
from tap_dap.emulator.truth import truth_lines


def _fields(body: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(body, dict):
        raise DatasetError("body must be a JSON object")
    missing = [name for name in required if name not in body]
    if missing:
        raise DatasetError(f"missing field(s): {', '.join(missing)}")
    if extra := sorted(set(body) - set(required) - set(optional)):
        raise DatasetError(f"unknown field(s): {', '.join(extra)}")
    return body


def _table(app: EmulatorApp, body: dict) -> Table:
    return app.store.get(str(body["namespace"]), str(body["table"]))


def tables(app: EmulatorApp) -> Response:
    with app.store.lock:
        rows = [
            {"namespace": ns, "table": name, "version": t.schema.current.version, "rows": t.live}
            for ns, by_name in sorted(app.store.tables.items())
            for name, t in sorted(by_name.items())
        ]
    return json_response(rows)


def advance(app: EmulatorApp, request: Request) -> Response:
    body = _fields(request.json(), ("namespace", "table"), ("inserts", "updates", "deletes"))
    ts = app.store.advance(
        _table(app, body), body.get("inserts", 0), body.get("updates", 0), body.get("deletes", 0)
    )
    return json_response({"ts": format_ts(ts)})


SCHEMA_CHANGES = ("add_column", "add_enum_value", "schema")


def _stamp(app: EmulatorApp, body: dict) -> int:
    """The commit time of an admin change: ``ts`` if given (never back in time), else now."""
    if body.get("ts") is None:
        return app.store.clock.tick()
    try:
        ts = parse_ts(body["ts"])
    except ValueError as exc:
        raise DatasetError(f"'ts' must be an ISO 8601 timestamp with a time zone ({exc})") from None
    if ts >= LATEST_TS:
        raise DatasetError(f"ts must be before {format_ts(LATEST_TS)}")
    if ts <= app.store.clock.last:
        raise DatasetError(f"ts {format_ts(ts)} would go back in time: the emulator clock is "
                           f"already at {format_ts(app.store.clock.last)}")
    app.store.clock.observe(ts)
    return ts


def schema(app: EmulatorApp, request: Request) -> Response:
    body = _fields(request.json(), ("namespace", "table"), (*SCHEMA_CHANGES, "version", "ts"))
    table = _table(app, body)
    changes = [name for name in SCHEMA_CHANGES if name in body]
    if len(changes) != 1:
        raise DatasetError("give exactly one of add_column, add_enum_value or schema (+ version)")
    if ("version" in body) != (changes[0] == "schema"):
        raise DatasetError("'version' goes with 'schema' (a whole VersionedSchema), and only there")
    change = body[changes[0]]
    with app.store.lock:
        ts = _stamp(app, body)
        if changes[0] == "add_column":
            spec = _fields(change, ("name", "schema"))
            version = table.schema.add_column(spec["name"], spec["schema"], ts)
        elif changes[0] == "add_enum_value":
            spec = _fields(change, ("column", "value"))
            version = table.schema.add_enum_value(spec["column"], spec["value"], ts)
        else:
            version = table.schema.replace(change, body["version"], ts)
    return json_response({"namespace": table.namespace, "table": table.name,
                          "version": version.version, "ts": format_ts(ts)})


def changes(app: EmulatorApp, request: Request, namespace: str, name: str) -> Response:
    return json_response(append_changes(app.store, app.store.get(namespace, name), request.body))


def reload(app: EmulatorApp, request: Request) -> Response:
    body = _fields(request.json(), ("namespace", "table"))
    ts = app.store.reload(_table(app, body))
    return json_response({"ts": format_ts(ts)})


def add_faults(app: EmulatorApp, request: Request) -> Response:
    pending = app.faults.add(parse_faults(request.json()))
    return json_response({"pending": pending})


def clear_faults(app: EmulatorApp) -> Response:
    return json_response({"cleared": app.faults.clear()})


def truth(app: EmulatorApp, namespace: str, name: str) -> Response:
    table = app.store.get(namespace, name)
    lines = truth_lines(app.store, table)
    return Response(200, b"".join(orjson.dumps(line) + b"\n" for line in lines),
                    content_type="application/x-ndjson")


def requests(app: EmulatorApp, method: str) -> Response:
    if method == "DELETE":
        app.faults.reset_counts()
    return json_response(app.faults.counts())


def clock(app: EmulatorApp) -> Response:
    return json_response({"now": format_ts(app.store.clock.tick())})
