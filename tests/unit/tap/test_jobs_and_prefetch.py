"""Job scheduling and object prefetching, against an in-memory DAP stand-in."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from tap_dap.client import FailedJob, JobStatus, ProcessingError, RetryPolicy, TableJob
from tap_dap.errors import StreamSyncError
from tap_dap.job_queue import JobQueue
from tap_dap.jobs import JobScheduler, TableRequest
from tap_dap.output import RecordEncoder
from tap_dap.prefetch import (
    PrefetchCancelled,
    Prefetcher,
    restartable_blocks,
)
from tap_dap.rate import CreationRate
from tests.unit.tap.fake_dap import FakeSession, blocks_of_lines, lines, rate_limited

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


def test_first_429_caps_at_what_the_last_minute_sustained_and_honours_retry_after() -> None:
    rate = CreationRate(per_minute=None)
    for t in range(12):
        assert rate.delay(float(t)) == 0.0
        rate.record(float(t))
    assert rate.cap(11.0) is None  # no cap until the server objects
    rate.record(12.0)
    rate.throttled(12.0, retry_after=3.0)  # the 13th was refused: it leaves the window
    assert rate.cap(12.0) == 12  # the server accepted 12 in the last minute: no harder than that
    # the window holds 12 = cap, so the next slot is the earlier of: the oldest creation ageing
    # out (t=60), or the first quiet period raising the cap (t=27); Retry-After (t=15) is shorter
    assert rate.delay(12.0) == pytest.approx(15.0)
    assert rate.cap(27.0) == 13 and rate.delay(27.0) == 0.0


def test_continued_429s_lower_the_cap_by_a_quarter_down_to_the_published_floor() -> None:
    rate = CreationRate(per_minute=None)
    for t in range(12):
        rate.record(float(t))
    rate.record(12.0)
    rate.throttled(12.0, retry_after=1.0)
    caps = []
    for t in (13.0, 14.0, 15.0, 16.0):
        rate.record(t)
        rate.throttled(t, retry_after=None)
        caps.append(rate.cap(t))
    assert caps == [9, 6, 5, 5]  # 12 * 3/4, 9 * 3/4, then DAP's published 5/min
    assert rate.delay(16.0) == pytest.approx(30.0)  # no Retry-After: 30 s, like DAP's client


def test_the_rate_recovers_after_quiet_periods_without_429() -> None:
    rate = CreationRate(per_minute=None)
    rate.record(0.0)
    rate.throttled(0.0, retry_after=1.0)  # a 429 on the very first creation
    assert rate.cap(0.0) == 5  # nothing sustained yet: the published floor
    created = []
    now = 1.0
    while now < 181.0:  # three quiet minutes, creating as fast as the rate allows
        wait = rate.delay(now)
        if wait == 0.0:
            rate.record(now)
            created.append(now)
        else:
            now += wait
    assert rate.cap(180.0) == 5 + 12  # one more job/minute per 15 s quiet period
    per_minute = [sum(1 for t in created if m * 60 <= t < (m + 1) * 60) for m in range(3)]
    assert per_minute[0] >= 5 and per_minute[2] > per_minute[1] > per_minute[0]
    assert per_minute[2] >= 12  # well above the floor once the server stays quiet


def test_a_configured_rate_is_a_hard_cap_even_while_recovering() -> None:
    configured = CreationRate(per_minute=2)
    configured.record(0.0)
    configured.throttled(0.0, retry_after=0.0)
    assert configured.cap(0.0) == 2  # below the published floor because the user said so
    assert configured.cap(600.0) == 2  # quiet periods never raise it past the setting
    configured.record(1.0)
    configured.record(2.0)
    assert configured.delay(2.0) == pytest.approx(59.0)


def _encoder(obj: object) -> RecordEncoder:
    return RecordEncoder("s", version=None, where=str(obj))


def test_prefetch_keeps_stream_and_object_order_within_a_tiny_budget() -> None:
    data = {("s1", 0): lines(0, 3000), ("s1", 1): lines(3000, 10),
            ("s2", 0): lines(5000, 3000), ("s3", 0): lines(9000, 4000)}  # fmt: skip
    prefetcher = Prefetcher(lambda obj: blocks_of_lines(data[obj], 100), ["s1", "s2", "s3"],
                            workers=3, budget=64 * 1024)  # fmt: skip
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
            yield b"{broken\n"
        yield from blocks_of_lines(lines(0, 2))

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


def _joined(count: int) -> bytes:
    return b"".join(line + b"\n" for line in lines(0, count))


def test_blocks_of_lines_regroup_lines_exactly() -> None:
    blocks = list(blocks_of_lines(lines(0, 5), 2))
    assert [block.count(b"\n") for block in blocks] == [2, 2, 1]
    assert b"".join(blocks) == _joined(5)
    assert list(blocks_of_lines([])) == []


def test_restartable_blocks_resume_after_a_broken_transfer_with_other_block_cuts() -> None:
    from tap_dap.client import DownloadInterruptedError

    whole = _joined(6)
    cuts = [whole.index(b"\n", 0) + 1, whole.index(b'"id":3') - 8]  # after lines 1 and 3
    attempts = []

    def transfer():
        attempts.append(1)
        size = len(attempts)  # each copy arrives in other blocks: 1, 2, then 3 lines each
        blocks = list(blocks_of_lines(lines(0, 6), size))
        for i, block in enumerate(blocks):
            if len(attempts) < 3 and sum(map(len, blocks[: i + 1])) > cuts[len(attempts) - 1]:
                raise DownloadInterruptedError("connection reset", object_id="o")
            yield block

    received = list(restartable_blocks(transfer, "object o"))
    assert b"".join(received) == whole  # nothing twice, nothing lost
    assert all(block.endswith(b"\n") for block in received)
    assert len(attempts) == 3


def test_a_line_source_broken_inside_a_block_loses_and_repeats_nothing() -> None:
    from tap_dap.client import DownloadInterruptedError

    attempts = []

    def line_transfer():  # how the tap reads an object today: lines, regrouped into blocks
        attempts.append(1)
        for i, item in enumerate(lines(0, 10)):
            if len(attempts) == 1 and i == 7:  # inside the second block of three lines
                raise DownloadInterruptedError("connection reset", object_id="o")
            yield item

    received = list(restartable_blocks(lambda: blocks_of_lines(line_transfer(), 3), "object o"))
    assert b"".join(received) == _joined(10)
    assert len(attempts) == 2


def _result_within(jobs: JobScheduler, stream: str, seconds: float = 10.0):
    """``jobs.result(stream)`` in a thread: a regression to waiting forever fails, not hangs."""
    outcome: list = []

    def wait() -> None:
        try:
            outcome.append(jobs.result(stream))
        except StreamSyncError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"result({stream!r}) still waiting after {seconds} s"
    return outcome[0]


def test_an_unexpected_error_while_polling_fails_the_stream_instead_of_hanging() -> None:
    class BrokenPolls(FakeSession):
        def get_job(self, job_id: str):
            raise ValueError("unexpected job payload")

    jobs = scheduler(BrokenPolls({"a": [[]], "b": [[]]}),
                     [TableRequest("ns-a", "ns", "a", None), TableRequest("ns-b", "ns", "b", None)])
    outcomes = [_result_within(jobs, "ns-a"), _result_within(jobs, "ns-b")]
    jobs.close()
    assert [str(o) for o in outcomes] == [
        f"{stream}: polling the job failed: ValueError: unexpected job payload (job {job})"
        for stream, job in (("ns-a", "job-1"), ("ns-b", "job-2"))
    ]


def test_a_dead_scheduler_thread_fails_every_waiting_stream() -> None:
    def broken_poll_wait(interval):
        raise RuntimeError("bug in the poller")

    requests = [TableRequest("ns-a", "ns", "a", None), TableRequest("ns-b", "ns", "b", None)]
    jobs = JobScheduler(FakeSession({"a": [[]], "b": [[]]}), requests,
                        max_concurrent_jobs=10, max_jobs_per_minute=None, poll_interval=0.01,
                        job_timeout=30, resnapshot_on_refusal=True)  # fmt: skip
    jobs._jobs.jobs_to_poll = broken_poll_wait  # type: ignore[method-assign]
    jobs.start()
    outcomes = [_result_within(jobs, "ns-a"), _result_within(jobs, "ns-b")]
    jobs.close()
    assert [str(o) for o in outcomes] == [
        f"{s}: job scheduling stopped: RuntimeError: bug in the poller" for s in ("ns-a", "ns-b")
    ]


def test_a_terminal_job_is_claimed_by_exactly_one_thread() -> None:
    queue = JobQueue([TableRequest(f"ns-{i}", "ns", str(i), None) for i in range(200)])
    rate = CreationRate(None)
    entries = [queue.next_to_create(rate, 1000) for _ in range(200)]
    for i, entry in enumerate(entries):
        queue.started(entry, f"job-{i}")
    wins: list[str] = []
    start = threading.Barrier(4)

    def contend() -> None:
        start.wait()
        for i, entry in enumerate(entries):
            if queue.claim(entry, f"job-{i}"):
                wins.append(f"job-{i}")

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == sorted(f"job-{i}" for i in range(200))  # each exactly once


def test_a_failed_job_seen_by_creator_and_poller_is_counted_once() -> None:
    class FailsAtOnce(FakeSession):
        """Answers the query with a failed job, and every poll with the same failed job."""

        def _query(self, table: str, query) -> TableJob:
            super()._query(table, query)
            return self.get_job(f"job-{len(self._jobs)}")

        def get_job(self, job_id: str) -> TableJob:
            self.calls.append(("get_job", job_id))
            time.sleep(0.01)  # widen the window in which both threads hold the same answer
            error = ProcessingError("ProcessingError", "u-9", "boom")
            return FailedJob(job_id, JobStatus.Failed, error=error)

    session = FailsAtOnce({"a": [[]]})
    jobs = scheduler(session, [TableRequest("ns-a", "ns", "a", None)], poll_interval=0.001)
    outcome = _result_within(jobs, "ns-a")
    jobs.close()
    assert isinstance(outcome, StreamSyncError) and outcome.error_uuid == "u-9"
    # one job per attempt: never re-created twice for one failure, never failed early
    assert [c for c in session.calls if c[0] == "snapshot"] == [("snapshot", "a")] * 3


def test_restarts_without_progress_last_the_retry_budget_and_progress_resets_it() -> None:
    from tap_dap.client import DownloadInterruptedError

    quick = RetryPolicy(max_time=0.5, base_delay=0.05, max_delay=0.1)
    attempts: list[float] = []

    def stalls():
        attempts.append(time.monotonic())
        yield from blocks_of_lines(lines(0, 1))
        raise DownloadInterruptedError("reset", object_id="o")

    with pytest.raises(DownloadInterruptedError) as info:
        list(restartable_blocks(stalls, "object o", policy=quick))
    # restarted with waits (not 3 times in a few ms) until the budget was spent, then one error
    assert 0.5 <= attempts[-1] - attempts[0] < 1.0
    assert 4 <= len(attempts) <= 11
    assert str(info.value).endswith(
        f"(gave up after {len(attempts)} attempts in {info.value.elapsed:.1f} s: the retry "
        "budget of 0.5 s is spent)")

    breaks = []

    def one_more_each_time():  # breaks 20 times, each time one line further
        breaks.append(1)
        yield from blocks_of_lines(lines(0, len(breaks)), 1)
        if len(breaks) <= 20:
            raise DownloadInterruptedError("reset", object_id="o")

    tight = RetryPolicy(max_time=0.2, base_delay=0.02, max_delay=0.02)
    received = list(restartable_blocks(one_more_each_time, "object o", policy=tight))
    assert b"".join(received) == _joined(21)  # 20 breaks × 0.02 s > the budget: progress resets


def test_a_cancelled_prefetch_is_an_error_never_a_complete_object() -> None:
    claimed, release = threading.Event(), threading.Event()

    def source(obj: str):
        claimed.set()
        release.wait(5)
        yield from blocks_of_lines(lines(0, 3))

    prefetcher = Prefetcher(source, ["s"], workers=1, budget=1 << 20)
    prefetcher.add("s", ["o"], _encoder)
    assert claimed.wait(5)  # a worker owns the object, the writer will drain its queue
    prefetcher.close()
    release.set()
    with pytest.raises(PrefetchCancelled, match="o: prefetch stopped before the object was"):
        list(prefetcher.chunks("s"))


def test_young_jobs_are_polled_sooner_within_the_rate_cap() -> None:
    from tap_dap.jobs import MAX_POLLS_PER_SECOND, MIN_POLL_SECONDS, poll_wait

    assert poll_wait(5.0, 1, 0.0) == MIN_POLL_SECONDS  # just created: soon
    assert poll_wait(5.0, 1, 8.0) == 2.0  # a quarter of its age
    assert poll_wait(5.0, 1, 600.0) == 5.0  # never beyond poll_interval
    assert poll_wait(0.05, 0, 0.0) == 0.05  # a shorter poll_interval still wins
    assert poll_wait(5.0, 60, 0.0) == 60 / MAX_POLLS_PER_SECOND  # 60 jobs: ≤6 polls/s in all
