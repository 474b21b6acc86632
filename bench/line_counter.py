"""What the harness puts after a tap instead of /dev/null: ``tap | python -m bench.line_counter``.

Reads stdin in 1 MiB chunks, counts bytes and newlines, and notes the monotonic time of the first
byte, of the first chunk holding a RECORD message, and of EOF. Prints them as one JSON line.

Why: a tap's wall time includes interpreter start-up, discovery and the server building the job;
its emission rate (rows ÷ first RECORD → EOF) is what "rows/s emitted as Singer messages" means.
The first byte is not the start: SCHEMA is written (and flushed) before the job is done.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator

CHUNK = 1 << 20
RECORD_MARKERS = (b'"type":"RECORD"', b'"type": "RECORD"')  # compact and json.dumps spacing


def measure(chunks: Iterable[bytes], clock: Callable[[], float]) -> dict[str, float | int | None]:
    """Count ``chunks`` and time them with ``clock`` (called once per chunk and at EOF)."""
    lines = size = 0
    first_byte = first_record = None
    tail = b""  # the end of the previous chunk: a marker may straddle two reads
    overlap = max(len(m) for m in RECORD_MARKERS) - 1
    for chunk in chunks:
        now = clock()
        if first_byte is None:
            first_byte = now
        if first_record is None:
            window = tail + chunk[:overlap]
            if any(m in chunk or m in window for m in RECORD_MARKERS):
                first_record = now
            tail = (tail + chunk[-overlap:])[-overlap:]
        lines += chunk.count(b"\n")
        size += len(chunk)
    return {"lines": lines, "bytes": size, "first_byte": first_byte,
            "first_record": first_record, "eof": clock()}


def read_chunks(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, CHUNK):
        yield chunk


def main() -> None:
    result = measure(read_chunks(sys.stdin.fileno()), time.monotonic)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
