"""Turn a job's plan into gzip objects on disk (built once, then streamed on every download).

Rows come from a ``PlanCursor`` in index order: runs of untouched base rows and runs of changed
versions, both assembled from the generator's pre-rendered line tails (``rows.py``); only versions
with explicit values (fixtures) are rendered record by record. Objects are compressed the way pigz
does it: ~4 MiB segments are deflated independently on a thread pool (zlib releases the GIL), each
ended by a sync flush, and concatenated into ONE gzip member -- readers that stop after the first
member (the official client's ``zlib.decompressobj``) still see everything.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tap_dap.emulator.clock import format_ts
from tap_dap.emulator.layout import Layout
from tap_dap.emulator.rows import COMBINATIONS, fast_lines, template_index
from tap_dap.emulator.store import Plan, Table, Version

CHUNK_ROWS = 16_384
SEGMENT_BYTES = 4 << 20
MAX_PENDING_SEGMENTS = 4
DUPLICATE_EVERY = 97  # canvas_logs snapshots repeat ~1% of keys, like the real web_logs
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
FINAL_EMPTY_BLOCK = b"\x03\x00"


@dataclass(frozen=True)
class ObjectFile:
    id: str
    path: Path
    size: int
    rows: int


def _deflate_segment(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


class _GzipObject:
    """One object file being written: raw deflate segments between a gzip header and trailer."""

    def __init__(self, path: Path, level: int, executor: Executor) -> None:
        self.path = path
        self.level = level
        self.executor = executor
        self.handle: BinaryIO = path.open("wb")
        self.handle.write(GZIP_HEADER)
        self.crc = 0
        self.size = 0
        self.rows = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._pending: deque[Future[bytes]] = deque()

    def add(self, data: bytes, rows: int) -> None:
        self.rows += rows
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= SEGMENT_BYTES:
            self._submit()

    def _submit(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self._pending.append(self.executor.submit(_deflate_segment, data, self.level))
        while len(self._pending) > MAX_PENDING_SEGMENTS:  # bounded memory
            self.handle.write(self._pending.popleft().result())

    def close(self) -> int:
        self._submit()
        while self._pending:
            self.handle.write(self._pending.popleft().result())
        self.handle.write(FINAL_EMPTY_BLOCK)
        self.handle.write(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        self.handle.close()
        return self.path.stat().st_size


class PlanCursor:
    """Yields the plan's output in index order, at most ``limit`` lines per call."""

    def __init__(self, table: Table, plan: Plan, layout: Layout, snapshot: bool) -> None:
        self.table = table
        self.plan = plan
        self.layout = layout
        self.changed = sorted(plan.overrides)
        self.position = 0  # into self.changed
        self.cursor = 0  # next base index
        self.base_epoch = table.schema.version_at(plan.base_ts)
        prefix = layout.prefix(format_ts(plan.base_ts), None if snapshot else "U")
        self.base_prefix = prefix.encode()
        self.every = DUPLICATE_EVERY if plan.duplicates else 0
        self.versions = ChangeLines(table, layout, snapshot)

    def take(self, limit: int) -> tuple[bytes, int] | None:
        """The next chunk (bytes, line count) of at most ``limit`` lines, or None at the end.

        Only where a base row is written twice (``duplicates``) and just one line was left may
        the chunk be one line longer: a row and its duplicate never straddle two objects.
        """
        pieces: list[bytes] = []
        lines = 0
        base_count = self.plan.base_count
        while lines < min(limit, CHUNK_ROWS):
            has_next = self.position < len(self.changed)
            next_changed = self.changed[self.position] if has_next else base_count
            stop = min(next_changed, base_count)
            if self.cursor < stop:
                chunk, count = self._base_rows(stop - self.cursor, limit - lines)
            elif has_next:
                chunk, count = self._changed_rows(min(limit, CHUNK_ROWS) - lines)
            else:
                break
            pieces.append(chunk)
            lines += count
        if not lines:
            return None
        return b"".join(pieces), lines

    def _base_rows(self, available: int, limit: int) -> tuple[bytes, int]:
        count = min(available, limit, CHUNK_ROWS)
        while self.every and count > 1 and count + self._dups(count) > limit:
            count -= 1
        assert self.table.generator is not None
        chunk = fast_lines(self.table.generator, self.layout, self.base_epoch, self.base_prefix,
                           self.cursor, self.cursor + count, self.every)
        self.cursor += count
        return chunk

    def _dups(self, count: int) -> int:
        first = -(-self.cursor // self.every) * self.every
        return len(range(first, self.cursor + count, self.every))

    def _changed_rows(self, wanted: int) -> tuple[bytes, int]:
        """Consecutive changed versions, up to the next untouched base row or ``wanted`` lines.

        Each version gives at most one line (snapshots skip deletes), so taking ``wanted`` of them
        can never overshoot; the caller comes back for more when deletes were skipped.
        """
        changed, base_count = self.changed, self.plan.base_count
        first = end = self.position
        cursor = self.cursor
        limit = min(len(changed), first + wanted)
        while end < limit and cursor >= min(changed[end], base_count):
            cursor = max(cursor, changed[end] + 1)
            end += 1
        overrides = self.plan.overrides
        self.position, self.cursor = end, cursor
        return self.versions.render([overrides[i] for i in changed[first:end]])


class ChangeLines:
    """Lines of changed record versions, built from the same line tails as the base rows.

    A generated version (``value`` None) is ``prefix(ts, action) + key + tails[template]``;
    the tails depend on the schema in force at the version's ``ts``, so columns added later stay
    null. Versions with explicit values take the record-by-record path (``_version_line``).
    """

    def __init__(self, table: Table, layout: Layout, snapshot: bool) -> None:
        self.table = table
        self.layout = layout
        self.snapshot = snapshot
        self._prefixes: dict[tuple[int, str], bytes] = {}
        self._tails: dict[int, list[bytes]] = {}
        self.delete_tail = layout.join("", "", None).encode()

    def render(self, versions: list[Version]) -> tuple[bytes, int]:
        """(chunk, line count) of ``versions`` in order."""
        snapshot = self.snapshot
        keys = self._key_texts([v.index for v in versions])
        prefixes, tails = self._prefixes, self._tails
        pieces: list[bytes] = []
        add = pieces.extend
        lines = 0
        for version, key in zip(versions, keys, strict=True):
            ts, action = version.ts, version.action
            if action == "D":
                if snapshot:
                    continue
                tail = self.delete_tail
            elif version.value is None:
                by_template = tails.get(ts) or self._tails_at(ts)
                tail = by_template[template_index(version.index, version.gen) % COMBINATIONS]
            else:
                line = _version_line(self.table, version, self.layout, snapshot)
                assert line is not None
                add((line.encode(),))
                lines += 1
                continue
            prefix = prefixes.get((ts, action)) or self._prefix(ts, action)
            add((prefix, key, tail))
            lines += 1
        return b"".join(pieces), lines

    def _key_texts(self, indices: list[int]) -> list[bytes]:
        table = self.table
        if table.explicit_keys or table.generator is None:
            key_text = self.layout.key_text
            return [key_text(table.key(i)).encode() for i in indices]
        return table.generator.key_texts_at(self.layout, indices)

    def _prefix(self, ts: int, action: str) -> bytes:
        prefix = self.layout.prefix(format_ts(ts), None if self.snapshot else action).encode()
        self._prefixes[ts, action] = prefix
        return prefix

    def _tails_at(self, ts: int) -> list[bytes]:
        assert self.table.generator is not None
        tails = self.table.generator.tails(self.layout, self.table.schema.version_at(ts))
        self._tails[ts] = tails
        return tails


def _version_line(table: Table, version: Version, layout: Layout, snapshot: bool) -> str | None:
    """One version rendered from its value dict: the exact (slow) path, for explicit values."""
    if snapshot and version.action == "D":
        return None
    action = None if snapshot else version.action
    value = version_value(table, version, layout) if version.action == "U" else None
    return layout.line(format_ts(version.ts), action, table.key(version.index), value)


def version_value(table: Table, version: Version, layout: Layout) -> dict:
    if version.value is not None:
        return version.value
    assert table.generator is not None
    epoch = table.schema.version_at(version.ts)
    return table.generator.value(version.index, version.gen, epoch, layout.value_columns)


def write_plan(table: Table, plan: Plan, layout: Layout, snapshot: bool, directory: Path,
               job_id: str, rows_per_object: int, level: int,
               executor: Executor) -> list[ObjectFile]:
    """Write every object of a job; there is always at least one (possibly header-only)."""
    cursor = PlanCursor(table, plan, layout, snapshot)
    header = layout.header().encode()
    objects: list[ObjectFile] = []
    current: _GzipObject | None = None

    def finish(done: _GzipObject) -> None:
        size = done.close()
        objects.append(ObjectFile(f"{job_id}/{done.path.name}", done.path, size, done.rows))

    while True:
        if current is None:
            name = f"part-{len(objects):05d}-{job_id[:8]}.{layout.format}.gz"
            current = _GzipObject(directory / name, level, executor)
            current.add(header, 0)
        taken = cursor.take(rows_per_object - current.rows)
        if taken is None:
            break
        current.add(*taken)
        if current.rows >= rows_per_object:
            finish(current)
            current = None
    if current is not None and (current.rows or not objects):
        finish(current)
    elif current is not None:
        current.close()
        current.path.unlink()
    return objects
