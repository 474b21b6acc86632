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


def test_a_job_about_to_expire_when_its_turn_comes_is_queried_again(monkeypatch) -> None:
    # Jobs are created up front and may be read hours later. Here the scheduler accepts the
    # first job (no margin), but by the time the stream is written it expires within the margin.
    monkeypatch.setattr("tap_dap.jobs.JOB_EXPIRY_MARGIN", 0.0)
    monkeypatch.setattr("tap_dap.client.types.REQUERY_DELAY_AFTER_EXPIRY", 0.0)
    fake = FakeSession({"a": [lines(0, 40)]})
    fake.expires_in = [0.5]  # the first job; the re-issued one lives long
    messages, error = run(fake)
    assert error is None
    assert [c for c in fake.calls if c[0] == "snapshot"] == [("snapshot", "a")] * 2
    records = [m for m in messages if m["type"] == "RECORD"]
    assert [r["record"]["id"] for r in records] == list(range(40))  # the first job's never
    assert [m["type"] for m in messages] == (
        ["SCHEMA", "ACTIVATE_VERSION"] + ["RECORD"] * 40 + ["ACTIVATE_VERSION", "STATE"]
    )


def test_canvas_logs_snapshots_have_no_activate_version_and_unversioned_records() -> None:
    messages, error = run(FakeSession({"web_logs": [lines(0, 3)]}),
                          namespaces=["canvas", "canvas_logs"])  # fmt: skip
    assert error is None
    by_stream: dict[str, list] = {}
    current = None
    for m in messages:  # a STATE belongs to the stream written before it
        current = m.get("stream", current)
        by_stream.setdefault(current, []).append(m)
    assert [m["type"] for m in by_stream["canvas_logs-web_logs"]] == [
        "SCHEMA", "RECORD", "RECORD", "RECORD", "STATE",
    ]  # fmt: skip
    assert all("version" not in m for m in by_stream["canvas_logs-web_logs"][1:-1])
    canvas = by_stream["canvas-web_logs"]
    assert [m["type"] for m in canvas] == [
        "SCHEMA", "ACTIVATE_VERSION", "RECORD", "RECORD", "RECORD", "ACTIVATE_VERSION", "STATE",
    ]  # fmt: skip
    # ACTIVATE_VERSIONs and RECORDs carry the run's one snapshot version
    assert len({m["version"] for m in canvas[1:-1]}) == 1


def test_the_bookmark_names_the_schema_version_that_was_sent() -> None:
    fake = FakeSession({"a": [lines(0, 2)]})
    fake.schema_versions = [1, 3]  # discovery sees 1; when the data is written the server has 3
    fake.job_schema_version = 2  # the job ran between two schema changes
    messages, error = run(fake)
    assert error is None
    schemas = [m["schema"]["x-dap"]["version"] for m in messages if m["type"] == "SCHEMA"]
    assert schemas == [1, 3]
    (state,) = [m["value"] for m in messages if m["type"] == "STATE"]
    assert state["bookmarks"]["canvas-a"]["schema_version"] == 3
