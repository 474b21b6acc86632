"""Downloading objects through pre-signed URLs: streaming, retries, URL refresh, parallel saves.

Pre-signed requests carry no Authorization header. A 401/403 (expired or revoked URL) makes us ask
/dap/object/url for a fresh URL, when we know the object id. Interrupted transfers are retried from
the start: files are written to `<name>.part` and renamed only when complete; line streams restart
only while no line has been handed out yet; after that they raise DownloadInterruptedError with the
number of lines delivered, and the caller reads the object again skipping those.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager

import requests

from tap_dap.client.errors import (
    DAPClientError,
    DownloadError,
    DownloadInterruptedError,
    NetworkError,
    TruncatedObjectError,
)
from tap_dap.client.redaction import redact_url
from tap_dap.client.retry import call_with_retries, is_transient, parse_retry_after, retrying
from tap_dap.client.streams import (
    empty_object,
    gunzip_chunks,
    line_blocks,
    safe_target_path,
    split_lines,
)
from tap_dap.client.transport import (
    DeadlinePassed,
    NoAuth,
    Transport,
    body_chunks,
    describe_network_error,
)
from tap_dap.client.types import ObjectID, Resource

logger = logging.getLogger("tap_dap.client")

Resolver = Callable[[list[ObjectID]], dict[ObjectID, Resource]]


def describe(resource: Resource) -> str:
    """How messages name a download: by object id, else by the redacted URL."""
    if resource.object_id is not None:
        return f"object {resource.object_id}"
    return f"resource {redact_url(resource.url.url)}"


class Downloader:
    """Fetches pre-signed URLs over the session's shared transport."""

    def __init__(self, transport: Transport, resolve: Resolver) -> None:
        self._transport = transport
        self._resolve = resolve
        self._settings = transport.settings

    # -- one HTTP exchange -----------------------------------------------------------------

    def _refresh(self, resource: Resource) -> Resource:
        assert resource.object_id is not None
        fresh = self._resolve([resource.object_id]).get(resource.object_id)
        if fresh is None:
            raise DownloadError(
                f"{describe(resource)}: the server returned no URL for it",
                object_id=resource.object_id,
            )
        return fresh

    def _open(self, holder: list[Resource], deadline: float) -> requests.Response:
        """GET the URL in holder[0]; re-resolve it (updating holder) when storage refuses it."""
        refreshes = 0
        while True:
            resource = holder[0]
            label = describe(resource)
            try:
                response = self._transport.send(
                    "GET",
                    resource.url.url,
                    operation=f"download of {label}",
                    auth=NoAuth(),
                    deadline=deadline,
                )
            except NetworkError as exc:
                raise DownloadInterruptedError(str(exc), object_id=resource.object_id) from None
            status = response.status_code
            if status < 300:
                return response
            response.close()
            if (
                status in (401, 403)
                and resource.object_id
                and refreshes < self._settings.max_url_refreshes
            ):
                refreshes += 1
                logger.info(
                    "%s: object storage refused the pre-signed URL (HTTP %d); requesting a new one",
                    label,
                    status,
                )
                try:
                    holder[0] = self._refresh(resource)
                except DAPClientError as exc:
                    if not is_transient(exc):
                        raise
                    # The URL call already retried; do not multiply its retries by ours.
                    raise DownloadError(
                        f"{label}: could not get a fresh URL ({exc})",
                        object_id=resource.object_id,
                    ) from None
                continue
            hint = {
                401: " (pre-signed URL rejected)",
                403: " (pre-signed URL expired or forbidden)",
                404: " (object not found; job outputs expire after 24 hours)",
            }.get(status, "")
            error = DownloadError(
                f"{label}: object storage answered HTTP {status}{hint}",
                object_id=resource.object_id,
            )
            error.status = status
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise error

    def _chunks(
        self, holder: list[Resource], stop: threading.Event | None = None
    ) -> Iterator[bytes]:
        """The body of one GET as raw chunks; a broken connection, or a transfer that outlasts
        object_download_timeout, is DownloadInterruptedError."""
        deadline = time.monotonic() + self._settings.object_download_timeout
        response = self._open(holder, deadline)
        resource = holder[0]
        received = 0
        try:
            for chunk in body_chunks(response, self._settings.download_chunk_size, deadline):
                if stop is not None and stop.is_set():
                    raise DownloadError(
                        f"{describe(resource)}: cancelled because another download failed",
                        object_id=resource.object_id,
                    )
                received += len(chunk)
                yield chunk
        except DeadlinePassed:
            raise self._too_slow(resource, received) from None
        except requests.RequestException as exc:
            raise DownloadInterruptedError(
                f"{describe(resource)}: connection broke after {received} bytes "
                f"({describe_network_error(exc)})",
                object_id=resource.object_id,
            ) from None
        finally:
            response.close()

    def _too_slow(self, resource: Resource, received: int) -> DownloadInterruptedError:
        return DownloadInterruptedError(
            f"{describe(resource)}: download not complete within "
            f"{self._settings.object_download_timeout:g} s (object_download_timeout_seconds; "
            f"{received} bytes received)",
            object_id=resource.object_id,
        )

    # -- public operations -----------------------------------------------------------------

    @contextmanager
    def open_stream(self, resource: Resource) -> Iterator[Iterator[bytes]]:
        """The raw bytes of a resource as served (opening is retried; reading is one attempt)."""
        holder = [resource]
        deadline = time.monotonic() + self._settings.object_download_timeout
        response = call_with_retries(lambda: self._open(holder, deadline), self._settings.retry)
        label = describe(holder[0])

        def body() -> Iterator[bytes]:
            received = 0
            try:
                for chunk in body_chunks(response, self._settings.download_chunk_size, deadline):
                    received += len(chunk)
                    yield chunk
            except DeadlinePassed:
                raise self._too_slow(holder[0], received) from None
            except requests.RequestException as exc:
                raise DownloadInterruptedError(
                    f"{label}: connection broke ({describe_network_error(exc)})",
                    object_id=resource.object_id,
                ) from None

        try:
            yield body()
        finally:
            response.close()

    def lines(self, resource: Resource) -> Iterator[bytes]:
        """Decompressed lines of a resource; see DAPSession.stream_object_lines."""
        return self._decoded(resource, split_lines, "lines")

    def line_blocks(self, resource: Resource) -> Iterator[bytes]:
        """Decompressed blocks of whole lines; see DAPSession.stream_object_line_blocks."""
        return self._decoded(resource, line_blocks, "blocks")

    def _decoded(
        self, resource: Resource, cut: Callable[[Iterable[bytes]], Iterator[bytes]], unit: str
    ) -> Iterator[bytes]:
        holder = [resource]
        label = describe(resource)
        yielded = 0

        def already_yielded(_exc: BaseException) -> bool:
            return yielded > 0

        cut_off = False
        try:
            for attempt in retrying(self._settings.retry, stop_if=already_yielded):
                with attempt:
                    if cut_off and resource.object_id is not None:
                        holder[0] = self._refresh(holder[0])  # the old URL may serve a bad copy
                    try:
                        raw = self._chunks(holder)
                        chunks = gunzip_chunks(raw, label=label, object_id=resource.object_id)
                        for item in cut(chunks):
                            yielded += 1
                            yield item
                    except TruncatedObjectError:
                        cut_off = True
                        raise
        except DAPClientError as exc:
            if yielded and is_transient(exc):
                # Retryable, but not here: the caller has the lines already; it must read the
                # object again and skip them (objects are immutable, so line N stays line N).
                raise DownloadInterruptedError(
                    f"{label}: download broke after {yielded} {unit} ({exc}); "
                    "the object must be read again from the start",
                    object_id=resource.object_id,
                    lines_delivered=yielded if unit == "lines" else 0,
                ) from None
            raise

    def save(
        self,
        resource: Resource,
        output_directory: str,
        decompress: bool,
        stop: threading.Event | None = None,
    ) -> str:
        """Save one resource into `output_directory`; returns the path written."""
        label = describe(resource)
        path = safe_target_path(
            resource.url.url, output_directory, decompress=decompress, label=label
        )
        os.makedirs(output_directory, exist_ok=True)
        partial = path + ".part"
        holder = [resource]
        cut_off = False

        def attempt() -> int:
            nonlocal cut_off
            if cut_off and resource.object_id is not None:
                holder[0] = self._refresh(holder[0])  # the old URL may serve a bad copy
            written = 0
            chunks: Iterator[bytes] = self._chunks(holder, stop)
            if decompress:
                chunks = gunzip_chunks(chunks, label=label, object_id=resource.object_id)
            try:
                with open(partial, "wb") as out:
                    for chunk in chunks:
                        out.write(chunk)
                        written += len(chunk)
                if not written:  # raw save: the check gunzip_chunks makes when decompressing
                    raise empty_object(label, resource.object_id)
            except TruncatedObjectError:
                cut_off = True
                raise
            return written

        try:
            size = call_with_retries(attempt, self._settings.retry)
            os.replace(partial, path)
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise
        logger.debug("%s: saved %d bytes to %s", label, size, path)
        return path

    def save_many(
        self, resources: list[Resource], output_directory: str, decompress: bool
    ) -> list[str]:
        """Save resources in parallel (download_workers threads); paths in input order."""
        targets: dict[str, Resource] = {}
        for resource in resources:
            path = safe_target_path(
                resource.url.url, output_directory, decompress=decompress, label=describe(resource)
            )
            if path in targets:
                # Parallel writes to one file would interleave; the official client loses data here.
                raise DownloadError(
                    f"{describe(resource)} and {describe(targets[path])} would both be saved as "
                    f"{os.path.basename(path)}",
                    object_id=resource.object_id,
                )
            targets[path] = resource
        workers = min(self._settings.download_workers, len(resources))
        if workers <= 1:
            return [self.save(r, output_directory, decompress) for r in resources]
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dap-download") as pool:
            futures = [
                pool.submit(self.save, r, output_directory, decompress, stop) for r in resources
            ]
            done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                stop.set()
                for future in futures:
                    future.cancel()
                raise failed[0].exception()  # type: ignore[misc]
        return [future.result() for future in futures]
