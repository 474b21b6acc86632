"""Replaying recorded timelines: --clock-start, appended change lines, whole schema versions."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tap_dap.emulator import DatasetError, DatasetOptions, build_store
from tests.unit.emulator.test_store import _write_fixture

NS, TABLE = "canvas", "things"


def _append(server: Any, lines: list[dict[str, Any]] | str) -> Any:
    body = lines if isinstance(lines, str) else "\n".join(json.dumps(x) for x in lines)
    return server.session.post(f"{server.url}/_emulator/changes/{NS}/{TABLE}",
                               data=body.encode())


def _line(key: int, ts: str | None, name: str | None = "x", action: str = "U") -> dict:
    meta: dict[str, Any] = {"action": action}
    if ts is not None:
        meta["ts"] = ts
    line: dict[str, Any] = {"meta": meta, "key": {"id": key}}
    if action == "U":
        line["value"] = {"name": name}
    return line


@pytest.fixture
def replay(live_factory, tmp_path: Path) -> Any:
    _write_fixture(tmp_path)  # changes on 2024-01-01 .. 2024-01-04
    server = live_factory(dataset="empty", data_dir=tmp_path, clock_start="2024-02-01T00:00:00Z")
    server.authorize()
    return server


def test_clock_start_places_snapshot_and_appended_changes_on_the_recorded_timeline(replay) -> None:
    snapshot = replay.query(NS, TABLE, {"format": "jsonl"})
    at = snapshot["at"]
    assert at.startswith("2024-02-01T00:00:0"), at
    # expiry stays real time: clients compare it with their own clock
    assert snapshot["expires_at"] > datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert [r["key"]["id"] for r in replay.records(NS, TABLE, {})] == [1, 3]

    # a recorded phase 2, out of order in the file, one key twice: the later line wins
    answer = _append(replay, [_line(5, "2024-02-01T02:00:00Z", "late"),
                              _line(1, "2024-02-01T01:00:00Z", "changed"),
                              _line(3, "2024-02-01T01:30:00Z", action="D"),
                              _line(5, "2024-02-01T01:00:00Z", "early")])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "namespace": NS, "table": TABLE, "lines": 4, "commits": 3, "rows": 2,
        "first_ts": "2024-02-01T01:00:00.000000Z", "last_ts": "2024-02-01T02:00:00.000000Z"}
    changes = replay.records(NS, TABLE, {"since": at})
    assert sorted((r["key"]["id"], r["meta"]["action"], r["meta"]["ts"],
                   r.get("value", {}).get("name")) for r in changes) == [
        (1, "U", "2024-02-01T01:00:00.000000Z", "changed"),
        (3, "D", "2024-02-01T01:30:00.000000Z", None),
        (5, "U", "2024-02-01T02:00:00.000000Z", "late")]
    # the clock jumped to the data and runs on from there; the job is still there to poll
    job = replay.query(NS, TABLE, {"format": "jsonl", "since": at})
    assert job["until"] > "2024-02-01T02:00:00.000000Z"
    assert replay.get(f"/dap/job/{snapshot['id']}").status_code == 200


def test_changes_that_would_go_back_in_time_are_refused_whole(replay) -> None:
    at = replay.query(NS, TABLE, {"format": "jsonl"})["at"]
    before = replay.get(f"/_emulator/truth/{NS}/{TABLE}").text
    answer = _append(replay, [_line(7, "2024-02-02T00:00:00Z"),
                              _line(8, "2024-01-31T00:00:00Z")])
    assert answer.status_code == 400
    assert "2024-01-31T00:00:00.000000Z would go back in time" in answer.json()["error"]["message"]
    assert replay.get(f"/_emulator/truth/{NS}/{TABLE}").text == before
    assert replay.records(NS, TABLE, {"since": at}) == []
    assert replay.app.store.get(NS, TABLE).key_index.keys() == {(1,), (2,), (3,)}


def test_lines_without_ts_are_stamped_now_and_chain_after_the_last_job(replay) -> None:
    at = replay.query(NS, TABLE, {"format": "jsonl"})["at"]
    answer = _append(replay, [_line(9, None, "now"), _line(1, None, action="D")]).json()
    assert answer["commits"] == 1 and answer["first_ts"] > at
    changes = replay.records(NS, TABLE, {"since": at})
    assert sorted((r["key"]["id"], r["meta"]["action"]) for r in changes) == [(1, "D"), (9, "U")]


@pytest.mark.parametrize("body, message", [
    ("", "no change lines"),
    ("\n\n", "no change lines"),
    ("not json", "line 1: not a DAP record"),
    (json.dumps(_line(1, "2030-01-01T00:00:00Z") | {"value": {"nope": 1}}), "unknown: ['nope']"),
    (json.dumps({"meta": {"ts": "2030-01-01T00:00:00"}, "key": {"id": 1}}), "has no time zone"),
    (json.dumps({"meta": {"action": "X"}, "key": {"id": 1}}), "must be 'U' or 'D'"),
    (json.dumps({"key": {"id": [1]}}), "key values must be strings or numbers"),
    (json.dumps({"key": {"id": True}}), "key values must be strings or numbers"),
    (json.dumps({"meta": None, "key": {"id": 1}}), "not a DAP record"),
    ("[1, 2]", "not a DAP record"),
    (json.dumps({"meta": {"action": "U"}, "key": {"id": 1}}), "value must be an object"),
    (json.dumps(_line(1, "9999-06-01T00:00:00Z")), "leaves the clock no room to run"),
    # checked against the schema: DAP never serves a record that does not fit its table
    (json.dumps(_line(1, None) | {"value": {"name": "n", "state": "bogus"}}),
     "line 1: value.state: 'bogus' is not one of"),
    (json.dumps(_line(1, None, name=None)), "line 1: value.name: None is not of type 'string'"),
    (json.dumps(_line(1, None) | {"value": {"state": "a"}}),
     "line 1: value: 'name' is a required property"),
    (json.dumps(_line(1, None, name=7)), "line 1: value.name: 7 is not of type 'string'"),
    (json.dumps({"meta": {}, "key": {"id": "60"}, "value": {"name": "n"}}),
     "line 1: key.id: '60' is not of type 'integer'"),
    (json.dumps(_line(1, None)) + "\n" + json.dumps(_line(2, None, name=[])),
     "line 2: value.name: [] is not of type 'string'"),
])
def test_bad_change_lines_are_a_clear_400(replay, body: str, message: str) -> None:
    answer = _append(replay, body)
    assert answer.status_code == 400 and message in answer.json()["error"]["message"], answer.text


def test_generated_tables_take_no_explicit_lines(live) -> None:
    answer = live.session.post(f"{live.url}/_emulator/changes/canvas/accounts",
                               data=json.dumps(_line(1, None)).encode())
    assert answer.status_code == 400 and "generated rows" in answer.json()["error"]["message"]


def test_whole_schema_versions_may_jump_but_only_grow(replay) -> None:
    document = copy.deepcopy(replay.get(f"/dap/query/{NS}/table/{TABLE}/schema").json()["schema"])
    grown = copy.deepcopy(document)
    grown["properties"]["value"]["properties"]["score"] = {"type": "number"}
    grown["properties"]["value"]["properties"]["state"]["enum"].append("c")

    def post(body: dict) -> Any:
        return replay.post("/_emulator/schema", {"namespace": NS, "table": TABLE, **body})

    assert post({"schema": grown, "version": 3}).status_code == 400  # fixture is at version 3
    shrunk = copy.deepcopy(document)
    del shrunk["properties"]["value"]["properties"]["state"]
    assert "missing from the new version" in post({"schema": shrunk, "version": 9}).text
    fewer = copy.deepcopy(document)
    fewer["properties"]["value"]["properties"]["state"]["enum"].remove("a")
    assert "lost value(s) ['a']" in post({"schema": fewer, "version": 9}).text
    retyped = copy.deepcopy(document)
    retyped["properties"]["value"]["properties"]["name"] = {"type": "integer"}
    assert "'name' changed its type from 'string' to 'integer'" in post(
        {"schema": retyped, "version": 9}).text
    required = copy.deepcopy(grown)
    required["properties"]["value"]["required"] = ["name", "score"]
    assert "new column(s) ['score'] cannot be required" in post(
        {"schema": required, "version": 9}).text
    assert "would go back in time" in post({"schema": grown, "version": 9,
                                            "ts": "2024-01-01T00:00:00Z"}).text
    answer = post({"schema": grown, "version": 7, "ts": "2024-03-01T00:00:00Z"})
    assert answer.json() == {"namespace": NS, "table": TABLE, "version": 7,
                             "ts": "2024-03-01T00:00:00.000000Z"}
    served = replay.get(f"/dap/query/{NS}/table/{TABLE}/schema").json()
    assert served == {"schema": grown, "version": 7}
    assert _append(replay, [_line(4, "2024-03-01T00:00:01Z") | {
        "value": {"name": "n", "score": 1.5, "state": "c"}}]).status_code == 200
    job = replay.query(NS, TABLE, {"format": "jsonl"})
    assert job["schema_version"] == 7 and job["at"] > "2024-03-01T00:00:01"
    assert {"key": {"id": 4}, "value": {"name": "n", "score": 1.5, "state": "c"}} in [
        {"key": r["key"], "value": r["value"]} for r in replay.records(NS, TABLE, {})]


def test_clock_start_before_the_data_or_malformed_is_refused(tmp_path: Path) -> None:
    _write_fixture(tmp_path)
    with pytest.raises(DatasetError, match="not after the latest recorded change"):
        build_store(DatasetOptions("empty", tmp_path, clock_start="2024-01-02T00:00:00Z"))
    with pytest.raises(DatasetError, match="must be before 9999-01-01"):
        build_store(DatasetOptions("empty", tmp_path, clock_start="9999-12-31T00:00:00Z"))
    with pytest.raises(DatasetError, match="'data' or an ISO 8601 timestamp"):
        build_store(DatasetOptions("empty", tmp_path, clock_start="yesterday"))
    store = build_store(DatasetOptions("empty", tmp_path, clock_start="data"))
    last_change = 1704326400 * 10**6  # 2024-01-04T00:00:00Z
    assert last_change < store.clock.tick() < last_change + 60 * 10**6


def test_empty_timeline_and_a_large_one(live_factory, tmp_path: Path) -> None:
    _write_fixture(tmp_path)
    (tmp_path / "canvas" / "things" / "changes.jsonl").write_text("")
    server = live_factory(dataset="empty", data_dir=tmp_path, clock_start="data")
    server.authorize()
    at = server.query(NS, TABLE, {"format": "jsonl"})["at"]
    assert server.records(NS, TABLE, {}) == []
    lines = [_line(i % 5000, f"2099-01-01T00:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i:06d}Z",
                   f"n{i}") for i in range(60_000)]
    answer = _append(server, lines)
    assert answer.status_code == 200 and answer.json()["commits"] == 60_000, answer.text
    changes = server.records(NS, TABLE, {"since": at})
    assert len(changes) == 5000
    assert {r["value"]["name"] for r in changes} == {f"n{i}" for i in range(55_000, 60_000)}
