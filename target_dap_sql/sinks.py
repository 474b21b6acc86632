"""Per-stream loading: decode, deduplicate (last action per key wins), flush, snapshot staging."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import Any

import msgspec
from singer_sdk import metrics

from target_dap_sql.decoding import Decoded, RecordDecoder
from target_dap_sql.dialects.base import Batch, Dialect, RowCodec
from target_dap_sql.layout import TableLayout
from target_dap_sql.meta import Bookmark, MetaRow, bookmark_from_state, meta_row_for

logger = logging.getLogger("target_dap_sql")

_NO_BOOKMARK = object()

#: A stream's rows are committed every this many rows, whatever `batch_size_rows` says. Such a
#: slice moves no bookmark (no meta row, no STATE: a re-run fetches its changes again and applies
#: them idempotently), so a dialect may load it in the background while the next one is decoded;
#: small slices also keep memory low (decoded rows cost ~2 KB each). `batch_size_rows` and
#: `batch_max_seconds` decide when the bookmark moves.
SLICE_ROWS = 10_000


class StreamSink:
    """Buffers one stream's records between commits.

    Records are kept as decoded row tuples keyed by their primary key, so a key's later action
    replaces its earlier one and memory is bounded by the number of distinct keys per batch.
    A key is in at most one of the upsert and delete maps (two maps rather than one of
    ``(row, deleted)`` pairs: a pair per row is one more long-lived object for the cyclic GC),
    except with soft deletes, where a delete marks the upserted row instead of replacing it.
    """

    def __init__(self, layout: TableLayout, dialect: Dialect):
        self.layout = layout
        self.stream = layout.stream
        self.dialect = dialect
        self.decoder = RecordDecoder(layout, dialect.field_type, dialect.converters(layout))
        self._upserts: dict[Any, tuple] = {}
        self._deletes: dict[Any, tuple] = {}
        self._appended: list[Any] = []
        #: Set once the stream's rows are decoded by record workers (workers.py): the buffered
        #: rows are then the codec's encoded rows, and rows decoded here are encoded too.
        self.codec: RowCodec | None = None
        self.committed_bookmark: Bookmark | None = None
        #: Whether the input's bookmark was checked against the database's (guards.py).
        self.chain_checked = False
        #: Version of the snapshot being staged, or None when loading into the live table.
        self.snapshot_version: int | None = None
        #: The stream's bookmark as it stood when the snapshot began (what STATE may still say).
        self.bookmark_before_snapshot: Any = _NO_BOOKMARK
        self.rows_loaded = 0
        #: Records received since the snapshot began (an empty snapshot needs a reason).
        self.snapshot_records = 0
        self.records_received = 0
        # The SDK's record_count METRIC: rows committed, logged at every commit that moves the
        # stream's bookmark (and at the end), as an SDK target logs it per drained batch.
        self.record_counter = metrics.record_counter(self.stream, log_interval=float("inf"))

    @property
    def size(self) -> int:
        return len(self._upserts) + len(self._deletes) + len(self._appended)

    @property
    def in_snapshot(self) -> bool:
        return self.snapshot_version is not None

    def add(self, raw: bytes | msgspec.Raw) -> None:
        decoded = [self.decoder.decode(raw, self.stream)]
        self.add_decoded(decoded if self.codec is None else self.codec.encode(decoded))

    def use_codec(self, codec: RowCodec) -> None:
        """From now on rows arrive encoded by ``codec``; the rows buffered so far are encoded
        here (at most a slice, once per stream)."""
        for rows in (self._upserts, self._deletes):
            rows.update((k, row) for k, row, _ in codec.encode(
                [(k, row, False) for k, row in rows.items()]))  # same keys: order kept
        self._appended = [row for _, row, _ in codec.encode(
            [(None, row, False) for row in self._appended])]
        self.codec = codec

    def room(self, batch_rows: int) -> int:
        """How many more records can be added before a flush is due (at least 1)."""
        return max(1, min(batch_rows, SLICE_ROWS) - self.size)

    def add_decoded(self, decoded: list[Decoded]) -> None:
        """Add (key, row, is_delete) records in order; a full slice is committed."""
        self.snapshot_records += len(decoded)
        self.records_received += len(decoded)
        soft = self.layout.soft_delete
        if self.layout.key_columns:
            upserts, deletes = self._upserts, self._deletes
            for key, row, deleted in decoded:
                if deleted:
                    # A soft delete marks the row an earlier upsert of this batch writes (deletes
                    # apply after upserts): the rows a commit between the two would leave.
                    if not soft:
                        upserts.pop(key, None)
                    deletes[key] = row
                else:
                    upserts[key] = row
                    if deletes:
                        deletes.pop(key, None)
        else:
            # Without a key a delete matches no row: a soft-deleted record (a generic stream's,
            # `_sdc_deleted_at` set) is kept as it came, a hard-deleted one is not stored.
            self._appended.extend(row for _, row, deleted in decoded if soft or not deleted)
        if self.size >= SLICE_ROWS:
            self.flush(None)  # no state: the slice commits without moving the bookmark

    def _take(self) -> Batch:
        upserts = list(self._upserts.values())
        deletes = list(self._deletes.values())
        keys = None
        if self.codec is not None:
            keys = (list(self._upserts) + [None] * len(self._appended), list(self._deletes))
        upserts.extend(self._appended)
        self._upserts, self._deletes, self._appended = {}, {}, []
        return Batch(upserts, deletes, self.codec is not None, keys)

    def meta_for(self, state: Any) -> tuple[MetaRow | None, Bookmark | None]:
        """The meta row to write with the next commit, if the stream's bookmark moved."""
        if self.layout.dap is None or self.in_snapshot:
            return None, None
        bookmark = bookmark_from_state(state, self.layout.state_key)
        if bookmark is None or bookmark == self.committed_bookmark:
            return None, None
        return meta_row_for(self.layout, bookmark), bookmark

    def flush(self, state: Any) -> None:
        """Commit the buffered records (and the meta row, if due) in one transaction."""
        meta, bookmark = self.meta_for(state)
        if not self.size and meta is None:
            return
        batch = self._take()
        if len(batch) or meta is not None:
            self.dialect.write_batch(self.layout, batch, staging=self.in_snapshot, meta=meta)
        self.rows_loaded += len(batch)
        self.record_counter.value += len(batch)
        if bookmark is not None:
            self.committed_bookmark = bookmark
            self.log_record_count()
        if len(batch):
            logger.log(logging.DEBUG if self.in_snapshot else logging.INFO,
                       "Flushed %d rows (%d deletes) to '%s'%s", len(batch),
                       len(batch.deletes), self.stream, " staging" if self.in_snapshot else "")

    def begin_snapshot(self, version: int, state: Any) -> None:
        self.flush(state)
        self.chain_checked = True  # a snapshot continues nothing
        self.snapshot_version = version
        self.snapshot_records = 0
        bookmarks = (state or {}).get("bookmarks", {}) if isinstance(state, dict) else {}
        if self.layout.state_key in bookmarks:
            self.bookmark_before_snapshot = copy.deepcopy(bookmarks[self.layout.state_key])
        elif self.committed_bookmark is not None:
            # No STATE yet in this run: what the meta row says is committed.
            self.bookmark_before_snapshot = self.committed_bookmark.as_state_entry()
        else:
            self.bookmark_before_snapshot = _NO_BOOKMARK
        self.dialect.create_staging(self.layout)
        logger.info("Snapshot of '%s' (version %s) loads into a staging table", self.stream,
                    version)

    def end_snapshot(self, state: Any) -> None:
        batch = self._take()
        self.snapshot_version = None
        meta, bookmark = self.meta_for(state)
        self.dialect.swap_staging(self.layout, batch, meta)
        self.rows_loaded += len(batch)
        self.record_counter.value += len(batch)
        self.bookmark_before_snapshot = _NO_BOOKMARK
        if bookmark is not None:
            self.committed_bookmark = bookmark
        self.log_record_count()

    def log_record_count(self) -> None:
        """A METRIC line with the rows committed since the last one (none if there are none)."""
        if self.record_counter.value:
            self.record_counter.exit()

    def state_entry(self) -> Any:
        """What the emitted STATE may say for this stream while a snapshot is unfinished."""
        return self.bookmark_before_snapshot

    @staticmethod
    def is_unset(entry: Any) -> bool:
        return entry is _NO_BOOKMARK


def state_to_emit(state: Any, sinks: Iterable[StreamSink]) -> Any:
    """The latest STATE, minus bookmarks of snapshots that are not swapped in yet."""
    if state is None:
        return None
    unfinished = [s for s in sinks if s.in_snapshot]
    if not unfinished or not isinstance(state.get("bookmarks"), dict):
        return state
    state = copy.deepcopy(state)
    for sink in unfinished:
        entry = sink.state_entry()
        if StreamSink.is_unset(entry):
            state["bookmarks"].pop(sink.layout.state_key, None)
        else:
            state["bookmarks"][sink.layout.state_key] = entry
    return state
