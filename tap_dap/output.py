"""The fast record path: blocks of DAP JSONL lines -> Singer RECORD lines, as bytes.

Only the outer DAP object is decoded (msgspec, a whole block of lines per call); the raw ``key``
and ``value`` JSON is spliced into the flat record unchanged. Re-encoding every value, or the
SDK's per-record conform/validate path, would cost several times more than downloading and
decompressing the data.

Records are written by the stream on the main thread to ``sys.stdout.buffer``, the same buffered
writer the SDK's message writer uses, so SCHEMA/STATE/ACTIVATE_VERSION stay in order around them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from tap_dap.errors import MalformedDataError
from tap_dap.projection import Projection
from tap_dap.rewrite import HashRule, MemberRewriter

logger = logging.getLogger("tap-dap.output")

#: Encoded RECORD bytes are handed over in chunks of at least this size (one pipe write each).
CHUNK_BYTES = 256 * 1024


class _Meta(msgspec.Struct, gc=False):
    ts: msgspec.Raw
    action: str = "U"


class _DAPLine(msgspec.Struct, gc=False):
    key: msgspec.Raw
    meta: _Meta
    value: msgspec.Raw = msgspec.Raw()  # empty: absent (deletes, all-null rows)


_LINE_DECODER = msgspec.json.Decoder(_DAPLine)
# The exact path of a row whose members are rewritten (see tap_dap.rewrite): members stay raw.
_MEMBERS_DECODER = msgspec.json.Decoder(dict[str, msgspec.Raw] | None)
_encode = msgspec.json.Encoder().encode
_WHITESPACE = b" \t\r\n"
# Bytes that may not follow a value's "{" on the fast path: whitespace (stripped, see
# _object_body) or "}" (no members, so no separating comma).
_NOT_FIRST_MEMBER = frozenset(b" \t\r\n}")
_UPSERT_META = b'"meta":{"action":"U","ts":'
_UPSERT_END = b'},"_sdc_deleted_at":null'
_DELETE_META = b'"meta":{"action":"D","ts":'
_DELETE_MID = b'},"_sdc_deleted_at":'
_BAD_KEY_OR_TS = "'key' must be an object, 'meta.ts' a string"
_EMPTY_KEY = "'key' is an empty object"
_BAD_VALUE = "'value' not an object"
_OPEN_BRACE, _CLOSE_BRACE, _COMMA, _QUOTE = b"{},\""  # byte values, as bytearray items are


class _Decode:
    """A rewriter that sends every row to the exact path (RecordEncoder._append_exact)."""

    @staticmethod
    def apply(out: bytearray, at: int) -> bool:
        return False


_DECODE = _Decode()
_Rewriter = MemberRewriter | Projection | _Decode | None


class _InvalidRow(Exception):
    """A row that decoded but breaks the DAP contract; the block is redone line by line."""


def _object_body(value: msgspec.Raw) -> bytes | None:
    """The members of a raw JSON object without braces (b"" when empty), None if not an object."""
    raw = bytes(value)
    if raw[:1] != b"{":
        return b"" if raw in (b"", b"null") else None
    body = raw[1:-1]
    if body[:1] and body[0] in _WHITESPACE:
        body = body.strip()
    return body


def _is_text(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class RecordEncoding:
    """How one stream's rows become RECORD lines: the stream name they carry (a map's alias)
    and the members rewritten on the way (see RecordEncoder)."""

    stream_name: str
    dropped: frozenset[str] = frozenset()
    hashed: Mapping[str, HashRule] = field(default_factory=dict)
    map_line: Callable[[bytes], bytes] | None = None

    def encoder(self, *, version: int | None, where: str) -> RecordEncoder:
        return RecordEncoder(self.stream_name, version=version, where=where,
                             dropped=self.dropped, hashed=self.hashed,
                             map_line=self.map_line)  # fmt: skip


class RecordEncoder:
    """Turns DAP lines of one stream into Singer RECORD message lines.

    ``version`` is the table version of a snapshot (the ACTIVATE_VERSION value); incremental
    records carry none. ``dropped`` names value properties that are not sent (deselected in the
    catalog, or dropped by a stream map), ``hashed`` the ones a stream map hashes; both are
    rewritten as bytes (tap_dap.rewrite; members only dropped take the cheaper projection of
    tap_dap.projection), other streams keep the splice-only path. A row the byte rewrite
    cannot handle exactly is decoded instead, and its hashing left to ``map_line``: the SDK's
    own stream map of one unmapped RECORD line. A dropped name is dropped from the whole record,
    as the SDK does: a key member of that name (never a key property) goes too.
    """

    def __init__(
        self,
        stream_name: str,
        *,
        version: int | None,
        where: str,
        dropped: frozenset[str] = frozenset(),
        hashed: Mapping[str, HashRule] | None = None,
        map_line: Callable[[bytes], bytes] | None = None,
    ) -> None:
        # Ends before the record's "{": the raw key supplies it.
        self._prefix = b'{"type":"RECORD","stream":' + orjson.dumps(stream_name) + b',"record":'
        self._suffix = b"}" + (b',"version":%d' % version if version is not None else b"") + b"}\n"
        self._upsert_end = _UPSERT_END + self._suffix
        self.where = where
        # A name with a lone surrogate is no UTF-8 text: no row holds it (msgspec refuses such
        # an escape), and the byte searches cannot spell it (orjson refuses it).
        dropped = frozenset(name for name in dropped if _is_text(name))
        self._dropped = tuple(dropped)
        self._rewriter = MemberRewriter(dropped, hashed or {}) if dropped or hashed else None
        # The block check of the deselected names (Projection.block_is_exact): msgspec takes
        # no name with a quote, a backslash or a control character; such names decode every row.
        self._check = Projection(dropped) if dropped and Projection.fits(dropped) else None
        self._projection = self._check if not hashed else None
        if hashed and map_line is None:
            raise ValueError("hashing members needs map_line for the rows it cannot rewrite")
        self._map_line = map_line if hashed else None
        self.skipped_actions = 0
        self._lines_read = 0  # non-blank lines so far, for error messages

    def encode_block(self, block: bytes, out: bytearray) -> int:
        """Append the RECORDs of a block of whole lines to ``out``; returns how many.

        Blocks of one object must come in order: a malformed line raises MalformedDataError
        naming ``where`` and the line's number. Blank (empty or whitespace-only) lines are
        skipped and not counted, so the number is exact for DAP objects, which have none;
        counting the line endings of every block would cost about as much as inflating it.
        """
        start = len(out)
        skipped_before = self.skipped_actions
        try:
            rows = _LINE_DECODER.decode_lines(block)
            self._append_block(rows, out, start, skipped_before)
        except (msgspec.DecodeError, _InvalidRow):
            # Rare: redo the block line by line, only to name the offending line.
            del out[start:]
            self.skipped_actions = skipped_before
            return self._encode_lines(block, out)
        self._lines_read += len(rows)
        return len(rows) - (self.skipped_actions - skipped_before)

    def _append_block(
        self, rows: list[Any], out: bytearray, start: int, skipped_before: int
    ) -> None:
        """Append the rows; with deselected names, each way of cutting them is kept only when
        the block check proves no record of the block holds one, else the next is tried."""
        if not self._dropped:
            self._append_rows(rows, out, self._rewriter)
            return
        check = self._check
        if check is not None:
            for rewriter in (self._projection, self._rewriter):
                if rewriter is None:
                    continue
                self._append_rows(rows, out, rewriter)
                if check.block_is_exact(out, start):
                    return
                # Rare: a duplicated or spaced member, an escaped name (the projection misses
                # them, the rewriter does not), a member in a row's key (both miss it).
                del out[start:]
                self.skipped_actions = skipped_before
        self._append_decoded(rows, out)

    def _append_decoded(self, rows: list[Any], out: bytearray) -> None:
        """Every row decoded, the deselected members dropped from its key too: deselected names
        are never key properties, so a key member of that name is one the source added, and
        the SDK drops it from the record as well."""
        dropped = self._dropped
        for row in rows:
            key = row.key
            if bytes(key)[:1] == b"{" and row.meta.action in ("U", "D"):
                members = _MEMBERS_DECODER.decode(key)
                if members is not None and any(name in members for name in dropped):
                    for name in dropped:
                        members.pop(name, None)
                    row = _DAPLine(msgspec.Raw(_encode(members)), row.meta, row.value)
            self._append_rows((row,), out, _DECODE)

    def _encode_lines(self, block: bytes, out: bytearray) -> int:
        records = 0
        for line in block.split(b"\n"):
            if not line.strip():
                continue
            self._lines_read += 1
            skipped_before = self.skipped_actions
            try:
                self._append_block([_LINE_DECODER.decode(line)], out, len(out), skipped_before)
            except (msgspec.DecodeError, _InvalidRow) as exc:
                raise self._malformed(self._lines_read, str(exc)) from None
            records += 1 - (self.skipped_actions - skipped_before)
        return records

    def _append_exact(self, row: _DAPLine, out: bytearray) -> None:
        """A row the byte rewrite could not handle: its value decoded (members stay raw JSON),
        the dropped members removed, and hashing left to the SDK's stream map."""
        members = _MEMBERS_DECODER.decode(row.value) if row.value else None
        if members is not None:
            for name in self._dropped:
                members.pop(name, None)
        plain = _DAPLine(row.key, row.meta, msgspec.Raw(_encode(members)) if members else b"")
        if self._map_line is None:
            self._append_rows((plain,), out, None)
            return
        line = bytearray()
        self._append_rows((plain,), line, None)
        out += self._map_line(bytes(line))

    def _append_rows(self, rows: Iterable[Any], out: bytearray, rewriter: _Rewriter) -> None:
        # The hot loop of the tap, hence the byte-level style: every row is appended raw and
        # patched in place (the key's closing "}" becomes the "," before the value's members),
        # instead of slicing copies. A valid JSON value ending in "}" is an object, one ending
        # in '"' a string, so checking the last byte appended validates the whole value.
        prefix, upsert_end, suffix = self._prefix, self._upsert_end, self._suffix
        for row in rows:
            meta = row.meta
            action = meta.action
            if action != "U" and action != "D":
                self._skip(row)
                continue
            row_start = len(out)
            out += prefix
            out += row.key
            if out[-1] != _CLOSE_BRACE:
                raise _InvalidRow(_BAD_KEY_OR_TS)
            if out[-2] == _OPEN_BRACE:
                raise _InvalidRow(_EMPTY_KEY)
            out[-1] = _COMMA
            if action == "U":
                value = row.value
                at = len(out)
                out += value
                if value and out[at] == _OPEN_BRACE and out[at + 1] not in _NOT_FIRST_MEMBER:
                    del out[at]
                    out[-1] = _COMMA
                else:
                    del out[at:]
                    body = _object_body(value)
                    if body is None:
                        raise _InvalidRow(_BAD_VALUE)
                    if body:
                        out += body
                        out += b","
                if rewriter is not None and not rewriter.apply(out, at):
                    del out[row_start:]
                    self._append_exact(row, out)
                    continue
                out += _UPSERT_META
                out += meta.ts
                if out[-1] != _QUOTE:
                    raise _InvalidRow(_BAD_KEY_OR_TS)
                out += upsert_end
            else:
                out += _DELETE_META
                out += meta.ts
                if out[-1] != _QUOTE:
                    raise _InvalidRow(_BAD_KEY_OR_TS)
                out += _DELETE_MID
                out += meta.ts
                out += suffix

    def _skip(self, row: Any) -> None:
        # The official replicator drops unknown actions too; count them for the log.
        if bytes(row.key)[:1] != b"{" or bytes(row.meta.ts)[:1] != b'"':
            raise _InvalidRow(_BAD_KEY_OR_TS)
        self.skipped_actions += 1

    def _malformed(self, line_number: int, reason: str) -> MalformedDataError:
        return MalformedDataError(
            f"{self.where}, line {line_number}: malformed DAP record: {reason}"
        )


def encode_object(
    encoder: RecordEncoder, blocks: Iterable[bytes]
) -> Iterator[tuple[bytearray, int]]:
    """Yield ``(chunk, records in it)`` for one object's blocks of whole lines (line_blocks)."""
    out = bytearray()
    records = 0
    for block in blocks:
        records += encoder.encode_block(block, out)
        if len(out) >= CHUNK_BYTES:
            yield out, records  # handed over, never touched again: no copy
            out = bytearray()
            records = 0
    if records:
        yield out, records
    if encoder.skipped_actions:
        logger.warning(
            "%s: skipped %d line(s) whose meta.action is neither U nor D",
            encoder.where, encoder.skipped_actions,
        )  # fmt: skip
