"""Explicit change lines (DAP JSONL records) for fixture tables: parsing, grouping, appending.

The same parser reads a fixture's ``changes.jsonl`` at start-up (every line needs ``meta.ts``) and
the admin call ``POST /_emulator/changes/<ns>/<table>`` at run time (a line without ``meta.ts`` is
stamped at the current clock). Lines are grouped by timestamp into commits; within one timestamp
the last line of a key wins, as in a DAP incremental.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tap_dap.emulator.clock import format_ts, parse_ts
from tap_dap.emulator.errors import DatasetError
from tap_dap.emulator.store import Store, Table, Version
from tap_dap.emulator.validation import check_record

_SCALARS = (str, int, float)
#: Clients must be able to parse every later tick too: keep the clock well inside year 9999.
LATEST_TS = parse_ts("9999-01-01T00:00:00Z")


@dataclass(frozen=True)
class ChangeLine:
    ts: int | None  # None: stamp at the current clock
    action: str
    key: tuple[Any, ...]
    value: dict[str, Any] | None


def parse_line(table: Table, text: str, where: str, require_ts: bool,
               check_values: bool = False) -> ChangeLine:
    """One JSONL record checked against the table's current schema (DatasetError naming where).

    ``check_values``: also the key's and the value's types, formats, enums and required columns.
    """
    key_names = [c.name for c in table.schema.key_columns]
    value_names = [c.name for c in table.schema.value_columns]
    try:
        record = json.loads(text)
        meta, key = record.get("meta", {}), record["key"]
        if not isinstance(meta, dict):
            raise TypeError("'meta' is not an object")
        ts = parse_ts(meta["ts"]) if require_ts or meta.get("ts") is not None else None
        action = meta.get("action", "U")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{where}: not a DAP record with meta.ts and key ({exc})") from None
    if ts is not None and ts >= LATEST_TS:
        raise DatasetError(f"{where}: meta.ts {format_ts(ts)} leaves the clock no room to run "
                           f"(use times before {format_ts(LATEST_TS)})")
    if action not in ("U", "D"):
        raise DatasetError(f"{where}: meta.action must be 'U' or 'D', got {action!r}")
    if not isinstance(key, dict) or sorted(key) != sorted(key_names):
        raise DatasetError(f"{where}: key must have exactly {key_names}")
    parts = tuple(key[n] for n in key_names)
    # bool is an int to Python: True would silently be the key 1
    if not all(isinstance(p, _SCALARS) and not isinstance(p, bool) for p in parts):
        raise DatasetError(f"{where}: key values must be strings or numbers")
    if check_values:
        check_record(table.schema.current.document, "key", key, where)
    value = None
    if action == "U":
        value = record.get("value")
        if not isinstance(value, dict) or not set(value) <= set(value_names):
            unknown = sorted(set(value) - set(value_names)) if isinstance(value, dict) else []
            raise DatasetError(f"{where}: value must be an object with schema columns only"
                               + (f" (unknown: {unknown})" if unknown else ""))
        if check_values:
            check_record(table.schema.current.document, "value", value, where)
        value = {n: value.get(n) for n in value_names}
    return ChangeLine(ts, action, parts, value)


def parse_lines(table: Table, lines: Iterable[tuple[str, str]], require_ts: bool,
                check_values: bool = False) -> list[ChangeLine]:
    """``(where, text)`` pairs to change lines; blank lines are skipped."""
    return [parse_line(table, text, where, require_ts, check_values)
            for where, text in lines if text.strip()]


def commit_lines(table: Table, changes: list[ChangeLine], stamp: int | None = None) -> list[int]:
    """Commit parsed lines grouped by timestamp, in clock order; returns the commit timestamps.

    The caller has checked every timestamp is after the table's last commit.
    """
    by_ts: dict[int, dict[int, Version]] = {}
    for change in changes:
        ts = change.ts if change.ts is not None else stamp
        assert ts is not None
        index = table.index_of(change.key)
        by_ts.setdefault(ts, {})[index] = Version(ts, change.action, index, 0, change.value)
    for ts, versions in sorted(by_ts.items()):
        table.commit(ts, list(versions.values()))
    return sorted(by_ts)


def append_changes(store: Store, table: Table, body: bytes) -> dict[str, Any]:
    """The admin call: append change lines after everything the clock has handed out.

    A line's ``meta.ts`` is honoured but must be later than the clock's last tick (every job's
    ``at``/``until`` so far): an earlier change would rewrite history a client already read, which
    DAP never does. Lines without ``meta.ts`` share one new tick.
    """
    if table.base_count:
        raise DatasetError(f"{table.namespace}.{table.name} has generated rows; append change "
                           "lines only to --data fixture tables (use /_emulator/advance here)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DatasetError("change lines must be UTF-8 JSONL") from None
    with store.lock:
        numbered = ((f"line {n}", line) for n, line in enumerate(text.splitlines(), 1))
        changes = parse_lines(table, numbered, require_ts=False, check_values=True)
        if not changes:
            raise DatasetError("no change lines in the request body (JSONL, one record a line)")
        last = store.clock.last
        stamped = [c.ts for c in changes if c.ts is not None]
        if stamped and min(stamped) <= last:
            raise DatasetError(
                f"meta.ts {format_ts(min(stamped))} would go back in time: the emulator clock "
                f"is already at {format_ts(last)}; append only changes after it (or omit meta.ts "
                "to stamp them now)")
        stamp = store.clock.tick() if len(stamped) < len(changes) else None
        if stamped:
            store.clock.observe(max(stamped))
        commits = commit_lines(table, changes, stamp)
    return {"namespace": table.namespace, "table": table.name, "lines": len(changes),
            "commits": len(commits), "first_ts": format_ts(commits[0]),
            "last_ts": format_ts(commits[-1]), "rows": table.live}
