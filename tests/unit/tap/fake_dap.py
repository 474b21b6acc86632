"""An in-memory stand-in for DAPSession, for tap tests that need exact control over what the
server says (malformed object lines, refused queries, 429s) without a network."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from tap_dap.client import (
    ClientSettings,
    CompleteIncrementalJob,
    CompleteSnapshotJob,
    DAPClientError,
    IncrementalQuery,
    JobStatus,
    Object,
    SnapshotRequiredError,
    TableJob,
    VersionedSchema,
)

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                "required": ["id"]},
        "value": {"type": "object", "properties": {"name": {"type": "string"}}},
        "meta": {"type": "object", "properties": {"ts": {"type": "string", "format": "date-time"}}},
    },
    "required": ["key", "meta"],
}  # fmt: skip


def rate_limited(retry_after: float) -> DAPClientError:
    error = DAPClientError("rate limit exceeded")
    error.status = 429
    error.retry_after = retry_after
    return error


class FakeSession:
    """Tables hold lists of objects' lines; a job completes after ``polls`` get_job calls."""

    settings = ClientSettings()

    def __init__(self, objects: dict[str, list[list[bytes]]], *, polls: int = 1) -> None:
        self.objects = objects
        self.polls = polls
        self.calls: list[tuple[str, str]] = []
        self.refuse_incremental: set[str] = set()
        self.query_errors: list[DAPClientError] = []
        # Seconds from creation to expiry of the 1st, 2nd, ... job (then ten years).
        self.expires_in: list[float] = []
        # Schema versions served by get_table_schema, one per call (then the last again), and
        # the schema version of every job's data.
        self.schema_versions: list[int] = [1]
        self.job_schema_version = 1
        self.schema_calls = 0
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get_tables(self, namespace: str) -> list[str]:
        return sorted(self.objects)

    def get_table_schema(self, namespace: str, table: str) -> VersionedSchema:
        with self._lock:
            version = self.schema_versions[min(self.schema_calls, len(self.schema_versions) - 1)]
            self.schema_calls += 1
        return VersionedSchema(SCHEMA, version)

    def _query(self, table: str, query: Any) -> TableJob:
        with self._lock:
            kind = "incremental" if isinstance(query, IncrementalQuery) else "snapshot"
            self.calls.append((kind, table))
            if self.query_errors:
                raise self.query_errors.pop(0)
            if kind == "incremental" and table in self.refuse_incremental:
                raise SnapshotRequiredError("SnapshotRequired", "u-1", f"{table} was reloaded")
            job_id = f"job-{len(self._jobs) + 1}"
            lifetime = self.expires_in.pop(0) if self.expires_in else 3650 * 86400.0
            expires = datetime.now(UTC) + timedelta(seconds=lifetime)
            since = getattr(query, "since", None)
            self._jobs[job_id] = {"table": table, "kind": kind, "left": self.polls,
                                  "since": since, "expires": expires}  # fmt: skip
            return TableJob(job_id, JobStatus.Waiting)

    def query_snapshot(self, namespace: str, table: str, query: Any, *, retry: Any) -> TableJob:
        return self._query(table, query)

    def query_incremental(self, namespace: str, table: str, query: Any, *, retry: Any) -> TableJob:
        return self._query(table, query)

    def get_job(self, job_id: str) -> TableJob:
        with self._lock:
            job = self._jobs[job_id]
            self.calls.append(("get_job", job["table"]))
            job["left"] -= 1
            if job["left"] > 0:
                return TableJob(job_id, JobStatus.Running)
        objects = [Object(f"{job_id}/part-{i}", job_id=job_id)
                   for i in range(len(self.objects[job["table"]]))]  # fmt: skip
        expires, version = job["expires"], self.job_schema_version
        if job["kind"] == "snapshot":
            return CompleteSnapshotJob(id=job_id, status=JobStatus.Complete, expires_at=expires,
                                       objects=objects, schema_version=version, at=T0)  # fmt: skip
        until = T0 + timedelta(hours=1)
        return CompleteIncrementalJob(id=job_id, status=JobStatus.Complete, expires_at=expires,
                                      objects=objects, schema_version=version,
                                      since=job["since"], until=until)  # fmt: skip

    def stream_object_lines(self, obj: Object) -> Iterator[bytes]:
        job_id, part = obj.id.split("/part-")
        table = self._jobs[job_id]["table"]
        yield from self.objects[table][int(part)]

    def stream_object_line_blocks(self, obj: Object) -> Iterator[bytes]:
        return blocks_of_lines(self.stream_object_lines(obj))


def line(i: int, name: str = "n") -> bytes:
    return b'{"key":{"id":%d},"value":{"name":"%s"},"meta":{"ts":"2024-01-15T12:00:00Z"}}' % (
        i, name.encode(),
    )  # fmt: skip


def lines(start: int, count: int) -> list[bytes]:
    return [line(i) for i in range(start, start + count)]


Factory = Callable[..., FakeSession]


def blocks_of_lines(
    lines: Iterable[bytes], lines_per_block: int = 256
) -> Iterator[bytes]:
    """Regroup lines without line endings into blocks of whole lines, each ending with b"\\n"."""
    iterator = iter(lines)
    while batch := list(islice(iterator, lines_per_block)):
        batch.append(b"")  # so the block ends with a line ending too
        yield b"\n".join(batch)
