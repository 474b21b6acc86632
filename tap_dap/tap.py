"""tap-dap: the Singer tap for Instructure's Data Access Platform (Canvas Data 2)."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Sequence
from functools import cached_property
from typing import IO, Any, NoReturn

from singer_sdk import Tap
from singer_sdk.configuration._dict_config import merge_missing_config_jsonschema
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import MapExpressionError, StreamMapConfigError
from singer_sdk.helpers.capabilities import (
    FLATTENING_CONFIG,
    STREAM_MAPS_CONFIG,
    PluginCapabilities,
    TapCapabilities,
)
from singer_sdk.plugin_base import _ConfigInput

from tap_dap import mapping
from tap_dap.client import Credentials, DAPClient, DAPClientError, RetryPolicy
from tap_dap.discovery import discover_tables
from tap_dap.errors import ConfigurationError, StreamsFailedError, StreamSyncError, TapDapError
from tap_dap.schema import ANNOTATION
from tap_dap.settings import CONFIG_JSONSCHEMA, TapSettings, check_env_settings
from tap_dap.state import read_config_files, read_json_file_handle, validate_state
from tap_dap.streams import DAPTableStream
from tap_dap.sync import SyncCoordinator
from tap_dap.tuning import (
    enlarge_stdout_pipe,
    exit_at_once_on_success,
    limit_malloc_retention,
)

logger = logging.getLogger("tap-dap")

#: HTTP read size for object downloads; gzip expands it ~5-10x per decompressed piece.
DOWNLOAD_CHUNK_BYTES = 128 * 1024


class TapDap(Tap):
    """Replicates DAP tables: one stream per table, a snapshot first, then incremental changes."""

    name = "tap-dap"
    package_name = "tap-dap"
    dynamic_catalog = True
    message_writer_class = MsgSpecWriter
    config_jsonschema = CONFIG_JSONSCHEMA
    #: Where RECORD lines go (None: stdout). An in-process caller (dap_replicator) sets it,
    #: together with a message writer writing to the same file.
    output: IO[bytes] | None = None
    # No BATCH: records are already cheap on the fast path. Stream maps and flattening: see
    # tap_dap.mapping (unmapped streams keep the fast path).
    capabilities = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        TapCapabilities.TEST,
        PluginCapabilities.ABOUT,
        PluginCapabilities.ACTIVATE_VERSION,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """The stream map and flattening settings, but not `batch_config` (no BATCH).

        singer-sdk 0.54's Tap calls PluginBase's version with PluginBase's default capabilities
        and adds batch_config; this lists exactly what the capabilities above offer.
        """
        merge_missing_config_jsonschema(STREAM_MAPS_CONFIG, config_jsonschema)
        merge_missing_config_jsonschema(FLATTENING_CONFIG, config_jsonschema)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._client: DAPClient | None = None
        self._session: Any = None
        self._session_lock = threading.Lock()
        self._coordinator: SyncCoordinator | None = None
        self.failures: list[StreamSyncError] = []
        super().__init__(*args, **kwargs)

    @cached_property
    def settings(self) -> TapSettings:
        return TapSettings.from_config(self.config)

    @property
    def session(self) -> Any:
        """The DAP session shared by discovery, job scheduling and downloads (thread-safe)."""
        with self._session_lock:
            if self._session is None:
                settings = self.settings
                credentials = Credentials.create(
                    client_id=settings.client_id, client_secret=settings.client_secret
                )
                # Small HTTP chunks keep each download's decompressed pieces small (RSS budget).
                self._client = DAPClient(
                    settings.base_url, credentials, download_chunk_size=DOWNLOAD_CHUNK_BYTES,
                    request_timeout=settings.request_timeout_seconds,
                    object_download_timeout=settings.object_download_timeout_seconds,
                    retry=RetryPolicy(max_time=settings.retry_budget_seconds,
                                      max_retry_after=settings.max_retry_after_seconds),
                )
                self._session = self._client.__enter__()
                atexit.register(self.close)
            return self._session

    @property
    def output_buffer(self) -> IO[bytes]:
        return self.output if self.output is not None else sys.stdout.buffer

    @property
    def snapshot_version(self) -> int:
        """ACTIVATE_VERSION value of this run's snapshots: milliseconds since the epoch."""
        return self.initialized_at

    def close(self) -> None:
        """Stop background threads and close the DAP session (idempotent)."""
        if self._coordinator is not None:
            self._coordinator.close()
        with self._session_lock:
            if self._client is not None:
                self._client.__exit__(None, None, None)
            self._client = self._session = None

    # -- discovery and state --------------------------------------------------------------------

    def discover_streams(self) -> Sequence[DAPTableStream]:
        tables = discover_tables(self.session, self.settings)
        return [DAPTableStream(self, t.namespace, t.table, t.schema) for t in tables]

    @property
    def catalog_dict(self) -> dict:
        # The SDK's catalog model drops unknown keywords; keep where the stream comes from
        # visible, but not the embedded DAP schema: catalog tools (Meltano's `select --list`)
        # would list its key/value members as properties. SCHEMA messages carry all of it.
        catalog = super().catalog_dict
        for entry in catalog.get("streams", []):
            stream = self.streams.get(entry.get("tap_stream_id"))
            if isinstance(stream, DAPTableStream):
                annotation = stream.table_schema.schema[ANNOTATION]
                entry["schema"][ANNOTATION] = {
                    k: v for k, v in annotation.items() if k != "schema"
                }
        return catalog

    def setup_mapper(self) -> None:
        """The SDK's mapper, checked against the streams that exist (see tap_dap.mapping)."""
        try:
            super(Tap, self).setup_mapper()  # the mapper alone; streams register below
        except (MapExpressionError, StreamMapConfigError) as exc:
            raise ConfigurationError(f"setting stream_maps: {exc}") from None
        # Like the SDK's Tap.setup_mapper (which registers the catalog's streams), but with the
        # schema each stream sends: its DAP provenance and without deselected properties.
        streams = {n: s for n, s in self.streams.items() if isinstance(s, DAPTableStream)}
        mapping.check_config(
            self.config.get("stream_maps") or {},
            {n: s.sent_schema() for n, s in streams.items()},
        )
        for name, stream in streams.items():
            mapping.register(self.mapper, name, stream.sent_schema())
        mapping.check_aliases(
            {n: self.mapper.stream_maps[n] for n, s in streams.items() if s.selected}
        )

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(validate_state(state))

    # -- sync -----------------------------------------------------------------------------------

    def coordinator_for(self, stream: DAPTableStream) -> SyncCoordinator:
        """The run's coordinator, created at the first stream with every selected stream's job."""
        if self._coordinator is None:
            planned = [
                s
                for s in self.streams.values()
                if s.selected and not (isinstance(s, DAPTableStream) and s.dropped_by_maps)
            ]
            if stream not in planned:
                planned.append(stream)
            requests = [s.table_request() for s in planned if isinstance(s, DAPTableStream)]
            self._coordinator = SyncCoordinator(
                self.session,
                self.settings,
                requests,
                snapshot_version=(
                    self.snapshot_version if self.settings.emit_activate_version else None
                ),
            )
        elif not self._coordinator.plans(stream.name):
            self._coordinator.add(stream.table_request())
        return self._coordinator

    def record_failure(self, error: StreamSyncError) -> None:
        if not error.logged:
            self.logger.error("%s", error)
            error.logged = True
        self.failures.append(error)

    def sync_and_check(self) -> None:
        """Sync every selected stream; raise StreamsFailedError if any of them failed."""
        try:
            self.sync_all()
        finally:
            self.close()
        if self.failures:
            total = sum(1 for s in self.streams.values() if s.selected)
            raise StreamsFailedError(self.failures, total)

    @classmethod
    def cb_config(cls, ctx: Any, param: Any, value: tuple[str, ...]) -> _ConfigInput:
        config, parse_env = read_config_files(value)
        if parse_env:
            check_env_settings(os.environ)
        return _ConfigInput(config=config, parse_env=parse_env)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
    ) -> None:
        # Same as Tap.invoke, plus: the state file is checked before any API call, and a run in
        # which some streams failed ends non-zero after the others were synced.
        super(Tap, cls).invoke(about=about, about_format=about_format)  # --about exits here
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        state_dict = None
        if state is not None:
            state_dict = validate_state(read_json_file_handle(state, "state"))
        tap = cls(
            config=config.config,
            state=state_dict,
            catalog=None if catalog is None else read_json_file_handle(catalog, "catalog"),
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        tap.sync_and_check()


def cli() -> None:
    """Console script: the SDK's CLI, with expected failures reduced to one clear error line."""
    limit_malloc_retention()
    enlarge_stdout_pipe()
    try:
        # Exits by itself on success, on usage errors and (click) with 1 on a broken stdout pipe.
        TapDap.cli()
    except SystemExit as done:
        exit_at_once_on_success(done)
        raise
    except (TapDapError, DAPClientError) as exc:
        _fail(str(exc))
    except (MapExpressionError, StreamMapConfigError) as exc:
        _fail(f"setting stream_maps: {exc}")


def _fail(message: str) -> NoReturn:
    line = f"tap-dap: error: {message}"
    if "SINGER_SDK_LOG_CONFIG" in os.environ:
        # Under Meltano the log is parsed (structured logging): an ERROR record is shown as an
        # error, a raw stderr line as [info]. Either way it stays one line.
        logger.error("%s", line)
    else:
        sys.stderr.write(line + "\n")
    sys.exit(1)
