"""Appended change lines are checked against their table's schema before anything is applied.

DAP only ever serves records that match the table's schema; a recorded timeline appended with a
wrong type, an unknown enum label or a missing required column would otherwise be accepted here
and fail later, in the client that reads it. (``--data`` fixtures are served as they are, so that
tests can put malformed records in front of a client on purpose.)
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from jsonschema import FormatChecker
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from tap_dap.emulator.errors import DatasetError

_FORMATS = FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type check reports it
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return True


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


@lru_cache(maxsize=64)
def _validator(schema_text: str) -> Any:

    schema = json.loads(schema_text)
    return validator_for(schema)(schema, format_checker=_FORMATS)


def check_record(document: dict[str, Any], part: str, record: dict[str, Any],
                 where: str) -> None:
    """DatasetError naming ``where`` and the first failing path unless ``record`` fits."""

    node = document["properties"].get(part)
    if node is None:
        return
    required = set(node.get("required", []))
    # null is how JSONL says "no value" (also in nested members and array elements): fine for
    # an optional column, wrong for a required one
    present = {k: _without_nulls(v) for k, v in record.items() if v is not None or k in required}
    schema = {**node}
    if "$schema" in document:
        schema["$schema"] = document["$schema"]
    error = best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(present))
    if error is not None:
        path = ".".join(str(p) for p in error.absolute_path)
        raise DatasetError(f"{where}: {part}{'.' + path if path else ''}: {error.message}")
