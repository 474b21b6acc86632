"""The job scheduler's shared bookkeeping: tables waiting for a job, jobs running, results.

Two threads (creator and poller) and the writer act on the same entries. Every state change goes
through this class under one lock, and an entry leaves ``running`` only through ``claim`` — so a
job seen complete (or failed, or timed out) by two threads at once is acted on exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from tap_dap.client import CompleteJob
from tap_dap.errors import StreamSyncError
from tap_dap.output import RecordEncoding
from tap_dap.rate import CreationRate


@dataclass(frozen=True)
class TableRequest:
    """What to query for one stream: a snapshot (``since`` None) or changes since ``since``."""

    stream_name: str
    namespace: str
    table: str
    since: datetime | None
    #: How its rows are written: deselected properties, compiled stream maps (tap_dap.output).
    encoding: RecordEncoding | None = None  # None: every property, under the stream's name


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


@dataclass(eq=False)
class JobEntry:
    """One stream's way through the scheduler; fields change only under JobQueue's lock."""

    request: TableRequest
    snapshot: bool
    fell_back: bool = False
    job_id: str | None = None
    created_at: float = 0.0
    not_before: float = 0.0
    failed_jobs: int = 0
    expiry_requeries: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    ready: ReadyJob | None = None
    error: StreamSyncError | None = None

    @property
    def kind(self) -> str:
        return "snapshot" if self.snapshot else "incremental"

    @property
    def name(self) -> str:
        return self.request.stream_name


class JobQueue:
    """Entries by stream; the queue of entries to create; the entries holding a job slot."""

    def __init__(self, requests: Iterable[TableRequest]) -> None:
        self.entries: dict[str, JobEntry] = {}
        self._queue: deque[JobEntry] = deque()
        self._running: list[JobEntry] = []
        self._cond = threading.Condition()
        self.closed = False
        for request in requests:
            self._enqueue_new(request)

    def _enqueue_new(self, request: TableRequest) -> None:
        entry = JobEntry(request, snapshot=request.since is None)
        self.entries[request.stream_name] = entry
        self._queue.append(entry)

    def add(self, request: TableRequest) -> None:
        with self._cond:
            if request.stream_name not in self.entries:
                self._enqueue_new(request)
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    # -- creator side ---------------------------------------------------------------------------

    def next_to_create(self, rate: CreationRate, max_running: int) -> JobEntry | None:
        """Wait for a free slot, the rate and a due entry; the entry then holds a slot."""
        with self._cond:
            while not self.closed:
                now = time.monotonic()
                wait = rate.delay(now)
                if not self._queue:
                    self._cond.wait()
                    continue
                if len(self._running) < max_running and wait == 0.0:
                    due = next((e for e in self._queue if e.not_before <= now), None)
                    if due is not None:
                        self._queue.remove(due)
                        self._running.append(due)
                        rate.record(now)
                        return due
                    wait = min(e.not_before for e in self._queue) - now
                self._cond.wait(timeout=wait if wait > 0 else None)
            return None

    def started(self, entry: JobEntry, job_id: str) -> None:
        """The server accepted the query: from now on the poller may look at the job."""
        with self._cond:
            entry.job_id = job_id
            entry.created_at = time.monotonic()

    # -- poller side ----------------------------------------------------------------------------

    def jobs_to_poll(
        self, interval: Callable[[int, float], float]
    ) -> list[tuple[JobEntry, str]] | None:
        """After ``interval(running jobs, youngest job's age)`` s: the running (entry, id) pairs.

        The job id is captured under the lock: the entry may be re-queued (its id cleared) while
        the poller is busy with others. None once closed.
        """
        with self._cond:
            if self.closed:
                return None
            running = [e for e in self._running if e.job_id]
            newest = max((e.created_at for e in running), default=time.monotonic())
            self._cond.wait(timeout=interval(len(running), time.monotonic() - newest))
            if self.closed:
                return None
            return [(e, e.job_id) for e in self._running if e.job_id is not None]

    # -- state changes ----------------------------------------------------------------------------

    def claim(self, entry: JobEntry, job_id: str) -> bool:
        """Take a running job out of play to act on its outcome; False if someone else did."""
        with self._cond:
            if entry.done.is_set() or entry.job_id != job_id or entry not in self._running:
                return False
            self._running.remove(entry)
            entry.job_id = None
            self._cond.notify_all()
            return True

    def requeue(self, entry: JobEntry, *, delay: float) -> None:
        """Create the entry's job again (first in line) after ``delay`` seconds."""
        with self._cond:
            if entry in self._running:
                self._running.remove(entry)
            entry.job_id = None
            entry.not_before = time.monotonic() + delay
            self._queue.appendleft(entry)
            self._cond.notify_all()

    def reopen(self, entry: JobEntry, *, delay: float) -> None:
        """A finished entry whose job became unusable: forget the result and create it again."""
        with self._cond:
            entry.ready = entry.error = None
            entry.done.clear()
        self.requeue(entry, delay=delay)

    def finish(
        self,
        entry: JobEntry,
        *,
        ready: ReadyJob | None = None,
        error: StreamSyncError | None = None,
    ) -> bool:
        """Record the entry's outcome and wake its reader; only the first outcome counts."""
        with self._cond:
            if entry.done.is_set():
                return False
            if entry in self._running:
                self._running.remove(entry)
            if entry in self._queue:
                self._queue.remove(entry)
            entry.job_id = None
            entry.ready, entry.error = ready, error
            entry.done.set()
            self._cond.notify_all()
            return True

    def fail_unfinished(
        self, error_for: Callable[[JobEntry], StreamSyncError], *, queued_only: bool = False
    ) -> list[JobEntry]:
        """Fail every entry without an outcome (or only those not yet created)."""
        with self._cond:
            pending = list(self._queue) if queued_only else [
                e for e in self.entries.values() if not e.done.is_set()
            ]  # fmt: skip
        return [e for e in pending if self.finish(e, error=error_for(e))]
