"""Query jobs: validated and planned synchronously at POST time, built once in a worker thread.

A job is ``waiting`` for the first half of the configured latency, then ``running`` until both its
objects are written and the latency has passed, then ``complete`` (or ``failed``). Jobs and their
objects expire after ``job_ttl`` seconds; expired jobs and files are purged.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tap_dap.emulator.clock import MICROS, format_ts, parse_ts
from tap_dap.emulator.errors import NotFoundError, OutOfRangeError, ValidationError
from tap_dap.emulator.layout import FORMATS, MODES, Layout
from tap_dap.emulator.store import Plan, Store, Table
from tap_dap.emulator.writer import ObjectFile, write_plan


@dataclass
class JobSettings:
    latency: float = 0.0
    rows_per_object: int = 250_000
    compression_level: int = 1
    job_ttl: float = 24 * 3600.0
    post_wait: float = 2.0  # with zero latency, POST waits this long for the job to be complete


@dataclass
class Job:
    id: str
    namespace: str
    table: str
    snapshot: bool
    schema_version: int
    started: float
    expires_at: int
    at: int = 0
    since: int = 0
    until: int = 0
    objects: list[ObjectFile] = field(default_factory=list)
    error: dict[str, str] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    directory: Path | None = None

    def status(self, latency: float) -> str:
        if self.error is not None:
            return "failed"
        elapsed = time.monotonic() - self.started
        if elapsed < latency / 2:
            return "waiting"
        if not self.done.is_set() or elapsed < latency:
            return "running"
        return "complete"

    def body(self, latency: float) -> dict[str, Any]:
        """The job JSON with exactly the key set of the matching DAP job class."""
        status = self.status(latency)
        out: dict[str, Any] = {
            "id": self.id, "status": status, "expires_at": format_ts(self.expires_at),
        }
        if status == "failed":
            out["error"] = dict(self.error or {})
        elif status == "complete":
            out["objects"] = [{"id": o.id} for o in self.objects]
            out["schema_version"] = self.schema_version
            if self.snapshot:
                out["at"] = format_ts(self.at)
            else:
                out["since"] = format_ts(self.since)
                out["until"] = format_ts(self.until)
        return out

    def fail(self, message: str, error_type: str = "ProcessingError") -> None:
        self.error = {"type": error_type, "uuid": str(uuid.uuid4()), "message": message}
        self.done.set()


def parse_query(body: Any) -> tuple[str, str, int | None, int | None]:
    """Validate a Snapshot/Incremental query body; returns (format, mode, since, until)."""
    if not isinstance(body, dict):
        raise ValidationError("query body must be a JSON object")
    allowed = {"format", "mode", "since", "until"}
    if extra := sorted(set(body) - allowed):
        raise ValidationError(f"unknown query field(s): {', '.join(extra)}")
    fmt = body.get("format")
    if fmt == "parquet":
        raise ValidationError("format 'parquet' is not available in this emulator (no pyarrow)")
    if fmt not in FORMATS:
        raise ValidationError(f"'format' must be one of tsv, csv, jsonl, parquet; got {fmt!r}")
    mode = body.get("mode", "expanded")
    if mode not in MODES:
        raise ValidationError(f"'mode' must be 'expanded' or 'condensed'; got {mode!r}")
    if "until" in body and "since" not in body:
        raise ValidationError("'until' requires 'since'")
    since = until = None
    for name in ("since", "until"):
        if name in body:
            try:
                stamp = parse_ts(body[name])
            except ValueError:
                raise ValidationError(f"'{name}' must be an ISO 8601 timestamp with a time zone, "
                                      f"got {body[name]!r}") from None
            if name == "since":
                since = stamp
            else:
                until = stamp
    if since is not None and until is not None and since > until:
        raise ValidationError("'since' is after 'until'")
    return fmt, mode, since, until


class JobManager:
    def __init__(self, store: Store, settings: JobSettings, workdir: Path) -> None:
        self.store = store
        self.settings = settings
        self.workdir = workdir
        self.jobs: dict[str, Job] = {}
        self.objects: dict[str, ObjectFile] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dap-job")
        self._deflaters = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dap-deflate")

    def create(self, table: Table, body: Any, fail: bool = False) -> Job:
        fmt, mode, since, until = parse_query(body)
        self._purge()
        with self.store.lock:
            now = self.store.clock.tick()
            layout = Layout(table.schema, fmt, mode, incremental=since is not None)
            job = Job(
                id=str(uuid.uuid4()), namespace=table.namespace, table=table.name,
                snapshot=since is None, schema_version=table.schema.current.version,
                started=time.monotonic(),
                # Real time, not the data clock (which --clock-start may set in the past):
                # clients compare it with their own clock to decide whether a job is still usable.
                expires_at=time.time_ns() // 1000 + int(self.settings.job_ttl * MICROS),
            )
            if since is None:
                job.at = now
                plan = table.snapshot_plan(now)
            else:
                if until is not None and until > now:
                    raise OutOfRangeError("'until' is in the future", since=format_ts(since),
                                          until=format_ts(now))
                if since > now:
                    raise OutOfRangeError("'since' is in the future", since=format_ts(now),
                                          until=format_ts(now))
                job.since, job.until = since, until if until is not None else now
                plan = table.incremental_plan(since, job.until, now)
        with self._lock:
            self.jobs[job.id] = job
        if fail:
            job.fail("The query job failed (injected fault).")
        else:
            self._pool.submit(self._build, job, table, plan, layout)
        if self.settings.latency <= 0:
            job.done.wait(self.settings.post_wait)
        return job

    def _build(self, job: Job, table: Table, plan: Plan, layout: Layout) -> None:
        directory = self.workdir / job.id
        directory.mkdir(parents=True)
        job.directory = directory
        try:
            objects = write_plan(table, plan, layout, job.snapshot, directory, job.id,
                                 self.settings.rows_per_object, self.settings.compression_level,
                                 self._deflaters)
        except Exception as exc:  # a build bug must surface as a failed job, not a hung one
            job.fail(f"object generation failed: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            for item in objects:
                self.objects[item.id] = item
        job.objects = objects
        job.done.set()

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None or job.expires_at < time.time_ns() // 1000:
            raise NotFoundError("job", job_id)
        return job

    def object(self, object_id: str) -> ObjectFile:
        with self._lock:
            item = self.objects.get(object_id)
        if item is None or not item.path.exists():
            raise NotFoundError("object", object_id)
        return item

    def _purge(self) -> None:
        now = time.time_ns() // 1000  # expires_at is real time (see create)
        with self._lock:
            expired = [j for j in self.jobs.values() if j.expires_at < now and j.done.is_set()]
            for job in expired:
                del self.jobs[job.id]
                for item in job.objects:
                    self.objects.pop(item.id, None)
        for job in expired:
            if job.directory is not None:
                shutil.rmtree(job.directory, ignore_errors=True)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._deflaters.shutdown(wait=False, cancel_futures=True)
