"""tap-dap against the emulator: snapshot -> changes -> incremental, schema bumps, reloads."""

from __future__ import annotations

import pytest

from tap_dap.client import format_timestamp, parse_timestamp
from tap_dap.errors import StreamsFailedError
from tests.integration.test_tap_harness import apply_records, flat_truth, run_tap, tap_config


def test_snapshot_then_incremental_reproduces_the_emulator_tables(emulator_factory) -> None:
    emu = emulator_factory(tables="canvas.accounts,canvas.users", rows=30)
    config = tap_config(emu)

    first = run_tap(config)
    assert first.error is None
    for stream in ("canvas-accounts", "canvas-users"):
        # contiguous per stream, snapshot framed by ACTIVATE_VERSION, STATE after the records
        assert first.sequence(stream) == [
            "SCHEMA", "ACTIVATE_VERSION", "RECORD", "ACTIVATE_VERSION", "STATE",
        ]  # fmt: skip
        records = first.records(stream)
        assert {r["meta"]["action"] for r in records} == {"U"}
        assert all(r["_sdc_deleted_at"] is None for r in records)
    versions = {m["version"] for m in first.of_type("ACTIVATE_VERSION")}
    assert len(versions) == 1
    # the opening one is plain; the closing one says how many rows the DAP snapshot had
    opening, closing = first.of_type("ACTIVATE_VERSION", "canvas-users")
    assert "x-dap-rows" not in opening and closing["x-dap-rows"] == 30
    assert {r["version"] for r in first.of_type("RECORD")} == versions

    users: dict = {}
    apply_records(users, first.records("canvas-users"), ["id"])
    assert users == flat_truth(emu, "canvas", "users")
    assert len(users) == 30

    emu.advance("canvas", "users", inserts=4, updates=5, deletes=3)
    second = run_tap(config, state=first.final_state)
    assert second.error is None
    assert second.of_type("ACTIVATE_VERSION") == []
    changes = second.records("canvas-users")
    assert sorted(r["meta"]["action"] for r in changes) == ["D"] * 3 + ["U"] * 9
    deleted = [r for r in changes if r["meta"]["action"] == "D"]
    assert all(set(r) == {"id", "meta", "_sdc_deleted_at"} for r in deleted)
    assert all("version" not in m for m in second.of_type("RECORD"))
    assert second.records("canvas-accounts") == []

    apply_records(users, changes, ["id"])
    assert users == flat_truth(emu, "canvas", "users")
    assert len(users) == 31


def test_bookmarks_are_job_timestamps_and_the_next_query_continues_from_them(emulator) -> None:
    config = tap_config(emulator, tables=["accounts"])
    first = run_tap(config)
    bookmark = first.final_state["bookmarks"]["canvas-accounts"]
    assert set(bookmark) == {"timestamp", "schema_version"}
    assert bookmark["schema_version"] == 1
    assert bookmark["timestamp"].endswith("Z")
    assert format_timestamp(parse_timestamp(bookmark["timestamp"], "t")) == bookmark["timestamp"]
    # STATE comes only after the stream's last record
    kinds = [m["type"] for m in first.messages]
    assert kinds.index("STATE") > max(i for i, k in enumerate(kinds) if k == "RECORD")

    ts = emulator.advance("canvas", "accounts", updates=2)
    second = run_tap(config, state=first.final_state)
    assert [r["meta"]["ts"] for r in second.records("canvas-accounts")] == [ts, ts]
    later = second.final_state["bookmarks"]["canvas-accounts"]["timestamp"]
    assert later > bookmark["timestamp"]
    # nothing changed since: an empty incremental still advances the bookmark
    third = run_tap(config, state=second.final_state)
    assert third.records("canvas-accounts") == []
    assert third.final_state["bookmarks"]["canvas-accounts"]["timestamp"] > later


def test_schema_version_bump_mid_chain_announces_the_new_schema_first(emulator) -> None:
    config = tap_config(emulator, tables=["canvas-users"])
    first = run_tap(config)
    version = emulator.schema_change(
        "canvas", "users",
        add_column={"name": "nickname", "schema": {"type": "string", "maxLength": 64}},
    )  # fmt: skip
    assert version == 2
    emulator.advance("canvas", "users", inserts=2)
    second = run_tap(config, state=first.final_state)
    assert second.sequence("canvas-users") == ["SCHEMA", "RECORD", "STATE"]
    schema = second.of_type("SCHEMA", "canvas-users")[-1]["schema"]
    assert schema["x-dap"]["version"] == 2
    assert schema["properties"]["nickname"] == {"type": ["string", "null"], "maxLength": 64}
    assert list(schema["properties"])[-3:] == ["nickname", "meta", "_sdc_deleted_at"]
    assert second.final_state["bookmarks"]["canvas-users"]["schema_version"] == 2


def test_reloaded_table_is_snapshotted_again_automatically(emulator, caplog) -> None:
    config = tap_config(emulator, tables=["accounts", "users"])
    first = run_tap(config)
    emulator.reload("canvas", "users")
    emulator.advance("canvas", "accounts", updates=1)
    with caplog.at_level("WARNING"):
        second = run_tap(config, state=first.final_state)
    assert second.error is None
    assert second.sequence("canvas-users") == [
        "SCHEMA", "ACTIVATE_VERSION", "RECORD", "ACTIVATE_VERSION", "STATE",
    ]  # fmt: skip
    assert len(second.records("canvas-users")) == 20
    assert second.sequence("canvas-accounts") == ["SCHEMA", "RECORD", "STATE"]
    assert "canvas-users: incremental query refused (SnapshotRequiredError" in caplog.text
    bookmarks = second.final_state["bookmarks"]
    assert bookmarks["canvas-users"]["timestamp"] > first.final_state["bookmarks"]["canvas-users"][
        "timestamp"
    ]


def test_reload_with_on_snapshot_required_fail_fails_only_that_stream(emulator) -> None:
    config = tap_config(emulator, tables=["accounts", "users"], on_snapshot_required="fail")
    first = run_tap(config)
    emulator.reload("canvas", "users")
    second = run_tap(config, state=first.final_state)
    assert isinstance(second.error, StreamsFailedError)
    failure = second.error.failures[0]
    assert str(second.error) == str(failure)
    assert str(failure).startswith("canvas-users: the server refused the incremental query")
    assert failure.error_type == "SnapshotRequired" and failure.error_uuid
    assert "on_snapshot_required is 'fail'" in str(failure)
    # the failed stream keeps its old bookmark; the other one advanced
    assert second.records("canvas-users") == []
    state = second.final_state["bookmarks"]
    assert state["canvas-users"] == first.final_state["bookmarks"]["canvas-users"]
    assert state["canvas-accounts"] != first.final_state["bookmarks"]["canvas-accounts"]


@pytest.mark.parametrize("mode", ["catalog_full_table", "start_mode_incremental"])
def test_replication_mode_settings(emulator, mode: str) -> None:
    if mode == "start_mode_incremental":
        ts = emulator.advance("canvas", "accounts", updates=3)
        config = tap_config(
            emulator, tables=["accounts"], start_mode="incremental", start_date=ts
        )
        run = run_tap(config)
        assert run.of_type("ACTIVATE_VERSION") == []
        assert len(run.records("canvas-accounts")) == 3
    else:
        config = tap_config(emulator, tables=["accounts"])
        first = run_tap(config)
        tap = first.tap
        assert tap is not None
        catalog = tap.catalog_dict
        catalog["streams"][0]["replication_method"] = "FULL_TABLE"
        from tap_dap.tap import TapDap  # a catalog asking for a snapshot on every run

        again = TapDap(config=config, state=first.final_state, catalog=catalog)
        assert again.streams["canvas-accounts"].table_request().since is None
