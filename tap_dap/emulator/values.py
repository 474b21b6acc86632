"""Deterministic synthetic column values and their text form in each DAP output format.

Each column gets a pool of pre-generated Python values from a random generator seeded by
(seed, namespace, table, column), so the same ``--seed`` always yields the same data. Values are
chosen to exercise every escaping rule a client must get right (tabs, newlines, backslashes,
quotes, ``NULL`` and ``\\N`` look-alikes, non-ASCII, empty strings, ``__dap_unspecified__``,
oversized markers).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tap_dap.emulator.schema import UNSPECIFIED, Column

ANCHOR = datetime(2024, 11, 1, tzinfo=UTC)  # values are deterministic: never relative to "now"
OVERSIZED = "__cd2_oversized_truncated__"
WORDS = [
    "intro", "biology", "calculus", "essay", "lab", "report", "week", "module", "quiz", "final",
    "draft", "review", "chapter", "history", "physics", "unit", "project", "reading", "notes",
    "discussion", "peer", "feedback", "rubric", "outline",
]
TRICKY_TEXT = [
    "multi\nline", "tab\there", "back\\slash", 'quote "double"', "comma, separated", "NULL",
    "\\N", "", "Café ☃ 日本語", "carriage\rreturn", "  padded  ", OVERSIZED, "{\"json\": 1}",
]


def _text(rng: random.Random, max_length: int | None, name: str) -> str:
    if rng.random() < 0.06:
        value = rng.choice(TRICKY_TEXT)
    elif "email" in name:
        value = f"user{rng.randint(1, 99999)}@example.edu"
    elif "url" in name:
        course, page = rng.randint(1, 9999), rng.randint(1, 99)
        value = f"https://canvas.example.edu/courses/{course}/pages/{page}"
    elif name in ("locale", "default_locale") or name.endswith("_locale"):
        value = rng.choice(["en", "es", "fr", "de", "pt-BR", "ja"])
    else:
        value = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))).capitalize()
    if max_length is not None:
        value = value[:max_length]
    return value


def _int(rng: random.Random, node: dict[str, Any], name: str, rows: int) -> int:
    if "enum" in node:
        return rng.choice(node["enum"])
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None or high is not None:
        low = int(low) if low is not None else 0
        return rng.randint(low, int(high) if high is not None else low + 10**6)
    if name == "id" or name.endswith("_id"):
        return rng.randint(1, max(rows, 1))
    bound = {"int16": 100, "int32": 10_000}.get(node.get("format", ""), 10**9)
    return rng.randint(0, bound)


def _float(rng: random.Random, node: dict[str, Any]) -> float:
    if "multipleOf" in node:
        step = node["multipleOf"]
        top = min(float(node.get("exclusiveMaximum", 1000)), 1000.0)
        digits = max(0, -int(round(math.log10(step)))) if step < 1 else 0
        return round(rng.uniform(0, top - step), digits)
    return round(rng.uniform(0, 100), 2)


def _enum(rng: random.Random, labels: list[str]) -> str:
    real = [label for label in labels if label != UNSPECIFIED] or labels
    return UNSPECIFIED if rng.random() < 0.02 else rng.choice(real)


def make_value(rng: random.Random, node: dict[str, Any], name: str, rows: int) -> Any:
    """One value for a column schema ``node`` (never None; the caller decides about nulls)."""
    kind = node["type"]
    if kind == "integer":
        return _int(rng, node, name, rows)
    if kind == "number":
        return _float(rng, node)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [make_value(rng, node["items"], name, rows) for _ in range(rng.randint(0, 3))]
    if kind == "object":
        out = {}
        for sub_name, sub in node["properties"].items():
            if rng.random() < 0.8:
                out[sub_name] = make_value(rng, sub, sub_name, rows)
        return out
    if "enum" in node:
        return _enum(rng, node["enum"])
    fmt = node.get("format")
    if fmt == "date-time":
        moment = ANCHOR - timedelta(seconds=rng.randint(0, 2 * 365 * 86_400))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "date":
        return (ANCHOR - timedelta(days=rng.randint(0, 730))).strftime("%Y-%m-%d")
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt in ("ipv4", "ipv6"):
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return _text(rng, node.get("maxLength"), name)


#: Share of NULL values in a nullable column, unless the dataset says otherwise (--null-share).
NULL_SHARE = 0.15


def column_pool(seed: int, where: str, column: Column, size: int, rows: int,
                labels: list[str] | None = None, null_share: float = NULL_SHARE) -> list[Any]:
    """``size`` values for ``column``; ``labels`` limits enums to those of one schema version."""
    rng = random.Random(f"{seed}:{where}:{column.name}")
    node = column.node if labels is None else {**column.node, "enum": labels}
    if column.required:
        null_share = 0.0
    return [
        None if rng.random() < null_share else make_value(rng, node, column.name, rows)
        for _ in range(size)
    ]


# ---- text forms ---------------------------------------------------------------------------------

_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"})
_CSV_SPECIAL = set(',"\n\r\t')


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _plain(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return json_text(value)
    if isinstance(value, str):
        return value
    return json_text(_drop_nulls(value))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def is_absent(value: Any) -> bool:
    """NULL in DAP's tabular formats: no value, or a nested object without a non-null member."""
    return value is None or (isinstance(value, dict) and not any(
        v is not None for v in value.values()))


def stored_form(value: Any, required: bool) -> Any:
    """A column value as a correct replica holds it (the rows of /_emulator/truth).

    Nested objects lose their null members and, in a nullable column, are NULL without any
    member left: what the official client stores from the TSV above, and target-dap-sql from
    JSONL. (A NOT NULL column keeps ``{}``; the official client cannot load its ``\\N``.)
    """
    if not isinstance(value, dict):
        return value
    if is_absent(value) and not required:
        return None
    return _drop_nulls(value)


def tsv_cell(value: Any) -> str:
    if is_absent(value):
        return "\\N"
    return _plain(value).translate(_TSV_ESCAPES)


def csv_cell(value: Any) -> str:
    if is_absent(value):
        return "NULL"
    text = _plain(value)
    if not isinstance(value, str | dict | list):
        return text
    if text == "" or text == "NULL" or _CSV_SPECIAL.intersection(text) or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


CELL_RENDERERS: dict[str, Callable[[Any], str]] = {"tsv": tsv_cell, "csv": csv_cell}
