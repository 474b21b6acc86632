"""A fast Singer message reader: input in blocks, runs of RECORD lines decoded together.

Consecutive RECORD lines of one stream written the way taps write them (compact JSON, `type`,
`stream`, `record` first) go to the stream's typed decoder as one run: one msgspec call for the
run. Any other line, and every line of a run that fails, takes the line-by-line path: envelope
decoding that leaves the record as raw JSON for the stream's decoder. Errors are tagged with the
1-based input line number either way.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Literal

import msgspec
from singer_sdk.singerlib.encoding.base import GenericSingerReader

from target_dap_sql.decoding import replace_nul_escapes
from target_dap_sql.errors import InputError, undecodable


class Envelope(msgspec.Struct, gc=False):
    """The outer Singer message; payloads stay raw JSON until their handler decodes them."""

    type: str
    stream: str | None = None
    record: msgspec.Raw = None  # type: ignore[assignment]
    schema: msgspec.Raw = None  # type: ignore[assignment]
    key_properties: list[str] | None = None
    value: msgspec.Raw = None  # type: ignore[assignment]
    version: int | None = None
    #: tap-dap's closing ACTIVATE_VERSION of a snapshot: how many rows the DAP snapshot had
    #: (another tap, or a mapper in between, does not say: None).
    source_rows: int | None = msgspec.field(default=None, name="x-dap-rows")


_DECODER = msgspec.json.Decoder(Envelope)
#: Read buffer for stdin. With the default 8 KiB every few records give up the GIL for a read and
#: then wait up to a switch interval to get it back from the thread loading the previous batch.
INPUT_BUFFER_BYTES = 1024 * 1024
_NUL = b"\\u0000"
_NUL_TEXT = "\\u0000"


class _RelaxedGC:
    """gc.freeze() and the thresholds are process-wide: with several targets reading in one
    process (dap_replicator, one thread per table) the first one in sets them and the last
    one out restores them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: tuple[int, ...] = ()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            self._users += 1
            if self._users == 1:
                self._saved = gc.get_threshold()
                gc.freeze()
                gc.set_threshold(50_000, 20, 10)
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    gc.set_threshold(*self._saved)
                    gc.unfreeze()


_relaxed_gc = _RelaxedGC()


class DapMessageReader(GenericSingerReader[bytes]):
    """Reads Singer messages from stdin (in blocks), a binary or text file, or lines."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        #: For a database that cannot store NUL (U+0000): "reject" hands a RECORD line holding
        #: an escaped NUL to `on_nul` (which names its column), "replace" makes it U+FFFD.
        #: Only groups of lines that contain the escape go line by line (one search per group).
        self.nul_handling: Literal["reject", "replace"] | None = None
        self.on_nul: Callable[[Envelope], None] | None = None
        #: Takes a run of RECORD lines of one stream (all starting with `_run_prefix`); returns
        #: False to have them handled line by line instead (errors, unusual records).
        self.on_record_run: Callable[[str, list[bytes]], bool] | None = None
        #: Called before any line is handled on its own (not as part of a run): runs the target
        #: handed to record workers are added first, so the order of the input is kept.
        self.settle_runs: Callable[[], None] | None = None
        self._run_stream: str | None = None
        self._run_prefix: bytes | None = None
        self._callbacks: dict[str, Callable[[Any], None]] = {}

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
        # Decoding allocates a few containers per row and creates no garbage cycles, so a
        # collection every 50,000 allocations instead of 700 is plenty: another ~15% of the
        # target's CPU on a 300k-row snapshot (2.85 -> 2.44 CPU-s), same peak memory.
        with _relaxed_gc():
            return self._process(source, callbacks)

    def _process(self, source: Iterable[Any],
                 callbacks: dict[str, Callable[[Any], None]]) -> Counter[str]:
        stats: Counter[str] = Counter()
        self._callbacks = callbacks
        if isinstance(source, io.TextIOBase):
            for line in source:  # text input (tests, other tools): line by line, no runs
                self._message(line, stats, self.nul_handling is not None and _NUL_TEXT in line)
            return stats
        needle = _NUL if self.nul_handling is not None else None
        for lines, nul_possible in self._line_groups(source, needle):
            self._group(lines, stats, nul_possible)
        return stats

    @staticmethod
    def _line_groups(source: Iterable[bytes], needle: bytes | None
                     ) -> Iterator[tuple[list[bytes], bool]]:
        """The input's lines in groups, what has arrived so far (never waiting for more), and
        whether the group may hold ``needle`` (one search per group, not per line)."""
        read1 = getattr(source, "read1", None)
        if read1 is None:  # an iterable of lines (tests, generators): groups of up to 512
            iterator = iter(source)
            while group := list(itertools.islice(iterator, 512)):
                yield group, needle is not None and any(needle in line for line in group)
            return
        pending = b""
        while block := read1(INPUT_BUFFER_BYTES):
            lines = block.split(b"\n")
            if pending:  # the line begun in the previous block (not the whole block: a copy)
                lines[0] = pending + lines[0]
            pending = lines.pop()
            if lines:
                yield lines, needle is not None and (needle in block or needle in lines[0])
        if pending:
            yield [pending], needle is not None and needle in pending

    def _group(self, lines: list[bytes], stats: Counter[str], nul_possible: bool) -> None:
        """Handle a group of lines; runs of one stream's RECORD lines go to `on_record_run`."""
        index, count = 0, len(lines)
        while index < count:
            prefix = self._run_prefix
            if prefix is None or nul_possible or not lines[index].startswith(prefix):
                self._settle_runs()
                self._message(lines[index], stats, nul_possible)
                index += 1
                continue
            end = index + 1
            while end < count and lines[end].startswith(prefix):
                end += 1
            run = lines[index:end]
            assert self.on_record_run is not None and self._run_stream is not None
            if self.on_record_run(self._run_stream, run):
                self.line_number += len(run)
                stats["RECORD"] += len(run)
            else:  # line by line, so an error names its exact line
                self._settle_runs()
                for line in run:
                    self._message(line, stats, nul_possible)
            index = end

    def _settle_runs(self) -> None:
        if self.settle_runs is not None:
            self.settle_runs()

    def replay(self, lines: list[bytes], first_line: int) -> None:
        """Handle a run of RECORD lines (already counted) again line by line, numbered from
        ``first_line``: a record worker could not decode it, and an error must name its line."""
        resume, self.line_number = self.line_number, first_line - 1
        try:
            for line in lines:  # a run holds no NUL escape (its group had none)
                self._message(line, Counter(), nul_possible=False)
        finally:
            self.line_number = resume

    def _message(self, line: bytes | str, stats: Counter[str], nul_possible: bool) -> None:
        self.line_number += 1
        number = self.line_number
        # strip() copies the whole line; a message line starts with "{" and is never blank.
        if line[:1] not in (b"{", "{") and not line.strip():
            return
        suspect = nul_possible and (_NUL if isinstance(line, bytes) else _NUL_TEXT) in line
        if suspect and self.nul_handling == "replace":
            line = replace_nul_escapes(line)
            suspect = False
        try:
            envelope = _DECODER.decode(line)
        except msgspec.ValidationError as exc:
            raise InputError(f"not a valid Singer message: {exc}", line=number) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            reason = undecodable(line, exc, "line")
            if reason.startswith("not valid JSON"):
                reason = f"not a valid Singer message: {exc}"
            raise InputError(reason, line=number) from None
        callback = self._callbacks.get(envelope.type)
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
        if (envelope.type == "RECORD" and self.on_record_run is not None
                and envelope.stream != self._run_stream and envelope.stream is not None):
            # Later lines of this stream that start exactly like our tap writes them are
            # decoded as runs (one msgspec call per run instead of two per line).
            self._run_stream = envelope.stream
            self._run_prefix = (b'{"type":"RECORD","stream":' + msgspec.json.encode(
                envelope.stream) + b',"record":')
