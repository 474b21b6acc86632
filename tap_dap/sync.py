"""One tap run's background machinery: the job scheduler feeding the object prefetcher.

ACTIVATE_VERSION: a snapshot normally replaces its table, so it is framed by ACTIVATE_VERSION
(the opening one lets target-dap-sql start staging, the closing one swaps the table in) and its
records carry that version. Tables of the ``canvas_logs`` namespace are the exception: their
snapshot only covers DAP's 30-day window, and history older than that exists nowhere else but in
the target, so their snapshot must merge. They get no ACTIVATE_VERSION at all and unversioned
records: a generic Singer target that honours ACTIVATE_VERSION would otherwise delete everything
older than 30 days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tap_dap.client import JOB_EXPIRY_MARGIN, RetryPolicy
from tap_dap.errors import StreamSyncError
from tap_dap.jobs import JobScheduler, ReadyJob, TableRequest
from tap_dap.output import RecordEncoder, RecordEncoding
from tap_dap.prefetch import Prefetcher, restartable_blocks
from tap_dap.settings import TapSettings

logger = logging.getLogger("tap-dap.sync")

#: Namespaces whose snapshots merge into the target instead of replacing the table.
MERGING_NAMESPACES = frozenset({"canvas_logs"})
#: How often a stream's job is re-issued because it was about to expire when its turn came.
MAX_EXPIRY_REISSUES = 3


class SyncCoordinator:
    """Creates every planned stream's job at once and prefetches completed jobs' objects in order.

    ``snapshot_version`` is the ACTIVATE_VERSION value of snapshots in this run (None: no
    ACTIVATE_VERSION, records carry no version).
    """

    def __init__(
        self,
        session: Any,
        settings: TapSettings,
        requests: Sequence[TableRequest],
        *,
        snapshot_version: int | None,
    ) -> None:
        self._session = session
        self._snapshot_version = snapshot_version
        # A transfer that broke after handing out data is restarted within the same budget.
        self._restarts = RetryPolicy(max_time=settings.retry_budget_seconds)
        self._pending = {r.stream_name for r in requests}
        self._prefetcher = Prefetcher(
            self._blocks_of,
            [r.stream_name for r in requests],
            workers=settings.download_concurrency,
            budget=settings.prefetch_buffer_bytes,
        )
        self._scheduler = JobScheduler(
            session,
            requests,
            max_concurrent_jobs=settings.max_concurrent_jobs,
            max_jobs_per_minute=settings.max_jobs_per_minute,
            poll_interval=settings.poll_interval,
            job_timeout=settings.job_timeout,
            resnapshot_on_refusal=settings.on_snapshot_required == "resnapshot",
            on_ready=self._register,
        )
        self._scheduler.start()

    def plans(self, stream_name: str) -> bool:
        return stream_name in self._scheduler

    def add(self, request: TableRequest) -> None:
        """Schedule a stream that was not selected when the run started."""
        self._pending.add(request.stream_name)
        self._scheduler.add(request)

    def ready_job(self, stream_name: str) -> ReadyJob:
        """Wait for the stream's job; raises StreamSyncError if it could not be completed.

        Jobs are created up front but may be read hours later, and a job's objects vanish when
        it expires (24 h): a job too close to its end is re-issued before anything is written.
        """
        reissues = 0
        while True:
            ready = self._scheduler.result(stream_name)
            left = ready.job.seconds_to_expiry()
            if left is None or not ready.job.expires_within(JOB_EXPIRY_MARGIN):
                return ready
            if reissues == MAX_EXPIRY_REISSUES:
                raise StreamSyncError(
                    stream_name,
                    f"job {ready.job.id} expires in {left:.0f} s, and so did the jobs of "
                    f"{reissues} re-issued queries",
                    job_id=ready.job.id,
                )
            reissues += 1
            logger.warning(
                "%s: job %s expires in %.0f s, too soon to start reading it; re-issuing the query "
                "once it has expired", stream_name, ready.job.id, left,
            )  # fmt: skip
            self._prefetcher.forget(stream_name)
            self._scheduler.reissue(stream_name, delay=ready.job.requery_delay())

    def snapshot_version(self, ready: ReadyJob) -> int | None:
        """The ACTIVATE_VERSION of the job's output; None: no ACTIVATE_VERSION, unversioned."""
        if not ready.is_snapshot or ready.request.namespace in MERGING_NAMESPACES:
            return None
        return self._snapshot_version

    def record_chunks(self, ready: ReadyJob) -> Iterator[tuple[bytearray, int]]:
        """Encoded RECORD lines of the job's objects, in order, as ``(chunk, records)``."""
        self._register(ready)
        return self._prefetcher.chunks(ready.request.stream_name)

    def finished(self, stream_name: str) -> None:
        """The stream is written (or failed): free its buffers; stop threads after the last one."""
        self._prefetcher.discard(stream_name)
        self._pending.discard(stream_name)
        if not self._pending:
            self.close()

    def close(self) -> None:
        self._scheduler.close()
        self._prefetcher.close()

    def _register(self, ready: ReadyJob) -> None:
        version = self.snapshot_version(ready)
        request = ready.request
        self._prefetcher.add(
            request.stream_name, list(ready.job.objects), self._encoder_factory(ready, version)
        )

    def _encoder_factory(
        self, ready: ReadyJob, version: int | None
    ) -> Callable[[object], RecordEncoder]:
        request = ready.request

        def encoder_for(obj: object) -> RecordEncoder:
            where = (
                f"{request.namespace}.{request.table}: object {getattr(obj, 'id', obj)} "
                f"of job {ready.job.id}"
            )
            encoding = request.encoding or RecordEncoding(request.stream_name)
            return encoding.encoder(version=version, where=where)

        return encoder_for

    def _blocks_of(self, obj: Any) -> Iterator[bytes]:
        return restartable_blocks(
            lambda: self._session.stream_object_line_blocks(obj),
            f"object {obj.id} of job {obj.job_id}",
            policy=self._restarts,
        )
