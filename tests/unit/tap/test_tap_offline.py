"""Whole-tap runs against the in-memory DAP stand-in, for what the emulator cannot be made to do."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

from tap_dap.errors import StreamsFailedError, TapDapError
from tap_dap.tap import TapDap
from tests.unit.tap.fake_dap import FakeSession, line, lines

CONFIG = {"client_id": "id", "client_secret": "secret", "poll_interval": 0.01}


class OfflineTap(TapDap):
    fake: FakeSession

    @property
    def session(self) -> Any:
        return self.fake


def run(fake: FakeSession, state: dict | None = None, **config: Any):
    OfflineTap.fake = fake
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    error = None
    with redirect_stdout(out):
        try:
            OfflineTap(config={**CONFIG, **config}, state=state or {}).sync_and_check()
        except TapDapError as exc:
            error = exc
        out.flush()
    messages = [json.loads(m) for m in out.buffer.getvalue().splitlines()]  # type: ignore[attr-defined]
    return messages, error


def test_malformed_object_line_fails_its_stream_only_and_keeps_its_bookmark() -> None:
    fake = FakeSession({
        "a": [lines(0, 3)],
        "b": [lines(0, 2), [line(2), b'{"key":{"id":3},"meta":', line(4)]],
        "c": [lines(0, 1)],
    })  # fmt: skip
    state = {"bookmarks": {"canvas-b": {"timestamp": "2024-01-01T00:00:00.000000Z",
                                        "schema_version": 1}}}  # fmt: skip
    messages, error = run(fake, state)
    assert isinstance(error, StreamsFailedError)
    assert len(error.failures) == 1
    assert str(error) == str(error.failures[0])
    assert str(error).startswith(
        "canvas-b: MalformedDataError: canvas.b: object job-2/part-1 of job job-2, line 2: "
        "malformed DAP record: "
    )
    assert str(error).endswith("(job job-2)")
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert states[-1]["bookmarks"]["canvas-b"] == state["bookmarks"]["canvas-b"]
    assert set(states[-1]["bookmarks"]) == {"canvas-a", "canvas-b", "canvas-c"}
    # the first object went out (a target re-applies it next run); nothing of the bad one's
    # chunk did; then stream c went on
    b_ids = [m["record"]["id"] for m in messages if m.get("stream") == "canvas-b"
             and m["type"] == "RECORD"]  # fmt: skip
    assert b_ids == [0, 1]
    assert [m["type"] for m in messages if m.get("stream") == "canvas-c"] == [
        "SCHEMA", "ACTIVATE_VERSION", "RECORD", "ACTIVATE_VERSION",
    ]  # fmt: skip


def test_dry_run_record_limit_stops_without_bookmark_or_final_activate_version() -> None:
    fake = FakeSession({"a": [lines(0, 3000), lines(3000, 3000)]})
    OfflineTap.fake = fake
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(out):
        tap = OfflineTap(config=CONFIG)
        tap.run_sync_dry_run(dry_run_record_limit=2500)
        out.flush()
    messages = [json.loads(m) for m in out.buffer.getvalue().splitlines()]  # type: ignore[attr-defined]
    kinds = [m["type"] for m in messages]
    assert kinds.count("RECORD") == 2500
    assert kinds.count("ACTIVATE_VERSION") == 1 and "STATE" not in kinds
