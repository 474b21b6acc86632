"""Query-job scheduling: every selected table's job is created up front and polled together.

DAP jobs take seconds to minutes on the server. Creating them one table at a time (as the official
client does) makes a 90-table sync wait for 90 job latencies in a row; here they overlap, limited by
``max_concurrent_jobs`` (jobs waiting/running on the server) and the job-creation rate, which starts
uncapped (or at ``max_jobs_per_minute``) and is lowered whenever the server answers 429.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tap_dap.client import (
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
    NetworkError,
    OperationError,
    OutOfRangeError,
    SnapshotQuery,
    TableJob,
)
from tap_dap.errors import StreamSyncError
from tap_dap.rate import CreationRate
from tap_dap.timestamps import format_timestamp

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
#: A completed job this close to expiry cannot be downloaded safely; it is re-issued after expiry.
EXPIRY_MARGIN_SECONDS = 60.0
#: get_job is limited to 500/min by DAP; stay well below (360/min) with many jobs in flight.
MAX_POLLS_PER_SECOND = 6.0


@dataclass(frozen=True)
class TableRequest:
    """What to query for one stream: a snapshot (``since`` None) or changes since ``since``."""

    stream_name: str
    namespace: str
    table: str
    since: datetime | None


@dataclass(frozen=True)
class ReadyJob:
    """A completed job whose objects can be downloaded."""

    request: TableRequest
    job: CompleteJob
    is_snapshot: bool
    timestamp: datetime  # snapshot `at` / incremental `until`: the next bookmark
    fell_back_to_snapshot: bool

    @property
    def schema_version(self) -> int:
        return self.job.schema_version


@dataclass
class _Entry:
    request: TableRequest
    snapshot: bool
    fell_back: bool = False
    job_id: str | None = None
    created_at: float = 0.0
    not_before: float = 0.0
    failed_jobs: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    ready: ReadyJob | None = None
    error: StreamSyncError | None = None

    @property
    def kind(self) -> str:
        return "snapshot" if self.snapshot else "incremental"


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
        self._entries = {r.stream_name: _Entry(r, snapshot=r.since is None) for r in requests}
        self._queue: deque[_Entry] = deque(self._entries.values())
        self._running: list[_Entry] = []
        self._max_running = max_concurrent_jobs
        self._rate = CreationRate(max_jobs_per_minute)
        self._poll_interval = poll_interval
        self._job_timeout = job_timeout
        self._resnapshot = resnapshot_on_refusal
        self._format = query_format
        self._on_ready = on_ready
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._create_loop, name="dap-job-creator", daemon=True),
            threading.Thread(target=self._poll_loop, name="dap-job-poller", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __contains__(self, stream_name: str) -> bool:
        return stream_name in self._entries

    def add(self, request: TableRequest) -> None:
        """Schedule one more table (a stream selected after the run started)."""
        with self._cond:
            if request.stream_name in self._entries:
                return
            entry = _Entry(request, snapshot=request.since is None)
            self._entries[request.stream_name] = entry
            self._queue.append(entry)
            self._cond.notify_all()

    def result(self, stream_name: str) -> ReadyJob:
        """Block until the stream's job is complete; raise its StreamSyncError if it failed."""
        entry = self._entries[stream_name]
        entry.done.wait()
        if entry.error is not None:
            raise entry.error
        assert entry.ready is not None
        return entry.ready

    def is_ready(self, stream_name: str) -> bool:
        entry = self._entries[stream_name]
        return entry.done.is_set() and entry.ready is not None

    # -- creation -------------------------------------------------------------------------------

    def _create_loop(self) -> None:
        while True:
            with self._cond:
                entry = self._next_to_create()
                if entry is None:
                    return
            self._create(entry)

    def _next_to_create(self) -> _Entry | None:
        """Wait (holding the condition) for a free slot, the rate and a due entry."""
        while not self._closed:
            now = time.monotonic()
            wait = self._rate.delay(now)
            if not self._queue:
                self._cond.wait()
                continue
            if len(self._running) < self._max_running and wait == 0.0:
                due = next((e for e in self._queue if e.not_before <= now), None)
                if due is not None:
                    self._queue.remove(due)
                    self._running.append(due)  # holds a slot from creation on
                    self._rate.record(now)
                    return due
                wait = min(e.not_before for e in self._queue) - now
            self._cond.wait(timeout=wait if wait > 0 else None)
        return None

    def _create(self, entry: _Entry) -> None:
        request = entry.request
        try:
            if entry.snapshot:
                job = self._session.query_snapshot(
                    request.namespace,
                    request.table,
                    SnapshotQuery(format=self._format, mode=Mode.CONDENSED),
                )
            else:
                query = IncrementalQuery(
                    format=self._format, mode=Mode.CONDENSED, since=request.since, until=None
                )
                job = self._session.query_incremental(request.namespace, request.table, query)
        except OutOfRangeError as exc:  # includes SnapshotRequiredError
            self._refused(entry, exc)
            return
        except DAPClientError as exc:
            if exc.status == 429:
                with self._cond:
                    self._running.remove(entry)
                    self._queue.appendleft(entry)
                    self._rate.throttled(time.monotonic(), exc.retry_after)
                    self._cond.notify_all()
                return
            self._fail(
                entry,
                _describe_client_error(
                    request.stream_name, f"creating the {entry.kind} job failed", exc
                ),
            )
            if isinstance(exc, ACCOUNT_ERRORS):
                self._fail_all(exc)
            return
        entry.job_id = job.id
        entry.created_at = time.monotonic()
        logger.info(
            "%s: %s job %s started%s",
            request.stream_name,
            entry.kind,
            job.id,
            "" if entry.snapshot else f" (since {format_timestamp(request.since)})",  # type: ignore[arg-type]
        )
        self._observe(entry, job)

    def _refused(self, entry: _Entry, exc: OutOfRangeError) -> None:
        name = entry.request.stream_name
        if entry.snapshot or not self._resnapshot:
            hint = "" if entry.snapshot else " and on_snapshot_required is 'fail'"
            self._fail(
                entry,
                _describe_client_error(
                    name, f"the server refused the {entry.kind} query{hint}", exc
                ),
            )
            return
        logger.warning(
            "%s: incremental query refused (%s: %s, uuid %s); taking a new snapshot of the table",
            name,
            type(exc).__name__,
            exc.message or "no message",
            exc.uuid,
        )
        with self._cond:
            entry.snapshot = True
            entry.fell_back = True
            self._running.remove(entry)
            self._queue.appendleft(entry)
            self._cond.notify_all()

    # -- polling --------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                polled = [e for e in self._running if e.job_id is not None]
                interval = max(self._poll_interval, len(polled) / MAX_POLLS_PER_SECOND)
                self._cond.wait(timeout=interval)
                polled = [e for e in self._running if e.job_id is not None]
            for entry in polled:
                self._poll(entry)

    def _poll(self, entry: _Entry) -> None:
        assert entry.job_id is not None
        if time.monotonic() - entry.created_at > self._job_timeout:
            self._fail(entry, StreamSyncError(
                entry.request.stream_name,
                f"{entry.kind} job did not complete within job_timeout={self._job_timeout:.0f} s",
                job_id=entry.job_id,
            ))  # fmt: skip
            return
        try:
            job = self._session.get_job(entry.job_id)
        except DAPClientError as exc:
            if is_transient(exc):
                logger.warning(
                    "%s: polling job %s failed (%s); will poll again",
                    entry.request.stream_name,
                    entry.job_id,
                    exc,
                )
                return  # the client already retried; the job itself may be fine
            self._fail(
                entry,
                _describe_client_error(
                    entry.request.stream_name, "polling the job failed", exc, entry.job_id
                ),
            )
            return
        self._observe(entry, job)

    def _observe(self, entry: _Entry, job: TableJob) -> None:
        with self._cond:
            # A poll that raced with the creator (or a re-creation) may report on an old job.
            if entry.done.is_set() or entry.job_id != job.id or entry not in self._running:
                return
        if isinstance(job, CompleteJob):
            self._completed(entry, job)
        elif isinstance(job, FailedJob) or job.status is JobStatus.Failed:
            self._job_failed(entry, job)

    def _completed(self, entry: _Entry, job: CompleteJob) -> None:
        name = entry.request.stream_name
        if job.expires_at is not None:
            left = (job.expires_at - datetime.now(UTC)).total_seconds()
            if left < EXPIRY_MARGIN_SECONDS:
                logger.warning(
                    "%s: job %s is cached and expires in %.0f s; re-issuing the query then",
                    name, job.id, left,
                )  # fmt: skip
                self._requeue(entry, delay=max(0.0, left) + 5.0)
                return
        if isinstance(job, CompleteSnapshotJob):
            timestamp, window = job.at, f"at {format_timestamp(job.at)}"
        elif isinstance(job, CompleteIncrementalJob):
            timestamp = job.until
            window = f"since {format_timestamp(job.since)} until {format_timestamp(job.until)}"
        else:
            self._fail(
                entry,
                StreamSyncError(name, "completed job has neither 'at' nor 'until'", job_id=job.id),
            )
            return
        logger.info(
            "%s: %s job %s complete: %d object(s), schema version %d, %s",
            name, entry.kind, job.id, len(job.objects), job.schema_version, window,
        )  # fmt: skip
        entry.ready = ReadyJob(
            request=entry.request,
            job=job,
            is_snapshot=isinstance(job, CompleteSnapshotJob),
            timestamp=timestamp,
            fell_back_to_snapshot=entry.fell_back,
        )
        self._finish(entry)
        if self._on_ready is not None:
            try:
                self._on_ready(entry.ready)
            except Exception:  # the writer registers the job itself when it gets there
                logger.exception("%s: could not start prefetching job %s", name, job.id)

    def _job_failed(self, entry: _Entry, job: TableJob) -> None:
        error = getattr(job, "error", None)
        error_type = getattr(error, "type", None)
        if (
            error_type
            in ("SnapshotRequired", "OutOfRange", "SnapshotRequiredError", "OutOfRangeError")
            and not entry.snapshot
            and self._resnapshot
        ):
            logger.warning(
                "%s: incremental job %s failed with %s (uuid %s); taking a new snapshot",
                entry.request.stream_name,
                job.id,
                error_type,
                getattr(error, "uuid", None),
            )
            entry.snapshot = entry.fell_back = True
            self._requeue(entry, delay=0.0)
            return
        entry.failed_jobs += 1
        failure = StreamSyncError(
            entry.request.stream_name,
            f"{entry.kind} job failed: {getattr(error, 'message', '') or 'no message'}",
            job_id=job.id,
            error_type=error_type,
            error_uuid=getattr(error, "uuid", None),
        )
        if entry.failed_jobs < FAILED_JOB_ATTEMPTS:
            logger.warning(
                "%s; re-creating the job (attempt %d of %d)",
                failure,
                entry.failed_jobs + 1,
                FAILED_JOB_ATTEMPTS,
            )
            self._requeue(entry, delay=min(60.0, self._poll_interval * 2**entry.failed_jobs))
            return
        self._fail(entry, failure)

    # -- bookkeeping ----------------------------------------------------------------------------

    def _requeue(self, entry: _Entry, *, delay: float) -> None:
        with self._cond:
            if entry in self._running:
                self._running.remove(entry)
            entry.job_id = None
            entry.not_before = time.monotonic() + delay
            self._queue.appendleft(entry)
            self._cond.notify_all()

    def _finish(self, entry: _Entry) -> None:
        with self._cond:
            if entry in self._running:
                self._running.remove(entry)
            self._cond.notify_all()
        entry.done.set()

    def _fail(self, entry: _Entry, error: StreamSyncError) -> None:
        logger.error("%s", error)
        error.logged = True
        entry.error = error
        self._finish(entry)

    def _fail_all(self, exc: DAPClientError) -> None:
        with self._cond:
            pending = list(self._queue)
            self._queue.clear()
        for entry in pending:
            entry.error = _describe_client_error(entry.request.stream_name, "not attempted", exc)
            entry.done.set()


def is_transient(exc: DAPClientError) -> bool:
    """Worth asking again later (the client has already retried the request a few times)."""
    return isinstance(exc, NetworkError) or exc.status in (429, 500, 502, 503, 504)


def _describe_client_error(
    stream: str, what: str, exc: DAPClientError, job_id: str | None = None
) -> StreamSyncError:
    if isinstance(exc, OperationError):
        return StreamSyncError(
            stream, f"{what}: {type(exc).__name__}: {exc.message or 'no message'}",
            job_id=job_id, error_type=exc.type, error_uuid=exc.uuid,
        )  # fmt: skip
    return StreamSyncError(stream, f"{what}: {type(exc).__name__}: {exc}", job_id=job_id)
