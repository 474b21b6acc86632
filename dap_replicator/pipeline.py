"""`tap-dap | target-dap-sql` for one table inside this process: the same classes, the same
messages, through an OS pipe instead of a shell pipe.

The tap runs on a worker thread writing Singer messages into the pipe; the target reads them on
the calling thread and loads them exactly as the CLI does (snapshot staging and swap, meta rows
committed with the data). Its STATE lines are not printed: the meta rows are the state. If the
target fails, the pipe's read end is closed and the tap stopped, so no thread outlives the call.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import IO, Any

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import Message

from tap_dap.streams import DAPTableStream
from tap_dap.tap import TapDap
from target_dap_sql.reader import INPUT_BUFFER_BYTES
from target_dap_sql.target import TargetDapSQL

logger = logging.getLogger("dap_replicator")

#: Write buffer of the tap's end of the pipe (records are handed over in 256 KiB chunks).
PIPE_BUFFER_BYTES = 256 * 1024
#: How long to wait for the tap thread to stop once the target has failed.
TAP_STOP_SECONDS = 60.0


class _PipeWriter(MsgSpecWriter):
    """The tap's message writer, writing to the pipe instead of stdout."""

    def __init__(self, output: IO[bytes]) -> None:
        super().__init__()
        self._output = output

    def write_message(self, message: Message) -> None:
        self._output.write(self.format_message(message))


class InProcessTap(TapDap):
    """tap-dap on a session the caller owns (never closed here), writing into ``output``."""

    def __init__(self, *, session: Any, output: IO[bytes], **kwargs: Any) -> None:
        self._given_session = session
        self.output = output
        super().__init__(message_writer=_PipeWriter(output), **kwargs)

    @property
    def session(self) -> Any:
        return self._given_session

    def _setup_signal_handlers(self) -> None:
        pass  # a library call must not take over the caller's SIGINT/SIGTERM


class InProcessTarget(TargetDapSQL):
    """target-dap-sql keeping its STATE instead of printing it."""

    def __init__(self, **kwargs: Any) -> None:
        self.last_state: Any = None
        super().__init__(**kwargs)

    def emit_state(self, state: Any) -> None:
        self.last_state = state

    def _setup_signal_handlers(self) -> None:
        pass


@dataclass(frozen=True)
class PipelineOutcome:
    rows_written: int
    #: Whether the table was (re)loaded from a snapshot; None if the tap finished no job.
    snapshot: bool | None


def run_pipeline(
    session: Any, tap_config: dict[str, Any], state: dict[str, Any] | None,
    target_config: dict[str, Any], stream: str,
) -> PipelineOutcome:
    """Run the tap (config ``tap_config``, input ``state``) into the target; raise the first
    error of either (the tap's own errors as tap_dap / tap_dap.client exceptions, the target's
    as target_dap_sql ones)."""
    target = InProcessTarget(config=target_config, validate_config=True)
    read_fd, write_fd = os.pipe()
    reader = open(read_fd, "rb", buffering=INPUT_BUFFER_BYTES)  # noqa: SIM115
    writer = open(write_fd, "wb", buffering=PIPE_BUFFER_BYTES)  # noqa: SIM115
    try:
        tap = InProcessTap(session=session, output=writer, config=tap_config, state=state,
                           validate_config=True)
    except BaseException:
        writer.close()
        reader.close()
        raise
    tap_errors: list[BaseException] = []
    thread = threading.Thread(target=_run_tap, args=(tap, writer, tap_errors),
                              name=f"dap-replicator-tap[{stream}]", daemon=True)
    thread.start()
    try:
        with reader:
            target.listen(reader)
    except BaseException:
        # The tap may be waiting for a job or blocked on the full pipe: both end now.
        tap.close()
        thread.join(TAP_STOP_SECONDS)
        if tap_errors:
            logger.debug("%s: the tap stopped too: %s", stream, tap_errors[0])
        raise
    thread.join()
    if tap_errors:
        raise tap_errors[0]
    table_stream = tap.streams.get(stream)
    job = table_stream.synced_job if isinstance(table_stream, DAPTableStream) else None
    return PipelineOutcome(
        rows_written=sum(target.rows_loaded().values()),
        snapshot=None if job is None else job.is_snapshot,
    )


def _run_tap(tap: InProcessTap, writer: IO[bytes], errors: list[BaseException]) -> None:
    try:
        tap.sync_and_check()
    except BaseException as exc:  # handed to the calling thread
        errors.append(exc)
    finally:
        try:
            writer.close()  # end of input for the target
        except OSError as exc:  # the target stopped reading (it failed; its error is raised)
            if not errors:
                errors.append(exc)
