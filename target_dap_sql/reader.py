"""A fast Singer message reader: msgspec envelope decoding that leaves the record as raw JSON.

The record object is decoded later by the stream's typed decoder, so every record is parsed once.
Errors are tagged with the 1-based input line number.
"""

from __future__ import annotations

import gc
import io
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from typing import IO, Any, Literal

import msgspec
from singer_sdk.singerlib.encoding.base import GenericSingerReader

from target_dap_sql.decoding import replace_nul_escapes
from target_dap_sql.errors import InputError


class Envelope(msgspec.Struct, gc=False):
    """The outer Singer message; payloads stay raw JSON until their handler decodes them."""

    type: str
    stream: str | None = None
    record: msgspec.Raw = None  # type: ignore[assignment]
    schema: msgspec.Raw = None  # type: ignore[assignment]
    key_properties: list[str] | None = None
    value: msgspec.Raw = None  # type: ignore[assignment]
    version: int | None = None


_DECODER = msgspec.json.Decoder(Envelope)
#: Read buffer for stdin. With the default 8 KiB every few records give up the GIL for a read and
#: then wait up to a switch interval to get it back from the thread loading the previous batch.
INPUT_BUFFER_BYTES = 1024 * 1024


class DapMessageReader(GenericSingerReader[bytes]):
    """Reads Singer messages (bytes from stdin, or any text/binary file) line by line."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        #: For a database that cannot store NUL (U+0000): "reject" hands a RECORD line holding
        #: an escaped NUL to `on_nul` (which names its column), "replace" makes it U+FFFD.
        #: Only lines that contain the escape pay for either (one substring search per line).
        self.nul_handling: Literal["reject", "replace"] | None = None
        self.on_nul: Callable[[Envelope], None] | None = None

    @property
    def default_input(self) -> IO[bytes]:
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return sys.stdin.buffer  # replaced by something that is not a real file (tests)
        return open(fd, "rb", buffering=INPUT_BUFFER_BYTES, closefd=False)  # noqa: SIM115

    def deserialize_json(self, line: bytes) -> dict:  # pragma: no cover - SDK interface only
        return msgspec.json.decode(line)

    def process_lines(  # type: ignore[override]
        self,
        file_input: IO[Any] | None,
        callbacks: dict[str, Callable[[Any], None]],
    ) -> Counter[str]:
        source = file_input if file_input is not None else self.default_input
        # Everything set up so far lives for the whole run; frozen, the cyclic GC stops
        # rescanning it each time decoded rows pile up (~10% of the target's CPU otherwise).
        gc.freeze()
        try:
            return self._process(source, callbacks)
        finally:
            gc.unfreeze()

    def _process(self, source: Iterable[bytes],
                 callbacks: dict[str, Callable[[Any], None]]) -> Counter[str]:
        stats: Counter[str] = Counter()
        nul: bytes | str | None = None
        if self.nul_handling is not None:
            nul = "\\u0000" if isinstance(source, io.TextIOBase) else b"\\u0000"
        for number, line in enumerate(source, 1):
            self.line_number = number
            # strip() copies the whole line; a message line starts with "{" and is never blank.
            if line[:1] != b"{" and not line.strip():
                continue
            suspect = nul is not None and nul in line
            if suspect and self.nul_handling == "replace":
                line = replace_nul_escapes(line)
                suspect = False
            try:
                envelope = _DECODER.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise InputError(f"not a valid Singer message: {exc}", line=number) from None
            except UnicodeDecodeError as exc:
                raise InputError(f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} in a "
                                 "string)", line=number) from None
            callback = callbacks.get(envelope.type)
            if callback is None:
                raise InputError(f"unknown message type {envelope.type!r}",
                                 stream=envelope.stream, line=number)
            try:
                if suspect and self.on_nul is not None and envelope.type == "RECORD":
                    self.on_nul(envelope)
                callback(envelope)
            except InputError as exc:
                if exc.line is None:
                    exc.line = number
                raise
            stats[envelope.type] += 1
        return stats
