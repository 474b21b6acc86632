"""Job scheduling and object prefetching, against an in-memory DAP stand-in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tap_dap.errors import StreamSyncError
from tap_dap.jobs import JobScheduler, TableRequest
from tap_dap.output import RecordEncoder
from tap_dap.prefetch import Prefetcher, restartable_lines
from tap_dap.rate import CreationRate
from tests.unit.tap.fake_dap import FakeSession, lines, rate_limited

SINCE = datetime(2024, 1, 1, tzinfo=UTC)


def scheduler(session: FakeSession, requests: list[TableRequest], **kw) -> JobScheduler:
    options = {"max_concurrent_jobs": 10, "max_jobs_per_minute": None, "poll_interval": 0.01,
               "job_timeout": 30, "resnapshot_on_refusal": True, **kw}  # fmt: skip
    jobs = JobScheduler(session, requests, **options)
    jobs.start()
    return jobs


def test_all_jobs_are_created_before_any_completes() -> None:
    session = FakeSession({t: [[]] for t in "abcd"}, polls=2)
    requests = [TableRequest(f"ns-{t}", "ns", t, None) for t in "abcd"]
    jobs = scheduler(session, requests)
    ready = [jobs.result(r.stream_name) for r in requests]
    jobs.close()
    assert [r.is_snapshot for r in ready] == [True] * 4
    first_poll = next(i for i, call in enumerate(session.calls) if call[0] == "get_job")
    assert session.calls[:first_poll] == [("snapshot", t) for t in "abcd"]


def test_refused_incremental_falls_back_to_a_snapshot_or_fails() -> None:
    session = FakeSession({"a": [[]], "b": [[]]})
    session.refuse_incremental = {"a"}
    requests = [TableRequest("ns-a", "ns", "a", SINCE), TableRequest("ns-b", "ns", "b", SINCE)]
    jobs = scheduler(session, requests)
    a, b = jobs.result("ns-a"), jobs.result("ns-b")
    jobs.close()
    assert (a.is_snapshot, a.fell_back_to_snapshot, b.is_snapshot) == (True, True, False)
    assert ("incremental", "a") in session.calls and ("snapshot", "a") in session.calls

    strict = scheduler(session, [TableRequest("ns-a", "ns", "a", SINCE)],
                       resnapshot_on_refusal=False)  # fmt: skip
    with pytest.raises(StreamSyncError) as info:
        strict.result("ns-a")
    strict.close()
    assert info.value.error_type == "SnapshotRequired" and info.value.error_uuid == "u-1"


def test_a_429_pauses_creation_and_lowers_the_rate() -> None:
    session = FakeSession({"a": [[]], "b": [[]]})
    session.query_errors = [rate_limited(0.2)]
    jobs = scheduler(session, [TableRequest("ns-a", "ns", "a", None),
                               TableRequest("ns-b", "ns", "b", None)])  # fmt: skip
    assert jobs.result("ns-a").is_snapshot and jobs.result("ns-b").is_snapshot
    jobs.close()
    assert [c for c in session.calls if c[0] == "snapshot"] == [
        ("snapshot", "a"), ("snapshot", "a"), ("snapshot", "b"),
    ]  # fmt: skip


def test_creation_rate_window_and_adaptation() -> None:
    rate = CreationRate(per_minute=None)
    for t in range(12):
        assert rate.delay(float(t)) == 0.0
        rate.record(float(t))
    rate.throttled(12.0, retry_after=10.0)
    assert rate.per_minute == 9  # three quarters of the 12 the last minute sustained
    assert rate.delay(12.0) == pytest.approx(60.0 - 12.0)  # window holds 12 > 9 until t=60
    rate.throttled(70.0, retry_after=None)
    assert rate.per_minute == 5  # DAP's published limit is the floor
    assert rate.delay(70.0) == pytest.approx(30.0)  # no Retry-After: 30 s, like DAP's client

    configured = CreationRate(per_minute=2)
    configured.throttled(0.0, retry_after=0.0)
    assert configured.per_minute == 2


def _encoder(obj: object) -> RecordEncoder:
    return RecordEncoder("s", version=None, where=str(obj))


def test_prefetch_keeps_stream_and_object_order_within_a_tiny_budget() -> None:
    data = {("s1", 0): lines(0, 3000), ("s1", 1): lines(3000, 10),
            ("s2", 0): lines(5000, 3000), ("s3", 0): lines(9000, 4000)}  # fmt: skip
    prefetcher = Prefetcher(lambda obj: iter(data[obj]), ["s1", "s2", "s3"], workers=3,
                            budget=64 * 1024)  # fmt: skip
    for stream in ("s3", "s2", "s1"):  # jobs complete out of order
        prefetcher.add(stream, [k for k in data if k[0] == stream], _encoder)
    seen = []
    for stream in ("s1", "s2", "s3"):
        for chunk, count in prefetcher.chunks(stream):
            assert chunk.count(b"\n") == count
            seen += [int(part.split(b'"id":')[1].split(b",")[0]) for part in chunk.splitlines()]
    prefetcher.close()
    assert seen == list(range(3010)) + list(range(5000, 8000)) + list(range(9000, 13000))


def test_an_object_error_surfaces_in_order_and_discard_frees_the_stream() -> None:
    def source(obj: str):
        if obj == "bad":
            yield b"{broken"
        yield from lines(0, 2)

    prefetcher = Prefetcher(source, ["s1", "s2"], workers=2, budget=1 << 20)
    prefetcher.add("s1", ["good", "bad"], _encoder)
    prefetcher.add("s2", ["good"], _encoder)
    received = []
    with pytest.raises(Exception) as info:
        for _chunk, count in prefetcher.chunks("s1"):
            received.append(count)
    assert received == [2]
    assert "bad, line 1: malformed DAP record" in str(info.value)
    prefetcher.discard("s1")
    assert [count for _, count in prefetcher.chunks("s2")] == [2]
    prefetcher.close()


def test_restartable_lines_resume_after_a_broken_transfer() -> None:
    from tap_dap.client import DownloadInterruptedError

    attempts = []

    def transfer():
        attempts.append(1)
        for i, item in enumerate(lines(0, 5)):
            if len(attempts) < 3 and i == len(attempts) * 2:
                raise DownloadInterruptedError("connection reset", object_id="o")
            yield item

    assert list(restartable_lines(transfer, "object o")) == lines(0, 5)
    assert len(attempts) == 3
