"""Compiled stream maps (byte rewrites on the fast path) on hostile DAP rows, end to end into
SQLite: the database equals the one the SDK's per-record maps give (a ``__filter__: "True"``
forces that path), and no dropped or hashed value appears in the Singer stream or the file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_tap_stream_maps import Pipeline, _ok
from tests.reliability.fixtures import write_table

SALT = "sél ☃ \"q\" \\ ,{"
LONG = "ü" * 500_000 + "END"  # 1 MB of UTF-8
TRICKY = ['plain', 'q"uote', "back\\slash", "a, b", "{brace}", "[x]", "ünïcödé ☃ 𝄞", "a/b",
          "tab\there", "line\nbreak", ',"email":"x@y"', '{"name":"n"}', "\u0000nul", " ", "",
          LONG, "1e5"]  # fmt: skip


def _changes() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i, text in enumerate(TRICKY):
        secret = f"SECRET-{i}-{text[:40]}"
        rows.append({"key": {"id": i}, "value": {
            "name": secret, "email": f"mail{i}-{text[:40]}@leak.example", "note": text,
            "score": 1.5e-7 * i, "nested": {"name": f"NESTED-{i}"} if i % 3 == 0 else None}})
    rows.append({"key": {"id": 100}, "value": {"note": "no name, no email"}})
    rows.append({"key": {"id": 101}, "value": {"name": None, "email": None}})
    rows.append({"key": {"id": 2}, "delete": True})
    return rows


@pytest.fixture
def hostile(emulator_factory, tmp_path: Path) -> Pipeline:
    data = tmp_path / "data"
    write_table(data, "canvas", "people", {"id": {"type": "integer"}}, {
        "name": {"type": "string"}, "email": {"type": "string"}, "note": {"type": "string"},
        "score": {"type": "number"},
        "nested": {"type": "object", "properties": {"name": {"type": "string"}},
                   "additionalProperties": False},
    }, _changes())  # fmt: skip
    (tmp_path / "fast").mkdir()
    return Pipeline(emulator_factory(data=data, dataset="empty"), tmp_path / "fast")


def _both(pipeline: Pipeline, tmp_path: Path, maps: dict) -> tuple[Any, Any, Pipeline]:
    fast = pipeline.run(tables=["people"], stream_maps=maps, stream_map_config={"salt": SALT})
    _ok(fast)
    (tmp_path / "sdk").mkdir()
    sdk = Pipeline(pipeline.emulator, tmp_path / "sdk")
    slow_maps = {k: {**v, "__filter__": "True"} for k, v in maps.items()}
    slow = sdk.run(tables=["people"], stream_maps=slow_maps, stream_map_config={"salt": SALT})
    _ok(slow)
    return fast, slow, sdk


def test_hostile_rows_give_the_sdk_database_and_leak_nothing(hostile: Pipeline,
                                                             tmp_path: Path) -> None:
    maps = {"canvas-people": {"email": None, "name": "sha256(name + config['salt']) "
                                                     "if name is not None else None"}}
    fast, slow, sdk = _both(hostile, tmp_path, maps)
    assert "stream map applied as byte rewrites" in fast.tap_stderr
    assert "stream map applied as byte rewrites" not in slow.tap_stderr
    rows = hostile.query('SELECT * FROM "canvas__people" ORDER BY id')
    assert rows == sdk.query('SELECT * FROM "canvas__people" ORDER BY id')
    assert len(rows) == len(TRICKY) + 1  # a delete, two extra rows
    assert "email" not in hostile.columns("canvas__people")
    by_id = dict(hostile.query('SELECT id, name FROM "canvas__people"'))
    expected = hashlib.sha256(f"SECRET-5-{TRICKY[5]}{SALT}".encode()).hexdigest()
    assert by_id[5] == expected and by_id[100] is None and by_id[101] is None
    database = hostile.db.read_bytes()
    for raw in (fast.raw, database):
        assert b"SECRET-" not in raw and b"leak.example" not in raw


@pytest.mark.parametrize("name", ["record", "_"])
def test_a_property_named_like_an_expression_name_takes_the_sdk_path(
    emulator_factory, tmp_path: Path, name: str
) -> None:
    """In an SDK map, ``record`` and ``_`` are the whole record, not the property of that name:
    a hash of one must not be compiled into a hash of the property."""
    data = tmp_path / "data"
    write_table(data, "canvas", "people", {"id": {"type": "integer"}},
                {name: {"type": "string"}, "n": {"type": "string"}},
                [{"key": {"id": 1}, "value": {name: "SECRET", "n": "x"}}])  # fmt: skip
    (tmp_path / "fast").mkdir()
    pipeline = Pipeline(emulator_factory(data=data, dataset="empty"), tmp_path / "fast")
    fast, _, sdk = _both(pipeline, tmp_path, {"canvas-people": {name: f"md5({name})"}})
    assert "stream map applied as byte rewrites" not in fast.tap_stderr
    query = 'SELECT * FROM "canvas__people" ORDER BY id'
    assert pipeline.query(query) == sdk.query(query)
