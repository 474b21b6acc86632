"""The fast record path: DAP JSONL lines -> Singer RECORD lines, as bytes.

Only the outer DAP object is decoded (msgspec); the raw ``key`` and ``value`` JSON is spliced into
the flat record unchanged. Re-encoding every value, or the SDK's per-record conform/validate path,
would cost several times more than downloading and decompressing the data.

Records are written by the stream on the main thread to ``sys.stdout.buffer``, the same buffered
writer the SDK's message writer uses, so SCHEMA/STATE/ACTIVATE_VERSION stay in order around them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator

import msgspec
import orjson

from tap_dap.errors import MalformedDataError

logger = logging.getLogger("tap-dap.output")

#: Encoded RECORD bytes are handed over in chunks of about this size (one pipe write each).
CHUNK_BYTES = 256 * 1024


class _Meta(msgspec.Struct, gc=False):
    ts: msgspec.Raw
    action: str = "U"


class _DAPLine(msgspec.Struct, gc=False):
    key: msgspec.Raw
    meta: _Meta
    value: msgspec.Raw = msgspec.Raw()  # empty: absent (deletes, all-null rows)


_decode_line = msgspec.json.Decoder(_DAPLine).decode
_WHITESPACE = b" \t\r\n"
_UPSERT_META = b'"meta":{"action":"U","ts":'
_UPSERT_END = b'},"_sdc_deleted_at":null'
_DELETE_META = b'"meta":{"action":"D","ts":'
_DELETE_MID = b'},"_sdc_deleted_at":'


def _object_body(value: msgspec.Raw) -> bytes | None:
    """The members of a raw JSON object without braces (b"" when empty), None if not an object."""
    raw = bytes(value)
    if raw[:1] != b"{":
        return b"" if raw in (b"", b"null") else None
    body = raw[1:-1]
    if body[:1] and body[0] in _WHITESPACE:
        body = body.strip()
    return body


class RecordEncoder:
    """Turns DAP lines of one stream into Singer RECORD message lines.

    ``version`` is the table version of a snapshot (the ACTIVATE_VERSION value); incremental
    records carry none.
    """

    def __init__(self, stream_name: str, *, version: int | None, where: str) -> None:
        self._prefix = b'{"type":"RECORD","stream":' + orjson.dumps(stream_name) + b',"record":{'
        self._suffix = b"}" + (b',"version":%d' % version if version is not None else b"") + b"}\n"
        self.where = where
        self.skipped_actions = 0

    def encode_into(
        self, lines: Iterable[bytes], out: bytearray, *, first_line_number: int, limit: int
    ) -> int:
        """Append RECORDs for ``lines`` to ``out`` until it holds CHUNK_BYTES or ``limit`` lines.

        Returns the number of lines consumed (including skipped ones); the caller keeps line
        numbers for error messages. ``lines`` must be an iterator for chunked use.
        """
        prefix, suffix = self._prefix, self._suffix
        consumed = 0
        for line in lines:
            consumed += 1
            try:
                row = _decode_line(line)
            except msgspec.DecodeError as exc:
                if not line.strip():
                    continue  # whitespace only: a blank line, skipped like an empty one
                raise self._malformed(first_line_number + consumed - 1, str(exc)) from None
            key = bytes(row.key)
            ts = bytes(row.meta.ts)
            if key[:1] != b"{" or ts[:1] != b'"':
                raise self._malformed(
                    first_line_number + consumed - 1, "'key' must be an object, 'meta.ts' a string"
                )
            action = row.meta.action
            if action == "U":
                body = _object_body(row.value)
                if body is None:
                    raise self._malformed(first_line_number + consumed - 1, "'value' not an object")
                if body:
                    out += b"%b%b,%b,%b%b%b" % (
                        prefix,
                        key[1:-1],
                        body,
                        _UPSERT_META,
                        ts,
                        _UPSERT_END,
                    )
                else:
                    out += b"%b%b,%b%b%b" % (prefix, key[1:-1], _UPSERT_META, ts, _UPSERT_END)
            elif action == "D":
                out += b"%b%b,%b%b%b%b" % (prefix, key[1:-1], _DELETE_META, ts, _DELETE_MID, ts)
            else:
                # The official replicator drops unknown actions too; count them for the log.
                self.skipped_actions += 1
                continue
            out += suffix
            if len(out) >= CHUNK_BYTES or consumed >= limit:
                break
        return consumed

    def _malformed(self, line_number: int, reason: str) -> MalformedDataError:
        return MalformedDataError(
            f"{self.where}, line {line_number}: malformed DAP record: {reason}"
        )


def encode_object(
    encoder: RecordEncoder, lines: Iterator[bytes], *, limit: int | None = None
) -> Iterator[tuple[bytes, int]]:
    """Yield ``(chunk, records in it)`` for one object's lines, at most ``limit`` lines in all."""
    line_number = 1
    remaining = sys.maxsize if limit is None else limit
    while remaining > 0:
        out = bytearray()
        skipped_before = encoder.skipped_actions
        consumed = encoder.encode_into(lines, out, first_line_number=line_number, limit=remaining)
        if consumed == 0:
            break
        line_number += consumed
        remaining -= consumed
        records = consumed - (encoder.skipped_actions - skipped_before)
        if records:
            yield bytes(out), records
    if encoder.skipped_actions:
        logger.warning(
            "%s: skipped %d line(s) whose meta.action is neither U nor D",
            encoder.where, encoder.skipped_actions,
        )  # fmt: skip
