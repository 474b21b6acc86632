"""Lazy synthetic rows: row ``i`` version ``gen`` derives from (seed, table, i, gen), never stored.

Value columns are split into two fixed groups with coprime pool sizes; row template ``j`` takes
group A from pool slot ``j % POOL_A`` and group B from ``j % POOL_B``. Each group's text is rendered
once per (layout, schema epoch), and from those the whole line tail (everything after the key) of
each of the ``COMBINATIONS`` templates; a line is then ``prefix + key + tails[j % COMBINATIONS]``,
for base rows (``fast_lines``) and changed versions alike.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from tap_dap.emulator.layout import Layout
from tap_dap.emulator.schema import Column, SchemaVersion, TableSchema
from tap_dap.emulator.values import NULL_SHARE, column_pool, json_text

# Small coprime pools (437 value combinations): a row's group text recurs within deflate's 32 KiB
# window, so level-1 gzip runs ~3x faster than with 1021/1031 pools (measured: 1M-row submissions
# TSV 0.7 s instead of 2.4 s, JSONL 2.8 s instead of 6.9 s). Fewer distinct values per column is the
# price; keys stay unique and every escaping case still occurs.
POOL_A = 19
POOL_B = 23
COMBINATIONS = POOL_A * POOL_B  # coprime: template j's two slots are fixed by j % COMBINATIONS
_MASK = (1 << 64) - 1


def template_index(index: int, gen: int) -> int:
    """Which value combination version ``gen`` of row ``index`` uses (gen 0 = the row itself)."""
    if gen == 0:
        return index
    mixed = (index * 0x9E3779B97F4A7C15 + gen * 0xBF58476D1CE4E5B9) & _MASK
    return (mixed ^ (mixed >> 31)) % COMBINATIONS


class RowGenerator:
    def __init__(self, seed: int, where: str, schema: TableSchema, rows: int,
                 null_share: float = NULL_SHARE) -> None:
        self.seed = seed
        self.null_share = null_share
        self.where = where
        self.schema = schema
        self.rows = rows
        original = [c.name for c in schema.value_columns]
        self._group_a = set(original[: (len(original) + 1) // 2])
        self._pools: dict[tuple[str, tuple[str, ...] | None], list[Any]] = {}
        self._texts: dict[tuple, tuple[list[bytes], list[bytes]]] = {}
        self._tails: dict[tuple, list[bytes]] = {}
        self._lock = threading.Lock()
        key = schema.key_columns[0]
        self._key_kind = key.kind if len(schema.key_columns) == 1 else "composite"
        self._seed_mix = hash_text(f"{seed}:{where}")

    # ---- keys ----

    def key(self, index: int) -> tuple[Any, ...]:
        kind = self._key_kind
        if kind == "int":
            return (index + 1,)
        if kind == "uuid":
            return (self._uuid_key(index),)
        if kind in ("string", "enum"):
            return (f"k{index + 1:010d}",)
        raise ValueError(f"{self.where}: cannot generate composite or {kind} keys")

    def _uuid_key(self, index: int) -> str:
        # Leading 12 hex digits grow with the index so key order equals index order (cheap truth).
        tail = ((index + 1) * 0x9E3779B97F4A7C15 ^ self._seed_mix) & _MASK
        return f"{index:08x}-{index >> 32 & 0xFFFF:04x}-4{tail >> 52 & 0xFFF:03x}-" \
               f"{8 | tail >> 50 & 3:x}{tail >> 38 & 0xFFF:03x}-{tail & 0xFFFFFFFFFFFF:012x}"

    def key_texts(self, layout: Layout, start: int, stop: int) -> list[bytes]:
        if self._key_kind == "int":
            numbers = "\n".join(map(str, range(start + 1, stop + 1))).encode()
            if layout.format == "jsonl":
                return [b'"' + layout.key_columns[0].name.encode() + b'":' + n
                        for n in numbers.split(b"\n")]
            return numbers.split(b"\n")
        if self._key_kind == "uuid":
            quote = '"' if layout.format == "jsonl" else ""
            label = f'"{layout.key_columns[0].name}":' if layout.format == "jsonl" else ""
            return [f"{label}{quote}{self._uuid_key(i)}{quote}".encode()
                    for i in range(start, stop)]
        return [layout.key_text(self.key(i)).encode() for i in range(start, stop)]

    def key_texts_at(self, layout: Layout, indices: Iterable[int]) -> list[bytes]:
        """Key texts of scattered rows (changed versions), as ``layout.key_text`` renders them."""
        if self._key_kind not in ("int", "uuid"):
            return [layout.key_text(self.key(i)).encode() for i in indices]
        # int and uuid texts need no escaping in any format, so the label is the only decoration
        jsonl = layout.format == "jsonl"
        label = f"{json_text(layout.key_columns[0].name)}:".encode() if jsonl else b""
        if self._key_kind == "int":
            return [b"%s%d" % (label, i + 1) for i in indices]
        quote = b'"' if jsonl else b""
        return [b"".join((label, quote, self._uuid_key(i).encode(), quote)) for i in indices]

    # ---- values ----

    def _pool(self, column: Column, epoch: SchemaVersion) -> list[Any]:
        labels = epoch.enum_labels.get(column.name)
        cache_key = (column.name, tuple(labels) if labels is not None else None)
        pool = self._pools.get(cache_key)
        if pool is None:
            size = POOL_A if column.name in self._group_a else POOL_B
            pool = column_pool(self.seed, self.where, column, size, self.rows, labels,
                               self.null_share)
            self._pools[cache_key] = pool
        return pool

    def _columns_at(self, columns: Iterable[Column], epoch: SchemaVersion) -> list[Column]:
        return [c for c in columns if c.added_ts <= epoch.ts]

    def value(self, index: int, gen: int, epoch: SchemaVersion,
              columns: list[Column]) -> dict[str, Any]:
        """Python values of one row version; columns added after ``epoch`` are None."""
        j = template_index(index, gen)
        with self._lock:
            out: dict[str, Any] = {}
            for column in columns:
                if column.added_ts > epoch.ts:
                    out[column.name] = None
                    continue
                pool = self._pool(column, epoch)
                out[column.name] = pool[j % len(pool)]
            return out

    def texts(self, layout: Layout, epoch: SchemaVersion) -> tuple[list[bytes], list[bytes]]:
        """Pre-rendered value parts for group A (POOL_A slots) and group B (POOL_B slots)."""
        cache_key = (layout.format, layout.mode, layout.schema_version, epoch.version)
        with self._lock:
            cached = self._texts.get(cache_key)
            if cached is not None:
                return cached
            present = {c.name: c for c in self._columns_at(layout.value_columns, epoch)}
            groups = []
            for in_a, size in ((True, POOL_A), (False, POOL_B)):
                fields = [f for f in layout.value_fields if (f.column in self._group_a) is in_a]
                pools = {f.column: self._pool(present[f.column], epoch)
                         for f in fields if f.column in present}
                groups.append([
                    layout.value_text({name: pool[slot] for name, pool in pools.items()},
                                      fields).encode()
                    for slot in range(size)
                ])
            result = (groups[0], groups[1])
            self._texts[cache_key] = result
            return result

    def tails(self, layout: Layout, epoch: SchemaVersion) -> list[bytes]:
        """What follows the key on the line of template ``t`` (value part and newline), by ``t``."""
        cache_key = (layout.format, layout.mode, layout.schema_version, epoch.version)
        cached = self._tails.get(cache_key)
        if cached is not None:
            return cached
        part_a, part_b = self.texts(layout, epoch)
        if layout.format == "jsonl":
            tails = [_jsonl_tail(part_a[t % POOL_A], part_b[t % POOL_B])
                     for t in range(COMBINATIONS)]
        else:
            tails = [part_a[t % POOL_A] + part_b[t % POOL_B] + b"\n" for t in range(COMBINATIONS)]
        with self._lock:
            return self._tails.setdefault(cache_key, tails)


def _jsonl_tail(part_a: bytes, part_b: bytes) -> bytes:
    # each part is ``,"name":json...`` per non-null column; the object drops the first comma
    value = (part_a + part_b)[1:]
    return b'},"value":{' + value + b"}}\n"


def fast_lines(gen: RowGenerator, layout: Layout, epoch: SchemaVersion, prefix: bytes,
               start: int, stop: int, duplicate_every: int = 0) -> tuple[bytes, int]:
    """Base rows ``start..stop`` (version 0) sharing one ``prefix`` (same meta) as one bytes chunk.

    Returns (chunk, line count). With ``duplicate_every``, rows whose index is a multiple of it are
    written twice (canvas_logs delivers at-least-once, so duplicate keys are part of the contract).
    """
    tails = gen.tails(layout, epoch)
    keys = gen.key_texts(layout, start, stop)
    pieces: list[bytes] = []
    add = pieces.extend
    for key, i in zip(keys, range(start, stop), strict=True):
        row = (prefix, key, tails[i % COMBINATIONS])
        add(row)
        if duplicate_every and i % duplicate_every == 0:
            add(row)
    lines = stop - start
    if duplicate_every:
        lines += len(range(-(-start // duplicate_every) * duplicate_every, stop, duplicate_every))
    return b"".join(pieces), lines


def hash_text(text: str) -> int:
    """A stable 64-bit hash (Python's ``hash`` of str is salted per process)."""
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & _MASK
    return value
