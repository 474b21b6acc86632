"""target-dap-sql's stream maps and flattening on its input: the database against the messages,
and the same maps on either side of the pipe give the same database."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from target_dap_sql.errors import InputError
from tests.integration.helpers import (
    SUBMISSIONS,
    SUBMISSIONS_V1,
    bookmark,
    logged_errors,
    snapshot,
    upsert,
)
from tests.integration.test_tap_harness import tap_config, write_json
from tests.unit.target.dap_messages import (
    activate,
    dump_sqlite,
    record,
    run_cli,
    run_in_process,
    singer_schema,
    state,
    submission,
    submissions_schema,
)

BIN = Path(sys.executable).parent


def _query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _columns(db: Path, table: str) -> list[str]:
    return [r[1] for r in _query(db, f'PRAGMA table_info("{table}")')]


def _live(db: Path) -> dict[str, list[tuple]]:
    """Every table but snapshot staging tables (a failed snapshot may leave an empty one)."""
    return {t: rows for t, rows in dump_sqlite(db).items() if not t.endswith("__dap_staging")}


def _load(db: Path, maps: Any, messages: list[dict[str, Any]], **config: Any) -> None:
    run_in_process({"sqlalchemy_url": f"sqlite:///{db}", "stream_maps": maps, **config}, messages)


MESSAGES = [SUBMISSIONS_V1, *snapshot(1, range(1, 7)), bookmark("2024-03-01T00:00:00Z")]


def test_alias_drop_hash_and_filter_on_input(tmp_path: Path) -> None:
    db = tmp_path / "dap.db"
    _load(db, {SUBMISSIONS: {"__alias__": "subs", "body": None, "__filter__": "id % 2 == 0",
                             "grade": "sha256(grade + config['salt'])"}},
          MESSAGES, stream_map_config={"salt": "x"})  # fmt: skip
    columns = _columns(db, "canvas__subs")
    assert "body" not in columns and "grade" in columns
    assert "canvas__submissions" not in {r[0] for r in _query(
        db, "SELECT name FROM sqlite_master WHERE type='table'")}  # fmt: skip
    rows = _query(db, 'SELECT id, grade FROM "canvas__subs" ORDER BY id')
    assert rows == [(i, hashlib.sha256(f"A{i}x".encode()).hexdigest()) for i in (2, 4, 6)]
    synced = _query(db, "SELECT source_namespace, source_table, target_table FROM "
                        '"instructure_dap__table_sync"')  # fmt: skip
    assert synced == [("canvas", "submissions", "subs")]


def test_stream_mapped_to_null_on_input_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "dap.db"
    _load(db, {}, MESSAGES)
    before = dump_sqlite(db)
    _load(db, {SUBMISSIONS: None}, [SUBMISSIONS_V1, *snapshot(2, [9]), bookmark("2024-04-01Z")])
    assert dump_sqlite(db) == before


def test_flattening_on_input(tmp_path: Path) -> None:
    db = tmp_path / "dap.db"
    run_in_process({"sqlalchemy_url": f"sqlite:///{db}", "flattening_enabled": True,
                    "flattening_max_depth": 1}, MESSAGES)  # fmt: skip
    columns = _columns(db, "canvas__submissions")
    assert {"media__kind", "media__size", "meta__action"} <= set(columns)
    assert "media" not in columns
    assert _query(db, 'SELECT id, media__kind, media__size FROM "canvas__submissions" '
                      "WHERE id = 3") == [(3, "video", 3)]  # fmt: skip


def test_map_failing_on_a_record_names_stream_map_and_key(tmp_path: Path) -> None:
    db = tmp_path / "dap.db"
    _load(db, {}, MESSAGES)
    before = _live(db)
    with pytest.raises(InputError) as caught:
        _load(db, {SUBMISSIONS: {"score": "score / 0"}},
              [SUBMISSIONS_V1, *snapshot(2, [1, 2]), bookmark("2024-04-01Z")])
    assert str(caught.value).startswith(f"stream '{SUBMISSIONS}'") or SUBMISSIONS in str(
        caught.value)
    assert f"stream map '{SUBMISSIONS}' failed on the record with key {{\"id\":1}}" in str(
        caught.value)
    assert _live(db) == before


def test_filter_dropping_every_record_is_refused_as_an_empty_swap(tmp_path: Path) -> None:
    db = tmp_path / "dap.db"
    _load(db, {}, MESSAGES)
    closing = {"type": "ACTIVATE_VERSION", "stream": SUBMISSIONS, "version": 2, "x-dap-rows": 2}
    with pytest.raises(InputError, match="allow_empty_snapshots"):
        _load(db, {SUBMISSIONS: {"__filter__": "False"}},
              [SUBMISSIONS_V1, snapshot(2, [])[0], upsert(1), upsert(2), closing])
    assert len(_query(db, 'SELECT * FROM "canvas__submissions"')) == 6


def test_same_maps_in_tap_or_target_give_the_same_database(emulator_factory,
                                                             tmp_path: Path) -> None:
    emulator = emulator_factory(tables="canvas.users,canvas.accounts", rows=25, seed=11)
    maps = {"canvas-users": {"name": "sha256(name + config['salt']) if name else None",
                             "__filter__": "id > 3"},
            "canvas-accounts": {"__alias__": "accts", "name": None}}  # fmt: skip
    mapping = {"stream_maps": maps, "stream_map_config": {"salt": "s"}}
    dumps = []
    for side in ("tap", "target"):
        db = tmp_path / f"{side}.db"
        tap_file = write_json(tmp_path / f"{side}-tap.json",
                              tap_config(emulator, **(mapping if side == "tap" else {})))
        target_file = write_json(tmp_path / f"{side}-target.json",
                                 {"sqlalchemy_url": f"sqlite:///{db}",
                                  **(mapping if side == "target" else {})})  # fmt: skip
        tap = subprocess.run([str(BIN / "tap-dap"), "--config", tap_file], capture_output=True,
                             timeout=120, check=True)  # fmt: skip
        subprocess.run([str(BIN / "target-dap-sql"), "--config", target_file], input=tap.stdout,
                       capture_output=True, timeout=120, check=True)  # fmt: skip
        dump = dump_sqlite(db)
        # bookmarks are the jobs' timestamps, different in each run
        dump["instructure_dap__table_sync"] = sorted(
            (r[1], r[2], r[5], r[6]) for r in dump["instructure_dap__table_sync"])
        dumps.append(dump)
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["canvas__users"]) == 22 and len(dumps[0]["canvas__accts"]) == 25
    truth = {r["key"]["id"]: r["value"].get("name") for r in emulator.truth("canvas", "users")}
    assert dict(_query(tmp_path / "target.db", 'SELECT id, name FROM "canvas__users"')) == {
        i: hashlib.sha256(f"{n}s".encode()).hexdigest() if n else None
        for i, n in truth.items() if i > 3
    }



def test_new_key_properties_load_as_a_generic_stream(tmp_path: Path) -> None:
    """Other key properties: no longer the DAP table's shape, so no DAP layout; its `meta`
    object is then a column like any other (it used to clash with the decoder's own)."""
    db = tmp_path / "dap.db"
    _load(db, {SUBMISSIONS: {"__key_properties__": ["id", "assignment_id"]}}, MESSAGES)
    assert "meta" in _columns(db, "canvas__submissions")
    rows = _query(db, 'SELECT id, assignment_id FROM "canvas__submissions" ORDER BY id')
    assert rows == [(i, 1000 + i) for i in range(1, 7)]
    tables = {r[0] for r in _query(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert "instructure_dap__table_sync" not in tables  # no DAP provenance, no meta row


#: A second DAP table of the same shape as canvas.submissions.
GRADES = "canvas-grades"
GRADES_MESSAGES = [singer_schema("canvas", "grades", 1, submissions_schema(1)),
                   activate(GRADES, 1), *[record(GRADES, {"id": i}, submission(i, grade="G"))
                                          for i in range(1, 4)],
                   activate(GRADES, 1), state({GRADES: ("2024-03-01T00:00:00Z", 1)})]


def _generic(stream: str, key: int, value: str) -> list[dict[str, Any]]:
    return [{"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
             "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                         "v": {"type": "string"}}}},
            {"type": "RECORD", "stream": stream, "record": {"id": key, "v": value}},
            {"type": "STATE", "value": {"after": stream}}]


@pytest.mark.parametrize("maps", [
    {SUBMISSIONS: {"__alias__": "people"}, GRADES: {"__alias__": "people"}},
    {SUBMISSIONS: {"__alias__": "people"}, "people": {"__source__": GRADES}},
    {SUBMISSIONS: {"__alias__": "canvas-grades"}, GRADES: {"name": None}},
])
def test_two_named_streams_under_one_name_are_refused_before_anything_is_written(
        tmp_path: Path, maps: dict[str, Any]) -> None:
    """Maps keyed by stream names tell up front that both would write one table (tap-dap's
    own check, same words)."""
    run = run_cli({"sqlalchemy_url": "sqlite:///dap.db", "stream_maps": maps},
                  [*MESSAGES, *GRADES_MESSAGES], tmp_path)
    assert run.returncode == 1
    output = next(m.get("__alias__", k) for k, m in maps.items() if k == SUBMISSIONS)
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: setting stream_maps: streams '{GRADES}' and '{SUBMISSIONS}' would "
        f"both be written as stream '{output}'"]
    assert run.states == []
    assert not (tmp_path / "dap.db").exists() or dump_sqlite(tmp_path / "dap.db") == {}


def test_dap_streams_aliased_to_one_name_by_a_pattern_are_refused_at_the_second_schema(
        tmp_path: Path) -> None:
    """A pattern's streams are known only as their SCHEMAs arrive: the second one is refused
    before its records, naming both; the first one's table holds its own rows only."""
    run = run_cli({"sqlalchemy_url": "sqlite:///dap.db",
                   "stream_maps": {"canvas-*": {"__alias__": "people"}}},
                  [*MESSAGES, *GRADES_MESSAGES], tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: line {len(MESSAGES) + 1}, stream '{GRADES}': setting stream_maps: "
        f"streams '{SUBMISSIONS}' and '{GRADES}' would both be written as stream 'people'"]
    db = tmp_path / "dap.db"
    assert _query(db, 'SELECT id, grade FROM "canvas__people" ORDER BY id') == [
        (i, f"A{i}") for i in range(1, 7)]


def test_generic_stream_aliased_onto_another_is_refused_at_its_schema(tmp_path: Path) -> None:
    """Two tap streams silently merged into one table would overwrite each other's keys."""
    run = run_cli({"sqlalchemy_url": "sqlite:///dap.db", "batch_max_seconds": 0,
                   "stream_maps": {"orders_2024": {"__alias__": "orders"}}},
                  [*_generic("orders", 1, "from orders"),
                   *_generic("orders_2024", 1, "from orders_2024")], tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        "target-dap-sql: line 4, stream 'orders_2024': setting stream_maps: streams 'orders' "
        "and 'orders_2024' would both be written as stream 'orders'"]
    assert _query(tmp_path / "dap.db", 'SELECT id, v FROM "orders"') == [(1, "from orders")]
