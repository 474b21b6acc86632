"""Compare a replicated database with the emulator's truth, table by table.

Stdlib only for SQLite (scripts/demo imports this before any venv exists); psycopg is imported
lazily for PostgreSQL. Values are compared by meaning, not by how a database spells them:
SQLite has no boolean/timestamp/JSON types, PostgreSQL returns datetimes, UUIDs and dicts.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

Row = dict[str, Any]
ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def fetch_truth(base_url: str, namespace: str, table: str) -> list[dict[str, Any]]:
    """``GET /_emulator/truth/{ns}/{table}``: one ``{"key":…, "value":…}`` per live row."""
    with urllib.request.urlopen(f"{base_url}/_emulator/truth/{namespace}/{table}",
                                timeout=60) as response:
        return [json.loads(line) for line in response.read().splitlines() if line]


class Replica:
    """Read access to the tables target-dap-sql wrote (official layout per dialect)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"

    def query(self, sql: str, params: Iterable[Any] = ()) -> tuple[list[str], list[tuple]]:
        if self.dialect == "sqlite":
            path = urlsplit(self.url).path
            # sqlite:////abs/path -> path "//abs/path"; sqlite:///rel -> "/rel"
            path = path[1:] if path.startswith("//") else path.lstrip("/")
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                cursor = conn.execute(sql, tuple(params))
                return [c[0] for c in cursor.description], cursor.fetchall()
        import psycopg

        with psycopg.connect(self.url) as conn, conn.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
            return [c.name for c in cursor.description or []], cursor.fetchall()

    def qualified(self, namespace: str, table: str) -> str:
        if self.dialect == "sqlite":
            return f'"{namespace}__{table}"'
        return f'"{namespace}"."{table}"'

    def rows(self, namespace: str, table: str) -> list[Row]:
        columns, rows = self.query(f"SELECT * FROM {self.qualified(namespace, table)}")
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def table_sync(self) -> dict[tuple[str, str], tuple[datetime, int]]:
        """``instructure_dap.table_sync``: (namespace, table) -> (timestamp, schema_version)."""
        _, rows = self.query(
            'SELECT "source_namespace", "source_table", "timestamp", "schema_version" '
            f"FROM {self.qualified('instructure_dap', 'table_sync')}")
        return {(ns, table): (as_utc(ts), version) for ns, table, ts, version in rows}

    def execute(self, sql: str) -> None:
        """Run one statement (tests use it to plant rows a snapshot must remove)."""
        if self.dialect == "sqlite":
            path = urlsplit(self.url).path
            path = path[1:] if path.startswith("//") else path.lstrip("/")
            with sqlite3.connect(path) as conn:
                conn.execute(sql)
            return
        import psycopg

        with psycopg.connect(self.url) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def as_utc(value: Any) -> datetime:
    """A timestamp as stored (naive UTC datetime or text) or as sent (ISO with Z)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def same_value(expected: Any, stored: Any) -> bool:
    """Whether a database value means the JSON value the emulator holds."""
    if expected is None or stored is None:
        return expected is None and stored is None
    if isinstance(expected, bool):
        return stored in (0, 1) and bool(stored) is expected
    if isinstance(expected, int):
        return not isinstance(stored, bool) and stored == expected
    if isinstance(expected, float):
        tolerance = 1e-9 * max(1.0, abs(expected))
        numeric = isinstance(stored, (int, float, Decimal))
        return numeric and abs(float(stored) - expected) <= tolerance
    if isinstance(expected, (dict, list)):
        decoded = json.loads(stored) if isinstance(stored, str) else stored
        return bool(decoded == expected)
    both_timestamps = isinstance(stored, str) and bool(
        ISO_TIMESTAMP.match(expected) and ISO_TIMESTAMP.match(stored))
    if isinstance(stored, datetime) or both_timestamps:
        return as_utc(expected) == as_utc(stored)
    return bool(str(stored) == expected)


@dataclass
class TableDiff:
    table: str
    missing: list[Any]
    unexpected: list[Any]
    different: list[str]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.different)

    def __str__(self) -> str:
        parts = [f"{self.table}:"]
        if self.missing:
            parts.append(f"missing keys {self.missing[:5]}")
        if self.unexpected:
            parts.append(f"unexpected keys {self.unexpected[:5]}")
        parts += self.different[:5]
        return " ".join(parts)


def diff_table(namespace: str, table: str, truth: list[dict[str, Any]],
               stored_rows: list[Row]) -> TableDiff:
    """Keys present on one side only, and every column whose value differs."""
    key_columns = list(truth[0]["key"]) if truth else []
    expected = {tuple(r["key"].values()): {**r["key"], **r["value"]} for r in truth}
    if not key_columns and stored_rows:
        key_columns = ["id"]
    stored = {tuple(row[c] for c in key_columns): row for row in stored_rows}
    different = []
    for key in expected.keys() & stored.keys():
        for column, value in expected[key].items():
            got = stored[key].get(column, "<no such column>")
            if not same_value(value, got):
                different.append(f"{key}.{column}: expected {value!r}, stored {got!r}")
        extra = sorted(set(stored[key]) - set(expected[key]) - {"_sdc_deleted_at"})
        if extra:
            different.append(f"{key}: columns not in the DAP schema {extra}")
    return TableDiff(f"{namespace}.{table}", sorted(expected.keys() - stored.keys()),
                     sorted(stored.keys() - expected.keys()), sorted(different))


def diff_all(replica: Replica, tables: Iterable[tuple[str, str]],
             truth_of: Callable[[str, str], list[dict[str, Any]]]) -> list[TableDiff]:
    """Every table's differences (empty list: the database equals the truth)."""
    diffs = [diff_table(ns, t, truth_of(ns, t), replica.rows(ns, t)) for ns, t in tables]
    return [d for d in diffs if d]
