"""target-dap-sql: the Singer target (singer-sdk `Target` with its own fast record path).

Commit points and STATE: a stream's buffer is committed when it holds `batch_size_rows` keys, and
every stream is committed when `batch_max_seconds` have passed or the input ends. A meta row only
advances inside the transaction that commits its stream's records, and a STATE line is written to
stdout only after every stream has committed everything that preceded it (at-least-once).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from types import FrameType
from typing import Any, ClassVar

from singer_sdk import Target
from singer_sdk.helpers.capabilities import (
    CapabilitiesEnum,
    PluginCapabilities,
    TargetCapabilities,
)
from singer_sdk.plugin_base import _ConfigInput

from target_dap_sql.config_files import check_env_settings, read_config_files
from target_dap_sql.decoding import Decoded
from target_dap_sql.dialects import Dialect, dialect_for_url
from target_dap_sql.dialects.base import key_change_error
from target_dap_sql.dialects.urls import url_secrets
from target_dap_sql.errors import (
    ConfigError,
    InputError,
    RecordBeforeSchemaError,
    TargetDapSQLError,
)
from target_dap_sql.guards import (
    claim_names,
    held_bookmark,
    refuse_chain_gap,
    refuse_empty_swap,
    refuse_foreign_meta_row,
    refuse_shared_source,
)
from target_dap_sql.layout import LayoutOptions, build_layout
from target_dap_sql.mapping import InputMaps
from target_dap_sql.meta import MetaRow, bookmark_from_state
from target_dap_sql.reader import DapMessageReader, Envelope
from target_dap_sql.settings import CONFIG_JSONSCHEMA, BatchLimits
from target_dap_sql.sinks import StreamSink, state_to_emit
from target_dap_sql.workers import ParallelRuns, default_workers

#: Seconds between progress lines while records arrive.
PROGRESS_SECONDS = 10.0


class TargetDapSQL(Target):
    """Replicates DAP (and any other Singer) streams into SQLite, PostgreSQL or MariaDB/MySQL."""

    name = "target-dap-sql"
    package_name = "tap-dap"
    message_reader_class = DapMessageReader  # type: ignore[assignment]
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STRUCTURED_LOGGING,
        PluginCapabilities.ACTIVATE_VERSION,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        TargetCapabilities.TARGET_SCHEMA,
        TargetCapabilities.HARD_DELETE,
        TargetCapabilities.VALIDATE_RECORDS,
    ]
    config_jsonschema = CONFIG_JSONSCHEMA

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        url = self.config.get("sqlalchemy_url")
        if url is not None and not str(url).strip():
            raise ConfigError("setting sqlalchemy_url is empty; leave it out for the default "
                              "sqlite:///dap.db, or give a database URL")
        self._dialect: Dialect = dialect_for_url(url or "sqlite:///dap.db")
        self._options = LayoutOptions(
            default_target_schema=self.config.get("default_target_schema") or None,
            enum_native=self.config.get("enum_type", "native") == "native",
            validate=bool(self.config.get("validate_records", True)),
            hard_delete=bool(self.config.get("hard_delete", True)),
            add_record_metadata=bool(self.config.get("add_record_metadata", False)),
        )
        limits = BatchLimits.from_config(self.config)
        self._batch_rows, self._batch_seconds = limits.rows, limits.seconds
        self._sinks: dict[str, StreamSink] = {}
        self._schemas_seen: dict[str, tuple[bytes, list[str] | None]] = {}
        self._object_owners: dict[str, str] = {}  # database object name -> its stream
        self._meta_rows: dict[tuple[str, str], MetaRow] | None = None
        self._meta_tables_ready = False
        self._versions_not_applied: set[str] = set()  # streams warned about (_activate)
        self._state: Any = None
        self._emitted_state: Any = None
        self._last_commit = self._last_progress = time.monotonic()
        self._progress_rows = 0
        if not self._dialect.stores_nul_characters and isinstance(self.message_reader,
                                                                  DapMessageReader):
            self.message_reader.nul_handling = (
                "replace" if self.config.get("sanitize_null_characters") else "reject")
            self.message_reader.on_nul = self._refuse_nul_characters
        reader = self.message_reader
        self._runs = ParallelRuns(limits.workers or default_workers(),
                                  self._add_run, getattr(reader, "replay", None),  # type: ignore[arg-type]
                                  secrets=url_secrets(str(url or "")))
        if isinstance(reader, DapMessageReader):
            reader.on_record_run, reader.settle_runs = self._process_record_run, self._runs.drain

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        # Skip the SDK's `load_method` and record-metadata settings: this target always upserts
        # by key and defines its own `add_record_metadata`.
        super(Target, cls).append_builtin_config(config_jsonschema)

    def setup_mapper(self) -> None:
        # Stream maps apply to mapped streams only (target_dap_sql.mapping); the others keep
        # the fast record path, which never goes through the SDK's per-record mapper.
        self._maps = InputMaps(self.config, self.logger)

    # --- messages ---------------------------------------------------------------------------

    def _sink(self, envelope: Envelope) -> StreamSink:
        sink = self._sinks.get(envelope.stream or "")
        if sink is None:
            raise RecordBeforeSchemaError(
                f"{envelope.type} before any SCHEMA for this stream", stream=envelope.stream)
        return sink

    def _refuse_nul_characters(self, envelope: Envelope) -> None:
        """A RECORD line holds an escaped NUL: raise naming its column, unless it was text."""
        if self._maps.is_mapped(envelope.stream):
            return  # checked on the mapped record (_process_record_message)
        sink = self._sink(envelope)
        if envelope.record is not None:
            error = sink.decoder.find_nul(envelope.record, sink.stream)
            if error is not None:
                raise error

    def _process_schema_message(self, envelope: Envelope) -> None:  # type: ignore[override]
        stream = envelope.stream
        if not stream or envelope.schema is None:
            raise InputError("SCHEMA message needs 'stream' and 'schema'", stream=stream)
        raw = bytes(envelope.schema)
        if self._schemas_seen.get(stream) == (raw, envelope.key_properties):
            return
        schema = json.loads(raw)
        outputs = self._maps.register(stream, schema, list(envelope.key_properties or []))
        if outputs is None:
            self._load_schema(stream, raw, schema, envelope.key_properties)
        else:
            for output in outputs:
                self._load_schema(output.stream, json.dumps(output.schema).encode(),
                                  output.schema, output.key_properties)
        self._schemas_seen[stream] = (raw, envelope.key_properties)

    def _load_schema(self, stream: str, raw: bytes, schema: dict[str, Any],
                     key_properties: list[str] | None) -> None:
        if stream in self._schemas_seen and self._schemas_seen[stream] == (raw, key_properties):
            return
        layout = build_layout(stream, schema, key_properties, self._options)
        previous = self._sinks.get(stream)
        refuse_shared_source(stream, layout, previous, self._sinks.values())
        if previous is not None:
            if previous.in_snapshot:
                raise InputError("SCHEMA changed in the middle of a snapshot", stream=stream)
            if previous.layout.key_columns != layout.key_columns:
                # Raised before the buffered batch commits: a re-run with the old key loses
                # nothing.
                raise key_change_error(stream, previous.layout.key_columns, layout.key_columns)
            previous.flush(self._state)
        claim_names(self._dialect, layout, self._object_owners)
        if layout.dap is not None and not self._meta_tables_ready:
            self._dialect.ensure_meta_tables()
            self._meta_tables_ready = True
        if self._meta_rows is None:  # (none when the meta table does not exist)
            self._meta_rows = {(r.source_namespace, r.source_table): r
                               for r in self._dialect.read_meta_rows()}
        refuse_foreign_meta_row(layout, self._meta_rows, self._dialect)
        held = None if previous else held_bookmark(self._dialect, layout, self._meta_rows)
        self._dialect.prepare_table(
            layout, drop_removed_columns=bool(self.config.get("drop_removed_columns", False)))
        sink = StreamSink(layout, self._dialect)
        if previous is not None:
            sink.committed_bookmark = previous.committed_bookmark
            sink.chain_checked = previous.chain_checked
        else:
            sink.committed_bookmark = held
        self._sinks[stream] = sink
        self._schemas_seen[stream] = (raw, key_properties)

    def _process_record_message(self, envelope: Envelope) -> None:  # type: ignore[override]
        if envelope.record is None:
            raise InputError("RECORD message has no 'record'", stream=envelope.stream)
        if self._maps.is_mapped(envelope.stream):
            assert envelope.stream is not None
            for output, raw in self._maps.transform(envelope.stream, bytes(envelope.record)):
                sink = self._sinks[output]
                if not sink.chain_checked:
                    self._check_chain(sink)
                if getattr(self.message_reader, "nul_handling", None) == "reject" and (
                        b"\\u0000" in raw):
                    error = sink.decoder.find_nul(raw, output)
                    if error is not None:
                        raise error
                sink.add(raw)
                self._after_records(sink)
            return
        sink = self._sink(envelope)
        if not sink.chain_checked:
            self._check_chain(sink)
        sink.add(envelope.record)
        self._after_records(sink)

    def _process_record_run(self, stream: str, lines: list[bytes]) -> bool:
        """RECORD lines of one stream, decoded together; False: take them line by line."""
        if self._maps.is_mapped(stream):
            return False
        sink = self._sinks.get(stream)
        if sink is None:
            return False
        if self._runs.take(sink, lines, self.message_reader.line_number + 1):  # type: ignore[attr-defined]
            return True
        decoded = sink.decoder.decode_run(lines)
        if decoded is None:
            return False
        self._add_run(sink, decoded)
        return True

    def _add_run(self, sink: StreamSink, decoded: list[Decoded]) -> None:
        """Add decoded records of one stream (here, or by record workers, in input order)."""
        if not sink.chain_checked:
            self._check_chain(sink)
        start = 0
        while start < len(decoded):
            # Flush points fall on the same records as line by line.
            end = start + sink.room(self._batch_rows)
            sink.add_decoded(decoded[start:end] if start or end < len(decoded) else decoded)
            start = end
            self._after_records(sink)

    def _after_records(self, sink: StreamSink) -> None:
        if sink.size >= self._batch_rows:
            sink.flush(self._state)
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_SECONDS:
            self._log_progress(sink, now)
        if now - self._last_commit > self._batch_seconds:
            self._commit_all()

    def _log_progress(self, sink: StreamSink, now: float) -> None:
        """A progress line during long loads (at least every PROGRESS_SECONDS while records
        arrive): without it a 500k-row snapshot is ~20 s of silence."""
        received = sum(s.records_received for s in self._sinks.values())
        rate = (received - self._progress_rows) / max(now - self._last_progress, 1e-9)
        self.logger.info("Loading '%s': %s rows received so far, %s rows/s", sink.stream,
                         f"{sink.records_received:,}", f"{rate:,.0f}")
        self._last_progress, self._progress_rows = now, received

    def _process_state_message(self, envelope: Envelope) -> None:  # type: ignore[override]
        if envelope.value is None:
            raise InputError("STATE message has no 'value'")
        state = json.loads(bytes(envelope.value))
        for sink in self._sinks.values():
            if sink.chain_checked:
                continue
            since = bookmark_from_state(self._state, sink.layout.state_key)
            if since is not None and since != bookmark_from_state(state, sink.layout.state_key):
                self._check_chain(sink)  # a bookmark moves with no records
        self._state = state

    def _check_chain(self, sink: StreamSink) -> None:
        """Before a stream's first change: `_state` holds where the tap started from."""
        refuse_chain_gap(sink, self._state, self._dialect.meta_table_label)

    def _process_activate_version_message(self, envelope: Envelope) -> None:  # type: ignore[override]
        if self._maps.is_mapped(envelope.stream):
            assert envelope.stream is not None
            for output in self._maps.outputs(envelope.stream):
                self._activate(self._sinks[output], envelope)
        else:
            self._activate(self._sink(envelope), envelope)

    def _activate(self, sink: StreamSink, envelope: Envelope) -> None:
        if envelope.version is None:
            raise InputError("ACTIVATE_VERSION message has no 'version'", stream=sink.stream)
        if sink.layout.dap is None:
            # singer-sdk taps mark a version's start only, and `meltano run` ends the input
            # normally when the tap fails: a version's end cannot be told from a failure.
            if sink.stream not in self._versions_not_applied:
                self._versions_not_applied.add(sink.stream)
                self.logger.warning("ACTIVATE_VERSION of '%s' (not a DAP stream) is not "
                                    "applied: rows the new version lacks stay in the table",
                                    sink.stream)
            return
        if sink.layout.merges_snapshots:  # canvas_logs snapshots merge by design
            return
        if sink.in_snapshot and sink.snapshot_version == envelope.version:
            refuse_empty_swap(sink, envelope, self._dialect,
                              bool(self.config.get("allow_empty_snapshots")))
            sink.end_snapshot(self._state)
        else:
            if sink.in_snapshot:
                self.logger.warning("Snapshot %s of '%s' was never finished; restarting it",
                                    sink.snapshot_version, sink.stream)
                sink.snapshot_version = None
            sink.begin_snapshot(envelope.version, self._state)

    def _process_batch_message(self, envelope: Envelope) -> None:  # type: ignore[override]
        raise InputError("BATCH messages are not supported", stream=envelope.stream)

    # --- commits and state ------------------------------------------------------------------

    def _commit_all(self) -> None:
        for sink in self._sinks.values():
            sink.flush(self._state)
        # Slices loading in the background (any stream kind) are committed before a STATE
        # line can cover them; if one failed, its error ends the run before the STATE.
        self._dialect.settle()
        self._last_commit = time.monotonic()
        state = state_to_emit(self._state, self._sinks.values())
        if state is not None and state != self._emitted_state:
            self.emit_state(state)
            self._emitted_state = state

    def emit_state(self, state: Any) -> None:
        """Write a STATE line (everything it covers is committed). In-process callers
        (dap_replicator) override it: their state lives in the meta rows."""
        sys.stdout.write(json.dumps(state, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def rows_loaded(self) -> dict[str, int]:
        """Rows written per stream so far in this run."""
        return {name: sink.rows_loaded for name, sink in self._sinks.items()}

    def process_lines(self, file_input: Any) -> Any:  # type: ignore[misc]
        # Wrapped here, not in `listen`: the SDK's test runner and embedding code call it alone.
        try:
            return super().process_lines(file_input)
        except BaseException as exc:
            try:
                if not isinstance(exc, SystemExit):
                    # A slice loading in the background is valid input before the error: let
                    # it commit (it moves no bookmark), roll back what is open. The first error
                    # is the one raised. Also on Ctrl-C in a program embedding the target
                    # (KeyboardInterrupt): an open transaction would hold its locks (SQLite: the
                    # whole file) for as long as that program keeps the target. Not on SIGTERM
                    # (SystemExit): the process ends now, without waiting for a load.
                    with contextlib.suppress(Exception):
                        self._dialect.close()
            finally:
                self._runs.close()  # also on SIGTERM: no worker outlives the target
            raise

    def process_endofpipe(self) -> None:
        try:
            self._runs.drain()
            for sink in self._sinks.values():
                if sink.in_snapshot:
                    self.logger.warning(
                        "Input ended inside the snapshot of '%s' (no final ACTIVATE_VERSION): "
                        "the live table is left unchanged", sink.stream)
            self._commit_all()
            for sink in self._sinks.values():
                sink.log_record_count()
                self.logger.info("Stream '%s': %d rows loaded", sink.stream, sink.rows_loaded)
        except BaseException as exc:
            # The first error is the one raised (closing a lost connection raises too).
            try:
                with contextlib.suppress(Exception):
                    if isinstance(exc, SystemExit):  # SIGTERM: a load in flight is not waited for
                        self._dialect.interrupt()
                    self._dialect.close()
            finally:
                self._runs.close()
            raise
        self._runs.close()
        self._dialect.close()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # Do not commit from a signal handler: the open transaction rolls back, and the STATE
        # already written covers everything committed.
        self.logger.error("Terminated by signal %d; nothing after the last commit is kept "
                          "(the last STATE line covers what was committed)", signum)
        sys.exit(128 + signum)

    # --- CLI --------------------------------------------------------------------------------

    @classmethod
    def cb_config(cls, ctx: Any, param: Any, value: tuple[str, ...]) -> _ConfigInput:
        config, parse_env = read_config_files(value)
        if parse_env:
            check_env_settings(cls.config_jsonschema["properties"], os.environ)
        return _ConfigInput(config=config, parse_env=parse_env)

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        try:
            super().invoke(*args, **kwargs)
        except TargetDapSQLError as exc:
            cls.logger.error("target-dap-sql: %s", exc)
            sys.exit(1)


def read_settings(paths: list[str]) -> dict[str, Any]:
    """The target's settings from `--config` values, merged and validated as for a normal run
    (what the admin commands work with)."""
    merged, parse_env = read_config_files(paths)
    target = TargetDapSQL(config=merged, parse_env_config=parse_env, validate_config=True)
    return dict(target.config)


def cli() -> None:
    """`target-dap-sql [--config …]` loads Singer messages; `target-dap-sql drop|list|…` manages.

    Admin commands are recognised before the SDK's click command sees argv, so the SDK's own
    options and behaviour stay exactly as they are.
    """
    # Imported here: a loading run does not pay for the admin commands' imports (yaml).
    from target_dap_sql.admin import ADMIN_HELP, admin_command
    from target_dap_sql.admin import main as admin_main
    from target_dap_sql.process_exit import exit_at_once_on_success

    if admin_command(sys.argv[1:]) is not None:
        sys.exit(admin_main(sys.argv[1:], read_settings))
    command = TargetDapSQL.cli
    command.epilog = ADMIN_HELP
    try:
        command()
    except SystemExit as done:
        exit_at_once_on_success(done)
        raise
    except TargetDapSQLError as exc:  # raised while click reads the options (--config)
        TargetDapSQL.logger.error("target-dap-sql: %s", exc)
        sys.exit(1)

