"""Shared pieces of the target's integration tests: messages of the canvas-submissions stream
(schema from tests/unit/target/dap_messages.py) and the error lines a target run logs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.unit.target.dap_messages import (
    activate,
    record,
    singer_schema,
    state,
    submission,
    submissions_schema,
)

SUBMISSIONS = "canvas-submissions"


def submissions_schema_message(version: int = 1) -> dict[str, Any]:
    """The tap's SCHEMA message of canvas.submissions at schema version 1, 2 or 3."""
    return singer_schema("canvas", "submissions", version, submissions_schema(version))


SUBMISSIONS_V1 = submissions_schema_message(1)


def upsert(i: int, **overrides: Any) -> dict[str, Any]:
    """The RECORD that upserts submission `i` (values: dap_messages.submission)."""
    return record(SUBMISSIONS, {"id": i}, submission(i, **overrides))


def delete(i: int, **record_options: Any) -> dict[str, Any]:
    """The RECORD that deletes submission `i` (`ts=` sets when)."""
    return record(SUBMISSIONS, {"id": i}, action="D", **record_options)


def bookmark(timestamp: str, schema_version: int = 1) -> dict[str, Any]:
    """The STATE message that moves the submissions bookmark to `timestamp`."""
    return state({SUBMISSIONS: (timestamp, schema_version)})


def snapshot(version: int, ids: Iterable[int], **overrides: Any) -> list[dict[str, Any]]:
    """A complete snapshot: ACTIVATE_VERSION, an upsert per id, ACTIVATE_VERSION again."""
    return [activate(SUBMISSIONS, version), *[upsert(i, **overrides) for i in ids],
            activate(SUBMISSIONS, version)]


def logged_errors(stderr: str) -> list[str]:
    """The messages of the ERROR lines in a target run's log."""
    return [line.split("| ", 3)[-1] for line in stderr.splitlines() if "| ERROR" in line]
