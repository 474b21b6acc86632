"""Served objects are byte-identical to a record-by-record rendering of the same plan.

The writer assembles lines from pre-rendered tails (``rows.fast_lines``, ``writer.ChangeLines``).
The reference here renders every record the slow, exact way -- its Python value dict from
``RowGenerator.value`` (or the fixture's explicit value) through ``Layout.line`` -- and splits
the lines into objects as the protocol promises. Any byte the fast paths get wrong (a value, a
null for a column added later, an enum label, a prefix, the order, an object boundary) differs.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tap_dap.emulator import DatasetOptions, EmulatorApp, JobSettings, ServeOptions
from tap_dap.emulator.clock import format_ts
from tap_dap.emulator.jobs import Job
from tap_dap.emulator.layout import Layout
from tap_dap.emulator.store import Plan, Table

ROWS = 2000
ROWS_PER_OBJECT = 99  # web_logs row 97 is line 98 of the first object, its duplicate line 99
DUPLICATE_EVERY = 97
TABLES = {"submissions": "canvas", "assignment_groups": "canvas", "web_logs": "canvas_logs",
          "things": "canvas"}
FIXTURE_SHARE = 10  # the fixture table has 58 live rows: it takes a tenth of each advance
ROUNDS: list[dict[str, Any]] = [
    {"advance": {"inserts": 40, "updates": 300, "deletes": 80}},
    {"add_column": ("note", {"type": "string"})},
    {"add_column": ("extra", {"type": "object", "additionalProperties": False,
                              "properties": {"p": {"type": "integer"}, "q": {"type": "string"}}})},
    {"advance": {"inserts": 10, "updates": 200, "deletes": 30}},
    {"enum": "brand_new"},
    {"advance": {"inserts": 5, "updates": 150, "deletes": 20}},
]


def _write_fixture(root: Path) -> None:
    """A fixture table: explicit keys and values (the exact path) that advances then update."""
    folder = root / "canvas" / "things"
    folder.mkdir(parents=True)
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {
            "key": {"type": "object", "properties": {"id": {"type": "integer"}}},
            # no required column: a synthetic version can have all of pool group A null
            "value": {"type": "object", "additionalProperties": False,
                      "properties": {"name": {"type": "string"},
                                     "state": {"type": "string",
                                               "enum": ["__dap_unspecified__", "a", "b"]}}},
            "meta": {"type": "object", "properties": {"ts": {"type": "string"}}},
        },
    }
    (folder / "schema.json").write_text(json.dumps({"schema": schema, "version": 1}))
    records = [{"key": {"id": i}, "value": {"name": f"n{i}\t,\"", "state": "ab"[i % 2]},
                "meta": {"ts": f"2024-01-0{1 + i % 5}T00:00:00Z"}} for i in range(1, 60)]
    records.append({"key": {"id": 5}, "meta": {"ts": "2024-01-07T00:00:00Z", "action": "D"}})
    (folder / "changes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _record_lines(table: Table, plan: Plan, layout: Layout, snapshot: bool) -> list[str]:
    generator = table.generator
    assert generator is not None
    base_epoch = table.schema.version_at(plan.base_ts)
    action = None if snapshot else "U"
    lines: list[str] = []
    for index in sorted(set(range(plan.base_count)) | set(plan.overrides)):
        version = plan.overrides.get(index)
        if version is None:
            value = generator.value(index, 0, base_epoch, layout.value_columns)
            line = layout.line(format_ts(plan.base_ts), action, table.key(index), value)
            copies = 2 if plan.duplicates and index % DUPLICATE_EVERY == 0 else 1
            lines += [line] * copies
            continue
        if snapshot and version.action == "D":
            continue
        value = None
        if version.action == "U":
            value = version.value if version.value is not None else generator.value(
                index, version.gen, table.schema.version_at(version.ts), layout.value_columns)
        lines.append(layout.line(format_ts(version.ts), None if snapshot else version.action,
                                 table.key(index), value))
    return lines


def _split(lines: list[str], header: str) -> list[bytes]:
    """Objects of ROWS_PER_OBJECT lines; a row and its duplicate are never split apart."""
    objects: list[bytes] = []
    start = 0
    while start < len(lines):
        stop = start + ROWS_PER_OBJECT
        if 0 < stop < len(lines) and lines[stop] == lines[stop - 1]:
            stop += 1
        objects.append((header + "".join(lines[start:stop])).encode())
        start = stop
    return objects or [header.encode()]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[EmulatorApp]:
    _write_fixture(tmp_path / "data")
    dataset = DatasetOptions("canvas", tmp_path / "data", ROWS, 3, tuple(TABLES))
    emulator = EmulatorApp(ServeOptions(dataset, jobs=JobSettings(rows_per_object=ROWS_PER_OBJECT)),
                           workdir=tmp_path / "jobs")
    yield emulator
    emulator.close()


def _job(app: EmulatorApp, name: str, body: dict[str, Any]) -> Job:
    """A job built by the job manager exactly as ``POST .../data`` builds it."""
    job = app.jobs.create(app.store.get(TABLES[name], name), body)
    assert job.done.wait(30) and job.error is None, job.error
    return job


def _check_job(app: EmulatorApp, name: str, body: dict[str, Any]) -> int:
    """Compare one job's objects with the reference; returns how many lines it had."""
    job = _job(app, name, body)
    served = [gzip.decompress(item.path.read_bytes()) for item in job.objects]
    table = app.store.get(TABLES[name], name)
    layout = Layout(table.schema, body["format"], body["mode"], incremental=not job.snapshot)
    if job.snapshot:
        plan = table.snapshot_plan(job.at)
    else:
        plan = table.incremental_plan(job.since, job.until, job.until)
    lines = _record_lines(table, plan, layout, job.snapshot)
    expected = _split(lines, layout.header())
    assert len(served) == len(expected), f"{name} {body}: object count"
    for number, (got, want) in enumerate(zip(served, expected, strict=True)):
        assert got == want, f"{name} {body}: object {number} differs"
    return len(lines)


def _apply(app: EmulatorApp, step: dict[str, Any]) -> None:
    """One round on every table, as the admin API's advance and schema endpoints do it."""
    store = app.store
    for name, namespace in TABLES.items():
        table = store.get(namespace, name)
        if "advance" in step:
            share = FIXTURE_SHARE if name == "things" else 1
            store.advance(table, *(step["advance"][k] // share
                                   for k in ("inserts", "updates", "deletes")))
            continue
        with store.lock:
            if "add_column" in step:
                table.schema.add_column(*step["add_column"], store.clock.tick())
            elif name == "submissions":
                table.schema.add_enum_value("workflow_state", step["enum"], store.clock.tick())


@pytest.mark.parametrize("fmt, mode", [
    ("jsonl", "expanded"), ("jsonl", "condensed"), ("tsv", "expanded"), ("tsv", "condensed"),
    ("csv", "expanded"), ("csv", "condensed"),
])
def test_objects_equal_record_by_record_rendering(app: EmulatorApp, fmt: str, mode: str) -> None:
    query = {"format": fmt, "mode": mode}
    for name in TABLES:  # base rows only; web_logs objects end on a row and its duplicate
        _check_job(app, name, query)
    first = format_ts(app.store.clock.tick())
    since = first
    changed_lines = 0
    for step in ROUNDS:
        _apply(app, step)
        for name in TABLES:
            changed_lines += _check_job(app, name, {**query, "since": since})
        since = format_ts(app.store.clock.tick())
    assert changed_lines > 1000  # the rounds really produced changes to compare
    for name in TABLES:  # snapshots with overrides, and incrementals spanning schema changes
        _check_job(app, name, query)
        _check_job(app, name, {**query, "since": first})
    # an incremental reaching back before the base rows: base rows with action U, then changes
    _check_job(app, "submissions", {**query, "since": "2000-01-01T00:00:00Z"})


def test_expanded_jsonl_carries_each_object_column_once(app: EmulatorApp) -> None:
    """`expanded` splits object columns into sub-columns in TSV only, never in JSONL lines."""
    table = app.store.get("canvas", "assignment_groups")
    objects = [name for name, col in ((c.name, c) for c in table.schema.value_columns)
               if col.node["type"] == "object"]
    assert objects, "assignment_groups has an object column"
    job = _job(app, "assignment_groups", {"format": "jsonl", "mode": "expanded"})
    text = b"".join(gzip.decompress(item.path.read_bytes()) for item in job.objects).decode()
    lines = text.splitlines()
    for name in objects:
        counts = {line.count(f'"{name}":') for line in lines}
        assert counts == {0, 1}, f"{name}: {counts}"  # null (left out) or once
