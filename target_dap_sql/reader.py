"""A fast Singer message reader: msgspec envelope decoding that leaves the record as raw JSON.

The record object is decoded later by the stream's typed decoder, so every record is parsed once.
Errors are tagged with the 1-based input line number.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

import msgspec
from singer_sdk.singerlib.encoding.base import GenericSingerReader

from target_dap_sql.errors import InputError


class Envelope(msgspec.Struct):
    """The outer Singer message; payloads stay raw JSON until their handler decodes them."""

    type: str
    stream: str | None = None
    record: msgspec.Raw = None  # type: ignore[assignment]
    schema: msgspec.Raw = None  # type: ignore[assignment]
    key_properties: list[str] | None = None
    value: msgspec.Raw = None  # type: ignore[assignment]
    version: int | None = None


_DECODER = msgspec.json.Decoder(Envelope)


class DapMessageReader(GenericSingerReader[bytes]):
    """Reads Singer messages (bytes from stdin, or any text/binary file) line by line."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0

    @property
    def default_input(self) -> IO[bytes]:
        return sys.stdin.buffer

    def deserialize_json(self, line: bytes) -> dict:  # pragma: no cover - SDK interface only
        return msgspec.json.decode(line)

    def process_lines(  # type: ignore[override]
        self,
        file_input: IO[Any] | None,
        callbacks: dict[str, Callable[[Any], None]],
    ) -> Counter[str]:
        stats: Counter[str] = Counter()
        source = file_input if file_input is not None else self.default_input
        for number, line in enumerate(source, 1):
            self.line_number = number
            if not line.strip():
                continue
            try:
                envelope = _DECODER.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise InputError(f"not a valid Singer message: {exc}", line=number) from None
            callback = callbacks.get(envelope.type)
            if callback is None:
                raise InputError(f"unknown message type {envelope.type!r}",
                                 stream=envelope.stream, line=number)
            try:
                callback(envelope)
            except InputError as exc:
                if exc.line is None:
                    exc.line = number
                raise
            stats[envelope.type] += 1
        return stats
