"""Store semantics through the API: snapshots, incrementals, deletes, reloads, the logs window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tap_dap.emulator.clock import Clock, format_ts, parse_ts
from tap_dap.emulator.store import LOG_WINDOW
from tests.unit.emulator.conftest import Live


def _advance(live: Live, table: str, **counts: int) -> str:
    response = live.post("/_emulator/advance", {"namespace": "canvas", "table": table, **counts})
    assert response.status_code == 200, response.text
    return response.json()["ts"]


def _truth(live: Live, ns: str, table: str) -> list[dict]:
    text = live.get(f"/_emulator/truth/{ns}/{table}").text
    return [json.loads(line) for line in text.splitlines()]


def _as_truth(records: list[dict]) -> list[dict]:
    return sorted(({"key": r["key"], "value": r["value"]} for r in records),
                  key=lambda r: r["key"]["id"])


def test_snapshot_equals_truth_and_has_no_action(live: Live) -> None:
    records = live.records("canvas", "submissions", {})
    assert len(records) == 10
    assert all(set(r["meta"]) == {"ts"} for r in records)
    truth = _truth(live, "canvas", "submissions")
    assert [t["key"] for t in truth] == [{"id": i} for i in range(1, 11)]
    full = [{"key": t["key"], "value": {k: v for k, v in t["value"].items() if v is not None}}
            for t in truth]
    assert _as_truth(records) == full


def test_incremental_returns_latest_version_per_changed_key_and_deletes(live: Live) -> None:
    at = live.query("canvas", "submissions", {"format": "jsonl"})["at"]
    first = _advance(live, "submissions", inserts=2, updates=3, deletes=1)
    second = _advance(live, "submissions", updates=2, deletes=1)
    records = live.records("canvas", "submissions", {"since": at})
    by_key = {r["key"]["id"]: r for r in records}
    assert len(by_key) == len(records), "one version per key"
    deletes = [k for k, r in by_key.items() if r["meta"]["action"] == "D"]
    assert len(deletes) == 2 and all("value" not in by_key[k] for k in deletes)
    assert {11, 12} <= set(by_key), "inserted keys continue after the base rows"
    assert {r["meta"]["ts"] for r in records} <= {first, second}
    truth = {t["key"]["id"]: t["value"] for t in _truth(live, "canvas", "submissions")}
    assert len(truth) == 10 + 2 - 2
    for key, record in by_key.items():
        if record["meta"]["action"] == "U":
            assert record["value"] == {k: v for k, v in truth[key].items() if v is not None}
        else:
            assert key not in truth


def test_incremental_chain_has_no_gap_and_no_overlap(live: Live) -> None:
    at = live.query("canvas", "accounts", {"format": "jsonl"})["at"]
    _advance(live, "accounts", updates=1)
    job = live.query("canvas", "accounts", {"format": "jsonl", "since": at})
    _advance(live, "accounts", inserts=1)
    later = live.records("canvas", "accounts", {"since": job["until"]})
    assert [r["key"]["id"] for r in later] == [11]
    assert live.records("canvas", "accounts", {"since": job["since"], "until": job["until"]}) \
        == live.records("canvas", "accounts", {"since": at, "until": job["until"]})


def test_until_bounds_the_range_exclusively(live: Live) -> None:
    at = live.query("canvas", "accounts", {"format": "jsonl"})["at"]
    first = _advance(live, "accounts", inserts=1)
    _advance(live, "accounts", inserts=1)
    assert [r["key"]["id"] for r in live.records("canvas", "accounts",
                                                 {"since": at, "until": first})] == []
    both = live.records("canvas", "accounts", {"since": first})
    assert [r["key"]["id"] for r in both] == [11, 12]


def test_reload_requires_a_snapshot_for_older_since(live: Live) -> None:
    at = live.query("canvas", "accounts", {"format": "jsonl"})["at"]
    reload_ts = live.post("/_emulator/reload", {"namespace": "canvas", "table": "accounts"})
    response = live.post("/dap/query/canvas/table/accounts/data", {"format": "jsonl", "since": at})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "SnapshotRequired"
    assert set(error) == {"type", "uuid", "message", "since", "until"}
    assert error["since"] == reload_ts.json()["ts"]
    fresh = live.query("canvas", "accounts", {"format": "jsonl"})["at"]
    assert live.query("canvas", "accounts", {"format": "jsonl", "since": fresh})["status"] == \
        "complete"


def test_logs_window_and_duplicate_keys(live_factory) -> None:
    server = live_factory(rows=200, tables=("web_logs",))
    server.authorize()
    records = server.records("canvas_logs", "web_logs", {})
    keys = [r["key"]["id"] for r in records]
    assert len(keys) == 200 + 3  # indices 0, 97 and 194 are delivered twice
    assert len(set(keys)) == 200
    old = format_ts(parse_ts(records[0]["meta"]["ts"]) - LOG_WINDOW - 10**6)
    response = server.post("/dap/query/canvas_logs/table/web_logs/data",
                           {"format": "jsonl", "since": old})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "OutOfRange"


def test_same_seed_same_data_other_seed_other_data(live_factory) -> None:
    first = live_factory(seed=1, tables=("users",))
    again = live_factory(seed=1, tables=("users",))
    other = live_factory(seed=2, tables=("users",))
    assert _truth(first, "canvas", "users") == _truth(again, "canvas", "users")
    assert _truth(first, "canvas", "users") != _truth(other, "canvas", "users")


def test_null_share_narrows_rows_and_snapshots_match_truth(live_factory) -> None:
    """--null-share 0.78: submissions rows shaped like production data (46 columns, about
    480 bytes of JSON, about 15 members); the snapshot still equals the truth."""
    sizes = {}
    for share in (0.15, 0.78, 0.0):
        live = live_factory(rows=2000, tables=("canvas.submissions",), null_share=share)
        live.authorize()
        job = live.query("canvas", "submissions", {"format": "jsonl"})
        while job["status"] != "complete":
            job = live.get(f"/dap/job/{job['id']}").json()
        lines = b"".join(live.download(job)).splitlines()
        truth = _truth(live, "canvas", "submissions")
        assert len(lines) == len(truth) == 2000
        members = [len(json.loads(line).get("value", {})) for line in lines]
        sizes[share] = (sum(map(len, lines)) / len(lines), sum(members) / len(members))
        assert _as_truth([json.loads(line) for line in lines]) == _as_truth(
            [{"key": t["key"], "value": {k: v for k, v in t["value"].items() if v is not None}}
             for t in truth])
    assert 430 < sizes[0.78][0] < 530 and 13 < sizes[0.78][1] < 18, sizes
    assert sizes[0.15][0] > 2 * sizes[0.78][0]
    assert sizes[0.0][1] == 45  # every value column present


def test_null_share_out_of_range_is_refused() -> None:
    from tap_dap.emulator.datasets import DatasetOptions, build_store
    from tap_dap.emulator.errors import DatasetError

    with pytest.raises(DatasetError, match=r"^--null-share must be between 0 and 1, got 1.5$"):
        build_store(DatasetOptions(null_share=1.5))


def test_clock_is_strictly_increasing() -> None:
    clock = Clock(not_before=10**18)
    ticks = [clock.tick() for _ in range(100)]
    assert ticks == sorted(set(ticks)) and ticks[0] == 10**18 + 1


def _write_fixture(root: Path) -> None:
    table = root / "canvas" / "things"
    table.mkdir(parents=True)
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {
            "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                    "required": ["id"], "additionalProperties": False},
            "value": {"type": "object", "additionalProperties": False, "required": ["name"],
                      "properties": {"name": {"type": "string"},
                                     "state": {"type": "string",
                                               "enum": ["__dap_unspecified__", "a", "b"]}}},
            "meta": {"type": "object", "properties": {"ts": {"type": "string",
                                                             "format": "date-time"}}},
        },
    }
    (table / "schema.json").write_text(json.dumps({"schema": schema, "version": 3}))
    lines = [
        {"key": {"id": 1}, "value": {"name": "one", "state": "a"},
         "meta": {"ts": "2024-01-01T00:00:00Z", "action": "U"}},
        {"key": {"id": 2}, "value": {"name": "two"}, "meta": {"ts": "2024-01-02T00:00:00Z"}},
        {"key": {"id": 1}, "value": {"name": "uno", "state": "b"},
         "meta": {"ts": "2024-01-03T00:00:00Z", "action": "U"}},
        {"key": {"id": 2}, "meta": {"ts": "2024-01-04T00:00:00Z", "action": "D"}},
        {"key": {"id": 3}, "value": {"name": "tab\there"}, "meta": {"ts": "2024-01-04T00:00:00Z"}},
    ]
    (table / "changes.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_fixture_directory_serves_hand_made_history(live_factory, tmp_path: Path) -> None:
    _write_fixture(tmp_path)
    server = live_factory(dataset="empty", data_dir=tmp_path)
    server.authorize()
    assert server.get("/dap/query/canvas/table").json() == {"tables": ["things"]}
    assert server.get("/dap/query/canvas/table/things/schema").json()["version"] == 3
    snapshot = server.records("canvas", "things", {})
    assert [(r["key"], r["value"], r["meta"]["ts"]) for r in snapshot] == [
        ({"id": 1}, {"name": "uno", "state": "b"}, "2024-01-03T00:00:00.000000Z"),
        ({"id": 3}, {"name": "tab\there"}, "2024-01-04T00:00:00.000000Z"),
    ]
    changes = server.records("canvas", "things", {"since": "2024-01-02T00:00:00Z",
                                                  "until": "2024-01-04T00:00:00Z"})
    assert [(r["key"]["id"], r["meta"]["action"]) for r in changes] == [(1, "U"), (2, "U")]
    server.post("/_emulator/advance", {"namespace": "canvas", "table": "things", "inserts": 1,
                                       "deletes": 1})
    truth = _truth(server, "canvas", "things")
    assert len(truth) == 2 and truth[-1]["key"] == {"id": 4}


@pytest.mark.parametrize("mutate, message", [
    (lambda d: (d / "canvas/things/changes.jsonl").write_text('{"key": {"id": 1}}\n'),
     "changes.jsonl:1: not a DAP record"),
    (lambda d: (d / "canvas/things/schema.json").write_text('{"schema": {}, "version": 1}'),
     "needs '$schema'"),
    (lambda d: (d / "canvas/things/changes.jsonl").write_text(
        '{"key": {"nope": 1}, "meta": {"ts": "2024-01-01T00:00:00Z"}}\n'),
     "key must have exactly ['id']"),
])
def test_bad_fixtures_name_file_and_line(tmp_path: Path, mutate, message) -> None:
    from tap_dap.emulator import DatasetError, DatasetOptions, build_store

    _write_fixture(tmp_path)
    mutate(tmp_path)
    with pytest.raises(DatasetError, match=None) as info:
        build_store(DatasetOptions("empty", tmp_path))
    assert message in str(info.value)
