"""tap-dap's stream maps and flattening, end to end through plain pipes into SQLite: what lands in
the database (and in the Singer stream) against the emulator's truth, and bad maps."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_tap_harness import tap_config, write_json

BIN = Path(sys.executable).parent
SALT = "pepper-7"


@dataclass
class Run:
    tap_rc: int
    tap_stderr: str
    messages: list[dict[str, Any]]
    raw: bytes
    target_rc: int
    target_stderr: str


class Pipeline:
    def __init__(self, emulator: Any, tmp: Path) -> None:
        self.emulator = emulator
        self.tmp = tmp
        self.db = tmp / "dap.db"
        self.target_config = write_json(tmp / "target.json", {"sqlalchemy_url": f"sqlite:///{self.db}"})

    def run(self, **settings: Any) -> Run:
        config = write_json(self.tmp / "tap.json", tap_config(self.emulator, **settings))
        tap = subprocess.run([str(BIN / "tap-dap"), "--config", config], capture_output=True,
                             timeout=120, check=False)  # fmt: skip
        target = subprocess.run([str(BIN / "target-dap-sql"), "--config", self.target_config],
                                input=tap.stdout, capture_output=True, timeout=120,
                                check=False)  # fmt: skip
        messages = [json.loads(line) for line in tap.stdout.splitlines()]
        return Run(tap.returncode, tap.stderr.decode(), messages, tap.stdout, target.returncode,
                   target.stderr.decode())  # fmt: skip

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql).fetchall()

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.query(f'PRAGMA table_info("{table}")')]


@pytest.fixture
def pipeline(emulator_factory, tmp_path: Path) -> Pipeline:
    emulator = emulator_factory(tables="canvas.accounts,canvas.users,canvas.courses", rows=30,
                                seed=5)  # fmt: skip
    return Pipeline(emulator, tmp_path)


def _ok(run: Run) -> None:
    assert run.tap_rc == 0, run.tap_stderr[-2000:]
    assert run.target_rc == 0, run.target_stderr[-2000:]


def _unique_names(emulator: Any) -> list[str]:
    """users.name values that no other value of the emulator's tables contains (so a grep of
    the Singer stream or the database file for them is meaningful)."""
    others = "\n".join(
        json.dumps(v, ensure_ascii=False)
        for table in ("accounts", "courses", "users")
        for row in emulator.truth("canvas", table)
        for k, v in row["value"].items()
        if (table, k) != ("users", "name")
    )
    names = [row["value"]["name"] for row in emulator.truth("canvas", "users")
             if row["value"].get("name")]  # fmt: skip
    return [n for n in names if n not in others]


def test_salted_hash_alias_filter_and_flattening(pipeline: Pipeline) -> None:
    run = pipeline.run(
        tables=["accounts", "users", "courses"],
        stream_maps={
            "canvas-users": {
                "name": "sha256(name + config['salt']) if name is not None else None",
            },
            "canvas-accounts": {"__alias__": "accts", "name": None},
            "canvas-courses": {"__filter__": "id < 5"},
        },
        stream_map_config={"salt": SALT},
    )
    _ok(run)
    emulator = pipeline.emulator

    # salted sha256: only the hash, in the Singer stream and in the database file
    clear = _unique_names(emulator)
    assert clear
    assert [n for n in clear if n.encode() in run.raw] == []
    assert [n for n in clear if n.encode() in pipeline.db.read_bytes()] == []
    truth = {r["key"]["id"]: r["value"].get("name") for r in emulator.truth("canvas", "users")}
    stored = dict(pipeline.query('SELECT id, name FROM "canvas__users"'))
    assert stored == {
        i: None if n is None else hashlib.sha256((n + SALT).encode()).hexdigest()
        for i, n in truth.items()
    }

    # alias: own table, own meta row, no `name` column; the tap's bookmark stays under its name
    streams = {m["stream"] for m in run.messages if m["type"] in ("SCHEMA", "RECORD")}
    assert "canvas-accounts" not in streams and "accts" in streams
    assert "name" not in pipeline.columns("canvas__accts")
    assert pipeline.query('SELECT COUNT(*) FROM "canvas__accts"') == [(30,)]
    assert ("canvas", "accounts", "canvas", "accts") in pipeline.query(
        "SELECT source_namespace, source_table, target_schema, target_table "
        'FROM "instructure_dap__table_sync"')  # fmt: skip
    exported = subprocess.run([str(BIN / "target-dap-sql"), "export-state", "--config",
                               pipeline.target_config], capture_output=True, text=True,
                              check=True)  # fmt: skip
    assert "canvas-accounts" in json.loads(exported.stdout)["bookmarks"]
    listed = subprocess.run([str(BIN / "target-dap-sql"), "list", "--json", "--config",
                             pipeline.target_config], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert {"table": "accounts", "rows": 30}.items() <= next(
        t for t in json.loads(listed.stdout) if t["table"] == "accounts").items()
    sources = subprocess.run([str(BIN / "target-dap-sql"), "dbt-sources", "--output", "-",
                              "--config", pipeline.target_config], capture_output=True,
                             text=True, check=True)  # fmt: skip
    assert "canvas__accts" in sources.stdout

    # __filter__: only matching rows
    ids = sorted(r[0] for r in pipeline.query('SELECT id FROM "canvas__courses"'))
    assert ids == [i for i in sorted(r["key"]["id"] for r in emulator.truth("canvas", "courses"))
                   if i < 5]  # fmt: skip
    assert ids


def test_stream_mapped_to_null_leaves_its_table_unchanged(pipeline: Pipeline) -> None:
    _ok(pipeline.run(tables=["users", "accounts"]))
    before = pipeline.query('SELECT * FROM "canvas__users" ORDER BY id')
    pipeline.emulator.advance("canvas", "users", updates=5, deletes=3)
    run = pipeline.run(tables=["users", "accounts"], stream_maps={"canvas-users": None})
    _ok(run)
    assert not [m for m in run.messages if m.get("stream") == "canvas-users"]
    assert pipeline.query('SELECT * FROM "canvas__users" ORDER BY id') == before


def test_flattening_gives_flattened_columns(pipeline: Pipeline) -> None:
    run = pipeline.run(tables=["accounts"], flattening_enabled=True, flattening_max_depth=1)
    _ok(run)
    (schema,) = [m for m in run.messages if m["type"] == "SCHEMA"]
    assert "x-dap" not in schema["schema"]  # no longer the DAP table's shape
    columns = pipeline.columns("canvas__accounts")
    assert {"meta__action", "meta__ts", "id"} <= set(columns) and "meta" not in columns
    assert pipeline.query('SELECT COUNT(*), MIN(meta__action), MAX(meta__action) '
                          'FROM "canvas__accounts"') == [(30, "U", "U")]  # fmt: skip


@pytest.mark.parametrize(
    ("maps", "expected"),
    [
        ({"canvas-users": {"name": "sha256(name"}}, "setting stream_maps"),
        ({"canvas-nope": {"name": None}},
         "map 'canvas-nope' names stream 'canvas-nope', which does not exist"),
        ({"canvas-users": {"no_such_column": None}},
         "map 'canvas-users' drops property 'no_such_column', which stream 'canvas-users' does "
         "not have"),
        ({"canvas-users": {"__alias__": "canvas-accounts"}},
         "streams 'canvas-accounts' and 'canvas-users' would both be written as stream "
         "'canvas-accounts'"),
        ({"canvas-users": {"id": None}}, "Removing key property 'id' is not permitted"),
        ({"canvas-users": {"__alias__": ""}},
         "map 'canvas-users': alias '' is not a name or an expression"),
        ({"canvas-users": {"__alias__": 'x"; DROP TABLE y; --'}},
         "map 'canvas-users': alias 'x\"; DROP TABLE y; --' is not a name or an expression"),
    ],
)  # fmt: skip
def test_bad_maps_stop_with_one_error_line(pipeline: Pipeline, maps: dict, expected: str) -> None:
    run = pipeline.run(tables=["users", "accounts"], stream_maps=maps)
    assert run.tap_rc == 1
    errors = [line for line in run.tap_stderr.splitlines() if line.startswith("tap-dap: error:")]
    assert len(errors) == 1, run.tap_stderr[-2000:]
    assert expected in errors[0]
    assert "Traceback" not in run.tap_stderr
    assert run.messages == []


def test_map_failing_on_a_record_names_stream_map_and_key(pipeline: Pipeline) -> None:
    _ok(pipeline.run(tables=["users"]))
    before = pipeline.query('SELECT * FROM "canvas__users" ORDER BY id')
    maps = {"canvas-users": {"storage_quota": "storage_quota // 0"}}
    run = pipeline.run(tables=["users"], start_mode="snapshot", stream_maps=maps)
    assert run.tap_rc == 1
    errors = [line for line in run.tap_stderr.splitlines() if line.startswith("tap-dap: error:")]
    assert len(errors) == 1
    assert errors[0].startswith(
        "tap-dap: error: canvas-users: StreamMapError: stream map 'canvas-users' failed on the "
        'record with key {"id":'
    )
    assert "ZeroDivisionError" in errors[0]
    # nothing of it reached the table
    assert pipeline.query('SELECT * FROM "canvas__users" ORDER BY id') == before


def test_failing_map_does_not_log_the_value_it_failed_on(pipeline: Pipeline) -> None:
    run = pipeline.run(tables=["users"], stream_maps={"canvas-users": {"name": "int(name)"}})
    assert run.tap_rc == 1
    errors = [line for line in run.tap_stderr.splitlines() if line.startswith("tap-dap: error:")]
    assert len(errors) == 1 and "ValueError: (message withheld" in errors[0]
    names = [r["value"]["name"] for r in pipeline.emulator.truth("canvas", "users")
             if r["value"].get("name")]  # fmt: skip
    assert not [n for n in names if f"'{n}'" in run.tap_stderr]


@pytest.mark.parametrize(
    "maps",
    [
        {"canvas-users": {"__alias__": "people", "uuid": None, "sortable_name": None,
                          "name": "sha256(name + config['salt']) if name is not None else None"}},
        {"canvas-users": {"name": "md5(name)", "short_name": "sha256('x' + short_name + 'y') "
                                                            "if short_name is not None else None"}},
    ],
)  # fmt: skip
def test_compiled_maps_give_the_sdk_maps_database(
    pipeline: Pipeline, tmp_path: Path, maps: dict
) -> None:
    """Simple maps (drop, hash) run as byte rewrites on the fast path; the same maps plus a
    filter that keeps everything take the SDK's per-record path. Both databases are equal."""
    pipeline.emulator.advance("canvas", "users", updates=10, deletes=3)
    fast = pipeline.run(tables=["users"], stream_maps=maps, stream_map_config={"salt": SALT})
    _ok(fast)
    assert "stream map applied as byte rewrites" in fast.tap_stderr
    (tmp_path / "sdk").mkdir()
    sdk = Pipeline(pipeline.emulator, tmp_path / "sdk")
    slow_maps = {name: {**m, "__filter__": "True"} for name, m in maps.items()}
    slow = sdk.run(tables=["users"], stream_maps=slow_maps, stream_map_config={"salt": SALT})
    _ok(slow)
    assert "stream map applied as byte rewrites" not in slow.tap_stderr
    (table,) = [t for (t,) in pipeline.query("SELECT name FROM sqlite_master WHERE type='table'")
                if t.startswith("canvas__")]  # fmt: skip
    assert pipeline.columns(table) == sdk.columns(table)
    rows = pipeline.query(f'SELECT * FROM "{table}" ORDER BY id')
    assert rows == sdk.query(f'SELECT * FROM "{table}" ORDER BY id')
    assert len(rows) == len(pipeline.emulator.truth("canvas", "users"))
    clear = _unique_names(pipeline.emulator)
    assert [n for n in clear if n.encode() in fast.raw] == []


def test_compiled_map_failing_on_a_null_fails_like_the_sdk_map(pipeline: Pipeline) -> None:
    """``sha256(name + salt)`` without a null guard fails on a user without a name, on the
    fast path as on the SDK's, with the same error."""
    truth = pipeline.emulator.truth("canvas", "users")
    assert any(r["value"].get("name") is None for r in truth)
    maps = {"canvas-users": {"name": "sha256(name + config['salt'])"}}
    run = pipeline.run(tables=["users"], stream_maps=maps, stream_map_config={"salt": SALT})
    assert run.tap_rc == 1
    errors = [line for line in run.tap_stderr.splitlines() if line.startswith("tap-dap: error:")]
    assert len(errors) == 1, run.tap_stderr[-2000:]
    assert "StreamMapError: stream map 'canvas-users' failed on the record with key" in errors[0]
    assert "TypeError" in errors[0]


def test_tap_side_filter_keeping_nothing_replicates_an_empty_table(pipeline: Pipeline) -> None:
    """x-dap-rows counts what the tap sent after its own maps: a tap-side filter that keeps no
    row of a snapshot gives an empty table (fresh or not), not a refusal."""
    _ok(pipeline.run(tables=["courses"]))
    assert pipeline.query('SELECT COUNT(*) FROM "canvas__courses"') == [(30,)]
    for _ in range(2):  # over the table with rows, then over the empty one
        run = pipeline.run(tables=["courses"], start_mode="snapshot",
                           stream_maps={"canvas-courses": {"__filter__": "id < 0"}})
        _ok(run)
        (end,) = [m for m in run.messages if m["type"] == "ACTIVATE_VERSION" and "x-dap-rows" in m]
        assert end["x-dap-rows"] == 0
        assert pipeline.query('SELECT COUNT(*) FROM "canvas__courses"') == [(0,)]
    run = pipeline.run(tables=["courses"], start_mode="snapshot",
                       stream_maps={"canvas-courses": {"__filter__": "id < 5"}})
    _ok(run)
    (end,) = [m for m in run.messages if m["type"] == "ACTIVATE_VERSION" and "x-dap-rows" in m]
    assert end["x-dap-rows"] == 4
    assert pipeline.query('SELECT COUNT(*) FROM "canvas__courses"') == [(4,)]
