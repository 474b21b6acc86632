"""DAPSession: the operations of the DAP API (tables, schemas, query jobs, objects, downloads).

A session is safe to share between threads: the HTTP connection pool is shared, token refresh is
serialised, and no method keeps per-call state on the session.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from tap_dap.client.config import ClientSettings
from tap_dap.client.downloads import Downloader
from tap_dap.client.errors import (
    ConfigurationError,
    DAPClientError,
    DownloadError,
    JobFailedError,
    JobTimeoutError,
    UnexpectedResponseError,
)
from tap_dap.client.retry import RetryPolicy
from tap_dap.client.transport import Transport
from tap_dap.client.types import (
    CompleteIncrementalJob,
    CompleteJob,
    CompleteSnapshotJob,
    Credentials,
    DownloadTableDataResult,
    FailedJob,
    GetTableDataResult,
    IncrementalQuery,
    Job,
    JobID,
    JobOrigin,
    JobStatus,
    Object,
    ObjectID,
    Query,
    Resource,
    SnapshotQuery,
    VersionedSchema,
)
from tap_dap.client.wire import (
    parse_job,
    parse_resources,
    parse_schema,
    parse_tables,
    query_to_json,
)

logger = logging.getLogger("tap_dap.client")

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def _segment(value: str, what: str) -> str:
    """An API URL path segment; quoting keeps `/` or `..` in a name from changing the path."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string, not {value!r}")
    return quote(value, safe="")


def _file_component(value: str) -> str:
    return _UNSAFE_FILE_CHARS.sub("_", value).lstrip(".") or "_"


def _table_timestamp(job: CompleteJob) -> datetime:
    if isinstance(job, CompleteSnapshotJob):
        return job.at
    assert isinstance(job, CompleteIncrementalJob)
    return job.until


class DAPSession:
    """A connection to the DAP API; obtain one with `with DAPClient(...) as session:`."""

    def __init__(self, settings: ClientSettings, credentials: Credentials) -> None:
        self._settings = settings
        self._transport = Transport(settings, credentials)
        self._downloader = Downloader(self._transport, self.get_resources)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._transport.close()

    def __enter__(self) -> DAPSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DAPSession(base_url={self._settings.base_url!r})"

    @property
    def settings(self) -> ClientSettings:
        """The limits this session runs with (read-only)."""
        return self._settings

    def authenticate(self) -> None:
        """Log in now (otherwise the first call logs in); refreshes an expiring token."""
        self._transport.tokens.current()

    # -- tables and schemas ----------------------------------------------------------------

    def get_tables(self, namespace: str) -> list[str]:
        """Names of the tables of a namespace such as `canvas`."""
        path = f"/dap/query/{_segment(namespace, 'namespace')}/table"
        operation = f"listing tables of namespace {namespace!r}"
        return parse_tables(
            self._transport.request_json("GET", path, operation=operation), operation
        )

    def get_table_list(self, namespace: str, table_param: str) -> list[str]:
        """`all` → every table of the namespace; otherwise a comma-separated list of names."""
        if table_param.strip() == "all":
            return self.get_tables(namespace)
        return [name.strip() for name in table_param.split(",") if name.strip()]

    def get_table_schema(self, namespace: str, table: str) -> VersionedSchema:
        """The current JSON Schema of a table and its version."""
        path = (
            f"/dap/query/{_segment(namespace, 'namespace')}/table/{_segment(table, 'table')}/schema"
        )
        operation = f"getting schema of {namespace}.{table}"
        return parse_schema(
            self._transport.request_json("GET", path, operation=operation), operation
        )

    def download_table_schema(self, namespace: str, table: str, output_directory: str) -> str:
        """Save the schema as `<table>_schema_version_<version>.json`; returns the path."""
        schema = self.get_table_schema(namespace, table)
        os.makedirs(output_directory, exist_ok=True)
        name = f"{_file_component(table)}_schema_version_{schema.version}.json"
        path = os.path.join(output_directory, name)
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"schema": schema.schema, "version": schema.version}, out, indent=4)
        return path

    # -- query jobs ------------------------------------------------------------------------

    def _submit(self, origin: JobOrigin, retry: RetryPolicy | None = None) -> Job:
        namespace, table = origin.namespace, origin.table
        path = (
            f"/dap/query/{_segment(namespace, 'namespace')}/table/{_segment(table, 'table')}/data"
        )
        kind = "snapshot" if isinstance(origin.query, SnapshotQuery) else "incremental"
        operation = f"starting {kind} query of {namespace}.{table}"
        data = self._transport.request_json(
            "POST", path, operation=operation, body=query_to_json(origin.query), retry=retry
        )
        job = parse_job(data, operation, origin)
        logger.info(
            "%s query of %s.%s: job %s is %s", kind, namespace, table, job.id, job.status.value
        )
        return job

    def query_snapshot(
        self,
        namespace: str,
        table: str,
        query: SnapshotQuery,
        *,
        retry: RetryPolicy | None = None,
    ) -> Job:
        """Start a snapshot query; returns the job (often still waiting).

        `retry` overrides the session's retry policy for this call, e.g.
        `RetryPolicy(retry_throttled=False)` to get a 429 at once instead of waiting it out.
        """
        if not isinstance(query, SnapshotQuery):
            raise ConfigurationError("query_snapshot needs a SnapshotQuery")
        return self._submit(JobOrigin(namespace, table, query), retry)

    def query_incremental(
        self,
        namespace: str,
        table: str,
        query: IncrementalQuery,
        *,
        retry: RetryPolicy | None = None,
    ) -> Job:
        """Start an incremental query; returns the job (often still waiting). See query_snapshot."""
        if not isinstance(query, IncrementalQuery):
            raise ConfigurationError("query_incremental needs an IncrementalQuery")
        return self._submit(JobOrigin(namespace, table, query), retry)

    def _fetch_job(self, job_id: JobID, origin: JobOrigin | None = None) -> Job:
        operation = f"getting job {job_id}"
        data = self._transport.request_json(
            "GET", f"/dap/job/{_segment(job_id, 'job id')}", operation=operation
        )
        return parse_job(data, operation, origin)

    def get_job(self, job_id: JobID) -> Job:
        """The current state of a job."""
        return self._fetch_job(job_id)

    def get_job_status(self, job_id: JobID) -> JobStatus:
        return self.get_job(job_id).status

    def get_objects(self, job_id: JobID) -> list[Object]:
        """The output objects of a completed job."""
        job = self.get_job(job_id)
        if not isinstance(job, CompleteJob):
            raise DAPClientError(f"job {job_id} has no objects: its status is {job.status.value}")
        return job.objects

    def _wait_until_terminal(self, job: Job) -> Job:
        settings = self._settings
        started = time.monotonic()
        interval = settings.poll_interval
        while not job.status.is_terminal():
            waited = time.monotonic() - started
            if settings.job_timeout is not None and waited >= settings.job_timeout:
                raise JobTimeoutError(
                    f"query job {job.id} still {job.status.value} after {waited:.0f} s "
                    f"(job_timeout is {settings.job_timeout:g} s)",
                    job_id=job.id,
                )
            pause = interval
            if settings.job_timeout is not None:
                pause = min(pause, settings.job_timeout - waited)
            time.sleep(pause)
            job = self._fetch_job(job.id, job.origin)
            logger.debug("job %s is %s", job.id, job.status.value)
            interval = min(interval * settings.poll_growth, settings.poll_interval_max)
        return job

    def await_job(self, job: Job) -> CompleteJob:
        """Wait until the job terminates; returns the complete job or raises JobFailedError.

        Polls with a growing interval and gives up after job_timeout (JobTimeoutError). A complete
        job about to expire (the server may hand out a cached job near its end of life) is
        re-queried once it has expired, so its objects stay downloadable.
        """
        requeries = 0
        while True:
            job = self._wait_until_terminal(job)
            if isinstance(job, FailedJob):
                error = job.error
                failure = JobFailedError(error.type, error.uuid, error.message, job_id=job.id)
                # WARNING: the caller may re-create the job and recover; what fails is its ERROR.
                logger.warning("%s", failure)
                raise failure
            if not isinstance(job, CompleteJob):
                raise UnexpectedResponseError(f"job {job.id} is complete but lists no objects")
            remaining = job.seconds_to_expiry()
            if remaining is None or not job.expires_within(self._settings.expiry_margin):
                return job
            if job.origin is None:
                logger.warning(
                    "job %s expires in %.0f s and its query is unknown; download promptly",
                    job.id,
                    remaining,
                )
                return job
            if requeries >= self._settings.max_requeries:
                raise DAPClientError(
                    f"query of {job.origin.namespace}.{job.origin.table} kept returning job "
                    f"{job.id} about to expire ({remaining:.0f} s left), even after {requeries} "
                    "re-queries"
                )
            requeries += 1
            pause = job.requery_delay()
            logger.info(
                "job %s expires in %.0f s; re-issuing its query in %.0f s", job.id, remaining, pause
            )
            time.sleep(pause)
            job = self._submit(job.origin)

    def execute_job(self, namespace: str, table: str, query: Query) -> CompleteJob:
        """Start a query and wait for its result."""
        if isinstance(query, IncrementalQuery):
            job = self.query_incremental(namespace, table, query)
        else:
            job = self.query_snapshot(namespace, table, query)
        return self.await_job(job)

    def get_table_data(self, namespace: str, table: str, query: Query) -> GetTableDataResult:
        """Run a query; returns its objects, schema version and table-state timestamp."""
        job = self.execute_job(namespace, table, query)
        return GetTableDataResult(
            schema_version=job.schema_version,
            timestamp=_table_timestamp(job),
            job_id=job.id,
            objects=list(job.objects),
        )

    def download_table_data(
        self,
        namespace: str,
        table: str,
        query: Query,
        output_directory: str,
        decompress: bool = False,
    ) -> DownloadTableDataResult:
        """Run a query and save its objects under `<output_directory>/job_<job id>/`."""
        job = self.execute_job(namespace, table, query)
        directory = os.path.join(output_directory, f"job_{_file_component(job.id)}")
        files = self.download_objects(job.objects, directory, decompress)
        return DownloadTableDataResult(
            schema_version=job.schema_version,
            timestamp=_table_timestamp(job),
            job_id=job.id,
            downloaded_files=files,
        )

    # -- objects ---------------------------------------------------------------------------

    def get_resources(self, objects: list[Object] | list[ObjectID]) -> dict[ObjectID, Resource]:
        """Pre-signed URLs for objects, fetched url_batch_size objects per call."""
        ids = list(dict.fromkeys(o.id if isinstance(o, Object) else str(o) for o in objects))
        resources: dict[ObjectID, Resource] = {}
        size = self._settings.url_batch_size
        for start in range(0, len(ids), size):
            batch = ids[start : start + size]
            operation = f"getting URLs of {len(batch)} object(s)"
            data = self._transport.request_json(
                "POST", "/dap/object/url", operation=operation, body=[{"id": i} for i in batch]
            )
            found = parse_resources(data, operation)
            missing = [i for i in batch if i not in found]
            if missing:
                shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
                raise UnexpectedResponseError(f"{operation}: no URL returned for {shown}")
            resources.update((i, found[i]) for i in batch)
        return resources

    def download_resource(
        self, resource: Resource, output_directory: str, decompress: bool = False
    ) -> str:
        """Save one resource; `decompress` gunzips while streaming and drops the `.gz` suffix."""
        return self._downloader.save(resource, output_directory, decompress)

    def download_resources(
        self, resources: list[Resource], output_directory: str, decompress: bool = False
    ) -> list[str]:
        """Save resources in parallel (download_workers threads); paths in input order."""
        return self._downloader.save_many(list(resources), output_directory, decompress)

    def download_object(
        self, object: Object, output_directory: str, decompress: bool = False
    ) -> str:
        resource = self.get_resources([object])[object.id]
        return self._downloader.save(resource, output_directory, decompress)

    def download_objects(
        self, objects: list[Object], output_directory: str, decompress: bool = False
    ) -> list[str]:
        resources = self.get_resources(objects)
        ordered = [resources[o.id] for o in objects]
        return self._downloader.save_many(ordered, output_directory, decompress)

    def stream_resource(self, resource: Resource) -> AbstractContextManager[Iterator[bytes]]:
        """`with session.stream_resource(r) as chunks:` — the bytes exactly as served."""
        return self._downloader.open_stream(resource)

    def stream_resource_lines(self, resource: Resource) -> Iterator[bytes]:
        """Like stream_object_lines, for an already resolved resource."""
        return self._downloader.lines(resource)

    def stream_object_lines(self, obj: Object) -> Iterator[bytes]:
        """The lines of an object, gunzipped while streaming, without line endings; bounded memory.

        Empty lines are skipped. An expired URL is re-resolved; a transfer that breaks before the
        first line is retried from the start, one that breaks later raises DownloadError naming
        the object (the caller restarts the object).
        """
        resource = self.get_resources([obj])[obj.id]
        yield from self._downloader.lines(resource)

    def stream_object_line_blocks(self, obj: Object) -> Iterator[bytes]:
        """Like stream_object_lines, as blocks of whole lines, each ending with b"\\n".

        Line endings, "\\r" and blank lines are kept as they are. A consumer that splits or
        parses a whole block at once (msgspec ``decode_lines``) avoids one Python step per line.
        """
        resource = self.get_resources([obj])[obj.id]
        yield from self._downloader.line_blocks(resource)

    def stream_object_records(self, obj: Object) -> Iterator[dict[str, Any]]:
        """The JSON Lines records of an object, parsed with orjson."""
        loads = orjson.loads
        for number, line in enumerate(self.stream_object_lines(obj), start=1):
            try:
                record = loads(line)
            except orjson.JSONDecodeError as exc:
                raise DownloadError(
                    f"object {obj.id}: line {number} is not valid JSON ({exc})", object_id=obj.id
                ) from None
            yield record
