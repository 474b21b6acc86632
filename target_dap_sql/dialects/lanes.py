"""Spreading a batch of DAP changes over two connections by key.

One connection applies a slice of changes as a chain of statements the server runs one after the
other (COPY, upsert, delete, commit), each on one CPU core; the client's decoding of the next
slice and the server's work on this one are the only overlap. A second connection (a "lane")
that applies the other half of the keys lets the server work on both halves at once.

Every key always goes to the same lane, and each lane applies its slices in order, so a key's
actions are applied in the order they came: the end state of every row is what one connection
would leave. What differs is only which slices are committed at a given moment; that is
already free for slices that move no bookmark (a re-run applies them again, idempotently), and
a slice that moves the bookmark commits its meta row after both lanes have committed its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from target_dap_sql.dialects.base import Batch
from target_dap_sql.layout import TableLayout

#: A slice smaller than this stays on one connection (a second one would cost more than it saves).
MIN_LANE_ROWS = 2_000


def key_of(layout: TableLayout) -> Callable[[tuple], Any]:
    """The function giving a decoded row's key (the value itself for a one-column key)."""
    names = [c.name for c in layout.record_columns]
    positions = [names.index(k) for k in layout.key_columns]
    if len(positions) == 1:
        only = positions[0]
        return lambda row: row[only]
    return lambda row: tuple(row[i] for i in positions)


def split(batch: Batch, key: Callable[[tuple], Any]) -> tuple[Batch, Batch]:
    """The batch's rows in two halves by the hash of their key (one key, one half)."""
    halves: tuple[tuple[list[Any], ...], ...] = (([], [], [], []), ([], [], [], []))
    for index, rows in enumerate((batch.upserts, batch.deletes)):
        keys = batch.keys[index] if batch.keys is not None else map(key, rows)
        _split_rows(rows, keys, halves[0][index::2], halves[1][index::2])
    return tuple(  # type: ignore[return-value]
        Batch(rows, deletes, batch.encoded, (row_keys, delete_keys))
        for rows, deletes, row_keys, delete_keys in halves)


def _split_rows(rows: Sequence[Any], keys: Iterable[Any], even: tuple[list[Any], ...],
                odd: tuple[list[Any], ...]) -> None:
    """Rows (and their keys) into ``even`` or ``odd`` (each: rows list, keys list)."""
    put = ((even[0].append, even[1].append), (odd[0].append, odd[1].append))
    for row, row_key in zip(rows, keys, strict=True):
        add_row, add_key = put[hash(row_key) & 1]
        add_row(row)
        add_key(row_key)
