"""One Singer stream per DAP table: snapshot first, then incremental changes since the bookmark.

A stream's messages: SCHEMA (again whenever the job's data has another schema version), for a
snapshot ACTIVATE_VERSION before and after the records — except for ``canvas_logs`` tables, whose
snapshots merge and get no ACTIVATE_VERSION at all (see tap_dap.sync) — the RECORDs, then STATE.
The bookmark's ``schema_version`` is always the version of the SCHEMA that was sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from singer_sdk import Stream, Tap, metrics
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage, SchemaMessage

from tap_dap import compiled_maps, mapping
from tap_dap.client import DAPClientError, format_timestamp
from tap_dap.errors import MalformedDataError, StreamSyncError, TapDapError
from tap_dap.jobs import ReadyJob, TableRequest
from tap_dap.output import RecordEncoding
from tap_dap.schema import ALWAYS_SENT, StreamSchema, convert_table_schema, without_properties
from tap_dap.settings import TapSettings
from tap_dap.state import parse_bookmark_timestamp
from tap_dap.sync import SyncCoordinator

#: Member of the closing ACTIVATE_VERSION of a snapshot: rows of the DAP snapshot.
SOURCE_ROWS = "x-dap-rows"
#: Seconds between progress lines while a stream's records are written.
PROGRESS_INTERVAL = 5.0


class DapTap(Protocol):
    """What a DAP stream needs of its tap (tap_dap.tap.TapDap). Named here, so the tap imports
    its streams and the streams never import the tap (no import circle)."""

    @property
    def settings(self) -> TapSettings: ...

    @property
    def session(self) -> Any: ...

    def coordinator_for(self, stream: DAPTableStream) -> SyncCoordinator: ...

    def record_failure(self, error: StreamSyncError) -> None: ...


class DAPTableStream(Stream):
    """A DAP table. Records bypass the SDK's per-record path (see tap_dap.output)."""

    def __init__(self, tap: Tap, namespace: str, table: str, table_schema: StreamSchema) -> None:
        super().__init__(tap, schema=table_schema.schema, name=table_schema.stream_name)
        self.namespace = namespace
        self.table = table
        self.primary_keys = table_schema.key_properties
        # DAP changes carry deletes, like log-based replication; there is no replication key.
        self.forced_replication_method = "INCREMENTAL"
        self._table_schema = table_schema
        # Only tap_dap.tap.TapDap creates these streams, and it is a DapTap.
        self._dap_tap = cast(DapTap, tap)
        self._dropped: frozenset[str] | None = None
        #: Set when the stream has maps the fast path does not apply (see record_encoding).
        self._mapped: mapping.MappedRecords | None = None
        #: The job whose data this run wrote completely (None until then).
        self.synced_job: ReadyJob | None = None
        self._line_mapper: mapping.MappedRecords | None = None
        self._compiled: compiled_maps.CompiledMap | None | bool = False  # False: not worked out yet

    @property
    def table_schema(self) -> StreamSchema:
        return self._table_schema

    def bookmark(self) -> dict[str, Any]:
        """This stream's bookmark from the input state (never creates an empty entry)."""
        return dict(self.tap_state.get("bookmarks", {}).get(self.name) or {})

    def table_request(self) -> TableRequest:
        """What to ask DAP for: changes since the bookmark, or a snapshot."""
        settings = self._dap_tap.settings
        since = None
        timestamp = self.bookmark().get("timestamp")
        if self.replication_method == "FULL_TABLE":
            since = None  # a catalog can ask for a snapshot on every run
        elif timestamp:
            since = parse_bookmark_timestamp(timestamp, f"state bookmark {self.name}.timestamp")
        elif settings.start_mode == "incremental":
            since = settings.start_date
        return TableRequest(self.name, self.namespace, self.table, since, self.record_encoding())

    def record_encoding(self) -> RecordEncoding:
        """How the fast path writes this stream's rows: without the deselected properties, and
        with a compiled stream map applied (else the SDK maps them, see _write_job_output)."""
        compiled = self.compiled_map
        if compiled is None:
            return RecordEncoding(self.name, self.dropped)
        return RecordEncoding(compiled.alias, self.dropped | compiled.dropped, compiled.hashed,
                              self._map_one_line)  # fmt: skip

    @property
    def compiled_map(self) -> compiled_maps.CompiledMap | None:
        """The stream's maps as bytes rewrites, when they are that simple (tap_dap.mapping)."""
        if self._compiled is False:
            self._register_maps()
            self._compiled = None
            if not mapping.is_plain(self.stream_maps, self.name):
                self._compiled = compiled_maps.compiled_map(
                    self.config.get("stream_maps") or {},
                    self.config.get("stream_map_config") or {},
                    self.name, list(self.stream_maps), self.sent_schema(),
                )  # fmt: skip
                if self._compiled is not None:
                    self.logger.info(
                        "%s: stream map applied as byte rewrites on the fast path (dropped: %s; "
                        "hashed: %s)", self.name, ", ".join(sorted(self._compiled.dropped)) or "-",
                        ", ".join(sorted(self._compiled.hashed)) or "-",
                    )  # fmt: skip
        return self._compiled

    def _map_one_line(self, line: bytes) -> bytes:
        """The SDK's stream map of one RECORD line: for the rows a compiled map cannot rewrite
        exactly (tap_dap.rewrite). Called from the prefetch threads, maybe before SCHEMA."""
        mapper = self._line_mapper
        if mapper is None:
            mapper = mapping.MappedRecords(self.name, self.stream_maps, self.sent_schema())
            self._line_mapper = mapper
        return bytes(mapper.map_chunk([line])[0])

    # -- property selection -----------------------------------------------------------------------

    @property
    def metadata(self) -> Any:
        metadata = super().metadata
        if not self._tap_input_catalog:
            # Discovery: meta and _sdc_deleted_at are sent whatever the selection, like keys.
            for name in ALWAYS_SENT:
                entry = metadata.get(("properties", name))
                if entry is not None:
                    entry.inclusion = "automatic"
        return metadata

    @property
    def dropped(self) -> frozenset[str]:
        """Value properties the catalog deselects (SDK semantics: ``selected: false`` or
        ``inclusion: unsupported``). Keys, ``meta`` and ``_sdc_deleted_at`` are always sent.

        Taken from the catalog's breadcrumbs, not from the current schema, so a property that
        only appears with a later schema version stays deselected too.
        """
        if self._dropped is None:
            mask = self.mask
            always = ALWAYS_SENT | set(self._table_schema.key_properties)
            dropped: set[str] = set()
            known = set(self._table_schema.schema["properties"])
            for breadcrumb in list(self.metadata):
                if len(breadcrumb) != 2 or breadcrumb[0] != "properties" or mask[breadcrumb]:
                    continue
                name = breadcrumb[1]
                if name in always:
                    self.logger.warning(
                        "%s: property %r cannot be deselected (key or replication metadata); "
                        "it is sent", self.name, name,
                    )  # fmt: skip
                    continue
                if name not in known:
                    self.logger.warning(
                        "%s: deselected property %r is not in the table's schema (version %d)",
                        self.name, name, self._table_schema.version,
                    )  # fmt: skip
                dropped.add(name)
            if dropped:
                self.logger.info(
                    "%s: deselected properties not sent: %s", self.name, ", ".join(sorted(dropped))
                )
            self._dropped = frozenset(dropped)
        return self._dropped

    # -- SDK hooks --------------------------------------------------------------------------------

    def get_records(self, context: Any) -> Iterable[dict]:
        raise TapDapError("DAP streams write their records directly; get_records is not used")

    def get_batch_config(self, config: Any) -> None:
        return None  # BATCH is not offered; records are already cheap on the fast path

    def _generate_schema_messages(self) -> Generator[SchemaMessage, None, None]:
        # The live table schema (with its x-dap annotation), not the catalog's copy: the SDK's
        # catalog model drops unknown keywords, and records always follow the server's schema.
        sent = self.sent_schema()
        mapping.register(self._tap.mapper, self.name, sent)
        self._stream_maps = None  # re-read: registering replaced them
        self._mapped = None
        if mapping.is_plain(self.stream_maps, self.name):
            yield SchemaMessage(self.name, sent.schema, sent.key_properties, None)
            return
        mapped = mapping.MappedRecords(self.name, self.stream_maps, sent)
        self._line_mapper = mapped
        self._mapped = None if self.compiled_map is not None else mapped
        config = self.config.get("stream_maps") or {}
        for index, stream_map in enumerate(self.stream_maps):
            if not isinstance(stream_map, RemoveRecordTransform):
                computed = mapping.computed_properties(config, self.name, stream_map)
                yield SchemaMessage(
                    stream_map.stream_alias,
                    mapping.mapped_schema(stream_map, sent, computed, primary=index == 0),
                    stream_map.transformed_key_properties,
                    None,
                )

    def sent_schema(self) -> StreamSchema:
        """The stream's schema without its deselected properties (before any stream map)."""
        return without_properties(self._table_schema, self.dropped)

    @property
    def dropped_by_maps(self) -> bool:
        """A stream mapped to null (``stream_maps: {name: null}`` or ``__else__: null``)."""
        self._register_maps()
        return all(isinstance(m, RemoveRecordTransform) for m in self.stream_maps)

    def _register_maps(self) -> None:
        if self.name not in self._tap.mapper.stream_maps:
            mapping.register(self._tap.mapper, self.name, self.sent_schema())
            self._stream_maps = None

    def finalize_state_progress_markers(self, state: dict | None = None) -> None:
        # No progress markers exist; only write the bookmark if this stream advanced it.
        self._write_state_message()

    def _sync_records(
        self, context: Any = None, *, write_messages: bool = True
    ) -> Generator[dict, Any, Any]:
        if not write_messages:
            raise TapDapError(f"{self.name}: syncing without writing messages is not supported")
        if self.dropped_by_maps:
            self.logger.info("%s: mapped to null by stream_maps; no job, nothing sent", self.name)
            yield from ()
            return
        coordinator = self._dap_tap.coordinator_for(self)
        ready: ReadyJob | None = None
        # The SDK's standard METRIC lines: record_count (every minute and at the end) and
        # sync_duration per stream, like any SDK tap; job_duration for the wait on the DAP job
        # and for reading its objects (job_type dap_job_wait / dap_download).
        counter = self.get_record_counter(endpoint=f"{self.namespace}.{self.table}")
        try:
            with counter, self.get_sync_timer():
                with _timer(self.name, "dap_job_wait") as wait:
                    ready = coordinator.ready_job(self.name)
                    wait.tags["job_id"] = ready.job.id
                with _timer(self.name, "dap_download") as download:
                    download.tags["job_id"] = ready.job.id
                    complete = self._write_job_output(coordinator, ready, counter)
        except StreamSyncError as exc:
            self._dap_tap.record_failure(exc)
        except (MalformedDataError, DAPClientError, TapDapError) as exc:
            job_id = ready.job.id if ready is not None else None
            self._dap_tap.record_failure(
                StreamSyncError.from_exception(self.name, exc, job_id=job_id)
            )
        else:
            if complete:
                self._advance_bookmark(ready)
        finally:
            coordinator.finished(self.name)
        yield from ()

    # -- writing ----------------------------------------------------------------------------------

    def _write_job_output(
        self, coordinator: Any, ready: ReadyJob, counter: metrics.Counter
    ) -> bool:
        """Write SCHEMA (if changed), ACTIVATE_VERSION and the records; False if cut short."""
        if ready.schema_version != self._table_schema.version:
            self._refresh_schema(ready.schema_version)
        version = coordinator.snapshot_version(ready)
        if version is not None:
            self._write_activate_version_message(version)
        progress = _Progress(self.logger, self.name, "snapshot" if ready.is_snapshot else "changes")
        limit = self.ABORT_AT_RECORD_COUNT
        out = self._dap_tap.output_buffer
        mapped = self._mapped
        if mapped is not None:
            mapped.reset_counts()
        for chunk, records in coordinator.record_chunks(ready):
            if limit is not None and progress.rows + records > limit:
                # --test / dry runs: stop at the limit, leave the bookmark and the table alone.
                keep = limit - progress.rows
                lines = chunk.split(b"\n")[:keep]
                if mapped is not None:
                    out.write(mapped.map_chunk(lines)[0])
                else:
                    out.write(b"".join(line + b"\n" for line in lines))
                out.flush()
                self.logger.info("%s: stopped after %d records (record limit)", self.name, limit)
                return False
            out.write(chunk if mapped is None else mapped.map_chunk(chunk.split(b"\n"))[0])
            progress.add(records)
            counter.increment(records)
        out.flush()
        if version is not None:
            self._write_snapshot_end(version, progress.rows)
        progress.done(ready)
        return True

    def _write_snapshot_end(self, version: int, source_rows: int) -> None:
        """The closing ACTIVATE_VERSION, saying how many records of the snapshot the tap sent
        for the stream (the DAP rows, or what this tap's own maps kept of them): an empty
        snapshot is then known to be meant, not records lost on the way (target-dap-sql refuses
        to swap in an empty snapshot otherwise). Other targets ignore the extra member."""
        mapped = self._mapped
        for stream_map in self.stream_maps:
            if isinstance(stream_map, RemoveRecordTransform):
                continue
            alias = stream_map.stream_alias
            sent = source_rows if mapped is None else mapped.written.get(alias, 0)
            self._tap.write_message(SnapshotEndMessage(alias, version, sent))

    def _refresh_schema(self, job_version: int) -> None:
        """Announce the schema of the job's data before its records.

        The server serves only its current schema. If that is not the job's version (the table
        changed again since the job ran), its schema is still the best description of the data —
        DAP schema changes only add — so it is sent with a warning, and the bookmark will say
        which version was sent.
        """
        fresh = self._dap_tap.session.get_table_schema(self.namespace, self.table)
        if fresh.version != job_version:
            self.logger.warning(
                "%s: the job's data has schema version %d but the server now serves version %d; "
                "announcing version %d", self.name, job_version, fresh.version, fresh.version,
            )  # fmt: skip
        if fresh.version == self._table_schema.version:
            return  # what was sent already describes the data as well as anything can
        self.logger.info(
            "%s: schema version changed from %d to %d",
            self.name, self._table_schema.version, fresh.version,
        )  # fmt: skip
        self._table_schema = convert_table_schema(
            self.namespace, self.table, fresh.schema, fresh.version
        )
        self._schema = self._table_schema.schema
        self.primary_keys = self._table_schema.key_properties
        self._write_schema_message()

    def _advance_bookmark(self, ready: ReadyJob) -> None:
        self.synced_job = ready
        state = self.stream_state
        state["timestamp"] = format_timestamp(ready.timestamp)
        # The version of the SCHEMA sent, which may differ from the job's (see _refresh_schema).
        state["schema_version"] = self._table_schema.version
        self.state_manager.is_flushed = False
        self._write_state_message()


@dataclass
class SnapshotEndMessage(ActivateVersionMessage):
    source_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        message = super().to_dict()
        message[SOURCE_ROWS] = message.pop("source_rows")
        return message


def _timer(stream: str, job_type: str) -> metrics.Timer:
    return metrics.Timer(
        metrics.Metric.JOB_DURATION, {metrics.Tag.STREAM: stream, metrics.Tag.JOB_TYPE: job_type}
    )


class _Progress:
    """Row counting plus a progress line every few seconds."""

    def __init__(self, logger: logging.Logger, stream: str, what: str) -> None:
        self._logger = logger
        self._stream = stream
        self._what = what
        self.rows = 0
        self._started = self._last = time.monotonic()

    def add(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._logger.info(
                "%s: %s rows written so far, %s rows/s",
                self._stream, f"{self.rows:,}", f"{self.rows / (now - self._started):,.0f}",
            )  # fmt: skip

    def done(self, ready: ReadyJob) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._logger.info(
            "%s: %s of job %s written: %s rows in %.1f s (%s rows/s), bookmark %s",
            self._stream, self._what, ready.job.id, f"{self.rows:,}", elapsed,
            f"{self.rows / elapsed:,.0f}", format_timestamp(ready.timestamp),
        )  # fmt: skip
