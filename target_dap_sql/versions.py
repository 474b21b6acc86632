"""Table versions of other taps' streams: ACTIVATE_VERSION of a FULL_TABLE sync.

A version loads like a DAP snapshot: into a staging table that replaces the live table at its
end (sinks.py, the dialects' `swap_staging`), so the rows the version no longer has are deleted,
or kept and marked deleted with `hard_delete: false`. While a version is staged, STATE lines keep
the stream's bookmark as it was when the version began (`sinks.state_to_emit`).

Taps announce versions in two ways, both handled here:

- singer-sdk taps (`emit_activate_version_messages`) send ACTIVATE_VERSION at the START of a
  FULL_TABLE sync only (a child stream: at the start of each parent's sync, the same version);
- pipelinewise-style taps send it at the start and at the end.

An ACTIVATE_VERSION starts the version. It ends at an ACTIVATE_VERSION of the same version once
records have arrived (a later one of that version changes nothing: the table is that version
already, and more of its records upsert into it), or at the end of the input: the input ending
normally completes a start-only tap's version; an error or a kill leaves the live table as it
was. Another version restarts it (with a warning, as for DAP).

Two ACTIVATE_VERSIONs replace nothing, because the target cannot tell the version's rows from
older ones: one arriving after the stream's records were already loaded into the live table in
this run (a pipelinewise tap's later runs, which send only the closing one; warned), and one of
a stream whose bookmark names a replication key (a pipelinewise tap's INCREMENTAL sync, which
announces its lasting version at every run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from target_dap_sql.dialects import Dialect
from target_dap_sql.guards import refuse_empty_swap
from target_dap_sql.reader import Envelope
from target_dap_sql.sinks import StreamSink

logger = logging.getLogger("target_dap_sql")

#: Bookmark members that say a stream syncs incrementally (Singer's convention).
_INCREMENTAL_KEYS = ("replication_key", "replication_key_value")


def syncs_incrementally(state: Any, stream: str) -> bool:
    """Whether the tap's STATE gives the stream an incremental bookmark."""
    bookmarks = state.get("bookmarks") if isinstance(state, dict) else None
    entry = bookmarks.get(stream) if isinstance(bookmarks, dict) else None
    return isinstance(entry, dict) and any(k in entry for k in _INCREMENTAL_KEYS)


def activate(sink: StreamSink, envelope: Envelope, state: Any, source: str, dialect: Dialect,
             allow_empty: bool) -> None:
    """An ACTIVATE_VERSION of another tap's stream (`source`: its name in the input, whose
    bookmark STATE holds; `sink` may be a stream map's output)."""
    version = envelope.version
    assert version is not None
    if sink.in_snapshot:
        if version == sink.snapshot_version:
            if sink.snapshot_records:
                finish(sink, envelope, state, dialect, allow_empty)
            return  # nothing staged yet: a repeated start (an empty parent's child sync)
        logger.warning("Version %s of '%s' was never finished; starting version %s instead",
                       sink.snapshot_version, sink.stream, version)
        sink.snapshot_version = None
    elif version == sink.activated_version:
        return
    elif syncs_incrementally(state, source):
        logger.info("ACTIVATE_VERSION %s of '%s', whose bookmark is incremental: its records "
                    "upsert into the table", version, sink.stream)
        return
    elif sink.records_received > sink.records_before_version:
        logger.warning(
            "ACTIVATE_VERSION %s of '%s' came after records already loaded into the table in "
            "this run: rows of older versions cannot be told apart and stay", version,
            sink.stream)
        sink.activated_version = version
        return
    sink.begin_snapshot(version, state, state_key=source)


def finish(sink: StreamSink, envelope: Envelope, state: Any, dialect: Dialect,
           allow_empty: bool) -> None:
    """Swap the staged version in (an empty one only where `refuse_empty_swap` allows it)."""
    version = sink.snapshot_version
    refuse_empty_swap(sink, envelope, dialect, allow_empty)
    sink.end_snapshot(state)
    sink.activated_version = version
    sink.records_before_version = sink.records_received


def finish_at_end_of_input(sinks: Iterable[StreamSink], state: Any, dialect: Dialect,
                           allow_empty: bool) -> None:
    """The input ended normally: every staged version of another tap's stream is complete."""
    for sink in sinks:
        if sink.layout.dap is None and sink.in_snapshot:
            closing = Envelope(type="ACTIVATE_VERSION", stream=sink.stream,
                               version=sink.snapshot_version)
            finish(sink, closing, state, dialect, allow_empty)
