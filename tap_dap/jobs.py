"""Query-job scheduling: every selected table's job is created up front and polled together.

DAP jobs take seconds to minutes on the server. Creating them one table at a time (as the official
client does) makes a 90-table sync wait for 90 job latencies in a row; here they overlap, limited by
``max_concurrent_jobs`` (jobs waiting/running on the server) and the job-creation rate, which starts
uncapped (or at ``max_jobs_per_minute``), is capped when the server answers 429 and recovers
while it stays quiet (see tap_dap.rate).

Jobs are created with a retry policy that hands a 429 back at once: the client would otherwise
sleep on it inside the single creator thread (up to its whole retry budget), and the scheduler
would never learn that it should slow down. Both threads are guarded: whatever goes wrong in them
ends as an error of the affected stream(s), never as a writer waiting forever.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from tap_dap.client import (
    JOB_EXPIRY_MARGIN,
    AccountDisabledError,
    AccountNotOnboardedError,
    AccountUnderMaintenanceError,
    AuthenticationError,
    CompleteIncrementalJob,
    CompleteJob,
    CompleteSnapshotJob,
    DAPClientError,
    FailedJob,
    Format,
    IncrementalQuery,
    JobStatus,
    Mode,
    OutOfRangeError,
    SnapshotQuery,
    TableJob,
    format_timestamp,
    is_transient,
)
from tap_dap.errors import StreamSyncError
from tap_dap.job_queue import JobEntry, JobQueue, ReadyJob, TableRequest
from tap_dap.rate import CreationRate

__all__ = ["JobScheduler", "ReadyJob", "TableRequest"]

logger = logging.getLogger("tap-dap.jobs")

#: Errors about the account or credentials: every other table would fail the same way.
ACCOUNT_ERRORS = (
    AuthenticationError,
    AccountDisabledError,
    AccountNotOnboardedError,
    AccountUnderMaintenanceError,
)
#: Failed jobs are re-created this many times (DAP reports transient failures as failed jobs).
FAILED_JOB_ATTEMPTS = 3
#: A query answered again and again with a job about to expire fails after this many re-issues.
MAX_EXPIRY_REQUERIES = 3
#: get_job is limited to 500/min by DAP; stay well below (360/min) with many jobs in flight.
MAX_POLLS_PER_SECOND = 6.0
#: Most jobs (small tables) finish within seconds: a young job is polled again after a quarter of
#: its age, at least this long and at most `poll_interval` (5 s) apart, so a job done in 3 s is
#: picked up within ~1 s instead of at the next 5 s poll.
MIN_POLL_SECONDS = 0.5
#: How often a waiting writer checks that the scheduler threads are alive.
LIVENESS_CHECK_SECONDS = 1.0
#: Beyond job_timeout, how long the writer trusts the poller to report a timeout itself.
TIMEOUT_GRACE_SECONDS = 60.0


def poll_wait(poll_interval: float, running: int, youngest_age: float) -> float:
    """Seconds until the next round of job polls (every running job is polled each round)."""
    soon = max(MIN_POLL_SECONDS, youngest_age / 4)
    return max(min(poll_interval, soon), running / MAX_POLLS_PER_SECOND)


class JobScheduler:
    """Creates, polls and hands out the jobs of many tables; thread-safe; one per tap run."""

    def __init__(
        self,
        session: Any,
        requests: Sequence[TableRequest],
        *,
        max_concurrent_jobs: int,
        max_jobs_per_minute: int | None,
        poll_interval: float,
        job_timeout: float,
        resnapshot_on_refusal: bool,
        on_ready: Callable[[ReadyJob], None] | None = None,
        query_format: Format = Format.JSONL,
    ) -> None:
        self._session = session
        self._jobs = JobQueue(requests)
        self._max_running = max_concurrent_jobs
        retry = session.settings.retry
        self.rate = CreationRate(max_jobs_per_minute, max_pause=retry.max_retry_after)
        self._create_retry = dataclasses.replace(retry, retry_throttled=False)
        self._poll_interval = poll_interval
        self._job_timeout = job_timeout
        self._resnapshot = resnapshot_on_refusal
        self._format = query_format
        self._on_ready = on_ready
        self._threads = [
            threading.Thread(target=self._guarded, args=(self._create_loop,), daemon=True,
                             name="dap-job-creator"),
            threading.Thread(target=self._guarded, args=(self._poll_loop,), daemon=True,
                             name="dap-job-poller"),
        ]  # fmt: skip

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._jobs.close()

    def __contains__(self, stream_name: str) -> bool:
        return stream_name in self._jobs.entries

    def add(self, request: TableRequest) -> None:
        """Schedule one more table (a stream selected after the run started)."""
        self._jobs.add(request)

    def result(self, stream_name: str) -> ReadyJob:
        """Wait until the stream's job is complete; raise its StreamSyncError if it failed.

        Never waits forever: a dead scheduler thread, a closed scheduler or a job far beyond
        job_timeout ends the wait with an error.
        """
        entry = self._jobs.entries[stream_name]
        while not entry.done.wait(LIVENESS_CHECK_SECONDS):
            problem = self._stall(entry)
            if problem is not None:
                self._jobs.finish(entry, error=StreamSyncError(entry.name, problem))
        if entry.error is not None:
            raise entry.error
        assert entry.ready is not None
        return entry.ready

    def reissue(self, stream_name: str, *, delay: float) -> None:
        """Query the stream's table again after ``delay`` s (its job became unusable)."""
        self._jobs.reopen(self._jobs.entries[stream_name], delay=delay)

    def _stall(self, entry: JobEntry) -> str | None:
        if self._jobs.closed:
            return "job scheduling was shut down before the job completed"
        dead = [t.name for t in self._threads if t.ident is not None and not t.is_alive()]
        if dead:
            return f"job scheduling stopped ({', '.join(dead)} ended); see the errors above"
        if entry.job_id and entry.created_at:
            waited = time.monotonic() - entry.created_at
            if waited > self._job_timeout + TIMEOUT_GRACE_SECONDS:
                return (
                    f"{entry.kind} job {entry.job_id} did not complete within "
                    f"job_timeout={self._job_timeout:.0f} s"
                )
        return None

    def _guarded(self, loop: Callable[[], None]) -> None:
        """Run a thread's loop; if it dies, every stream still waiting fails instead of hanging."""
        try:
            loop()
        except BaseException as exc:
            logger.exception("%s stopped unexpectedly", threading.current_thread().name)
            reason = f"job scheduling stopped: {type(exc).__name__}: {exc}"
            self._jobs.fail_unfinished(lambda e: StreamSyncError(e.name, reason))

    # -- creation -------------------------------------------------------------------------------

    def _create_loop(self) -> None:
        while (entry := self._jobs.next_to_create(self.rate, self._max_running)) is not None:
            try:
                self._create(entry)
            except Exception as exc:  # an unexpected answer or a bug: this stream fails only
                logger.exception("%s: creating the job failed unexpectedly", entry.name)
                self._fail(entry, StreamSyncError.from_exception(
                    entry.name, exc, what=f"creating the {entry.kind} job failed"
                ))  # fmt: skip

    def _create(self, entry: JobEntry) -> None:
        request = entry.request
        try:
            job = self._submit(entry)
        except OutOfRangeError as exc:  # includes SnapshotRequiredError
            self._refused(entry, exc)
            return
        except DAPClientError as exc:
            if exc.status == 429:
                self.rate.throttled(time.monotonic(), exc.retry_after)
                self._jobs.requeue(entry, delay=0.0)
                return
            what = f"creating the {entry.kind} job failed"
            self._fail(entry, StreamSyncError.from_exception(entry.name, exc, what=what))
            if isinstance(exc, ACCOUNT_ERRORS):  # every other table would fail the same way
                self._jobs.fail_unfinished(
                    lambda e, cause=exc: StreamSyncError.from_exception(
                        e.name, cause, what="not attempted"
                    ),
                    queued_only=True,
                )
            return
        self._jobs.started(entry, job.id)
        since = "" if request.since is None else f" (since {format_timestamp(request.since)})"
        logger.info("%s: %s job %s started%s", entry.name, entry.kind, job.id, since)
        self._observe(entry, job)

    def _submit(self, entry: JobEntry) -> TableJob:
        request = entry.request
        if entry.snapshot:
            query = SnapshotQuery(format=self._format, mode=Mode.CONDENSED)
            return self._session.query_snapshot(  # type: ignore[no-any-return]
                request.namespace, request.table, query, retry=self._create_retry
            )
        incremental = IncrementalQuery(
            format=self._format, mode=Mode.CONDENSED, since=request.since, until=None
        )
        return self._session.query_incremental(  # type: ignore[no-any-return]
            request.namespace, request.table, incremental, retry=self._create_retry
        )

    def _refused(self, entry: JobEntry, exc: OutOfRangeError) -> None:
        if entry.snapshot or not self._resnapshot:
            hint = "" if entry.snapshot else " and on_snapshot_required is 'fail'"
            what = f"the server refused the {entry.kind} query{hint}"
            self._fail(entry, StreamSyncError.from_exception(entry.name, exc, what=what))
            return
        logger.warning(
            "%s: incremental query refused (%s: %s, uuid %s); taking a new snapshot of the table",
            entry.name, type(exc).__name__, exc.message or "no message", exc.uuid,
        )  # fmt: skip
        entry.snapshot = entry.fell_back = True
        self._jobs.requeue(entry, delay=0.0)

    # -- polling --------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        def interval(running: int, youngest_age: float) -> float:
            return poll_wait(self._poll_interval, running, youngest_age)

        while (polled := self._jobs.jobs_to_poll(interval)) is not None:
            for entry, job_id in polled:
                try:
                    self._poll(entry, job_id)
                except Exception as exc:  # an unexpected answer or a bug: this stream fails only
                    logger.exception("%s: polling job %s failed unexpectedly", entry.name, job_id)
                    if self._jobs.claim(entry, job_id):
                        self._fail(entry, StreamSyncError.from_exception(
                            entry.name, exc, what="polling the job failed", job_id=job_id
                        ))  # fmt: skip

    def _poll(self, entry: JobEntry, job_id: str) -> None:
        if time.monotonic() - entry.created_at > self._job_timeout:
            if self._jobs.claim(entry, job_id):
                limit = f"job_timeout={self._job_timeout:.0f} s"
                self._fail(entry, StreamSyncError(
                    entry.name, f"{entry.kind} job did not complete within {limit}", job_id=job_id
                ))  # fmt: skip
            return
        try:
            job = self._session.get_job(job_id)
        except DAPClientError as exc:
            if is_transient(exc):
                logger.warning(
                    "%s: polling job %s failed (%s); will poll again", entry.name, job_id, exc
                )
                return  # the client already retried; the job itself may be fine
            if self._jobs.claim(entry, job_id):
                self._fail(entry, StreamSyncError.from_exception(
                    entry.name, exc, what="polling the job failed", job_id=job_id
                ))  # fmt: skip
            return
        self._observe(entry, job)

    def _observe(self, entry: JobEntry, job: TableJob) -> None:
        """Act on a terminal job, once: the creator and the poller may both see it."""
        failed = isinstance(job, FailedJob) or job.status is JobStatus.Failed
        if not (isinstance(job, CompleteJob) or failed):
            return
        if not self._jobs.claim(entry, job.id):
            return
        if isinstance(job, CompleteJob):
            self._completed(entry, job)
        else:
            self._job_failed(entry, job)

    def _completed(self, entry: JobEntry, job: CompleteJob) -> None:
        name = entry.name
        if job.expires_within(JOB_EXPIRY_MARGIN):
            entry.expiry_requeries += 1
            left = job.seconds_to_expiry() or 0.0
            if entry.expiry_requeries > MAX_EXPIRY_REQUERIES:
                self._fail(entry, StreamSyncError(
                    name, f"the query kept returning jobs about to expire ({left:.0f} s left)",
                    job_id=job.id,
                ))  # fmt: skip
                return
            logger.warning(
                "%s: job %s is cached and expires in %.0f s; re-issuing the query then",
                name, job.id, left,
            )  # fmt: skip
            self._jobs.requeue(entry, delay=job.requery_delay())
            return
        if isinstance(job, CompleteSnapshotJob):
            timestamp, window = job.at, f"at {format_timestamp(job.at)}"
        elif isinstance(job, CompleteIncrementalJob):
            timestamp = job.until
            window = f"since {format_timestamp(job.since)} until {format_timestamp(job.until)}"
        else:
            reason = "completed job has neither 'at' nor 'until'"
            self._fail(entry, StreamSyncError(name, reason, job_id=job.id))
            return
        logger.info(
            "%s: %s job %s complete: %d object(s), schema version %d, %s",
            name, entry.kind, job.id, len(job.objects), job.schema_version, window,
        )  # fmt: skip
        ready = ReadyJob(
            request=entry.request,
            job=job,
            is_snapshot=isinstance(job, CompleteSnapshotJob),
            timestamp=timestamp,
            fell_back_to_snapshot=entry.fell_back,
        )
        if self._jobs.finish(entry, ready=ready) and self._on_ready is not None:
            try:
                self._on_ready(ready)
            except Exception:  # the writer registers the job itself when it gets there
                logger.exception("%s: could not start prefetching job %s", name, job.id)

    def _job_failed(self, entry: JobEntry, job: TableJob) -> None:
        error = job.error if isinstance(job, FailedJob) else None
        if isinstance(error, OutOfRangeError) and not entry.snapshot and self._resnapshot:
            logger.warning(
                "%s: incremental job %s failed with %s (uuid %s); taking a new snapshot",
                entry.name, job.id, error.type, error.uuid,
            )  # fmt: skip
            entry.snapshot = entry.fell_back = True
            self._jobs.requeue(entry, delay=0.0)
            return
        entry.failed_jobs += 1
        failure = StreamSyncError(
            entry.name,
            f"{entry.kind} job failed: {(error.message if error else '') or 'no message'}",
            job_id=job.id,
            error_type=error.type if error else None,
            error_uuid=error.uuid if error else None,
        )
        if entry.failed_jobs < FAILED_JOB_ATTEMPTS:
            logger.warning(
                "%s; re-creating the job (attempt %d of %d)",
                failure, entry.failed_jobs + 1, FAILED_JOB_ATTEMPTS,
            )  # fmt: skip
            self._jobs.requeue(entry, delay=min(60.0, self._poll_interval * 2**entry.failed_jobs))
            return
        self._fail(entry, failure)

    def _fail(self, entry: JobEntry, error: StreamSyncError) -> None:
        if self._jobs.finish(entry, error=error):
            logger.error("%s", error)
            error.logged = True
