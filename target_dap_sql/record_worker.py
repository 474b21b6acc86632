"""A record worker process (started by workers.py, which runs `main`).

Reads tasks from stdin — a run of one stream's RECORD lines and the id of the stream's row codec
(the codec itself the first time) — and writes one result per task to stdout, in task order:
the decoded, validated and encoded rows, or "invalid" when the run must be taken line by line
(the target then names the bad line itself). It never sees the database URL or a connection.

A reader thread keeps stdin drained while the main thread decodes, so the target's writes never
wait for this process to finish writing a result (both pipes full would deadlock). The process
ends when stdin ends: the target closed it, or the target died.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import signal
import struct
import sys
import threading
from typing import IO, Any

#: main → worker: codec id, length of the pickled codec (0: sent before), length of the lines
TASK_HEADER = struct.Struct("!IIQ")
#: worker → main: length of the pickled result
RESULT_HEADER = struct.Struct("!Q")


def read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    """``size`` bytes, or None at the end of the stream (the other side closed or died)."""
    data = stream.read(size)
    return data if len(data) == size else None


def _read_tasks(source: IO[bytes], tasks: queue.SimpleQueue[Any]) -> None:
    try:
        while header := read_exactly(source, TASK_HEADER.size):
            codec_id, codec_size, data_size = TASK_HEADER.unpack(header)
            codec = read_exactly(source, codec_size) if codec_size else b""
            data = read_exactly(source, data_size)
            if codec is None or data is None:
                break
            tasks.put((codec_id, codec, data))
    finally:
        tasks.put(None)


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """Answer tasks from ``source`` on ``sink`` until ``source`` ends."""
    tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_read_tasks, args=(source, tasks), daemon=True).start()
    codecs: dict[int, Any] = {}
    while (task := tasks.get()) is not None:
        codec_id, codec, data = task
        try:
            if codec:
                codecs[codec_id] = pickle.loads(codec)
            # (lines read from a file object keep their b"\n": empty pieces are none of them)
            rows = codecs[codec_id].decode_run([line for line in data.split(b"\n") if line])
            result: tuple[str, Any] = ("ok", rows) if rows is not None else ("invalid", None)
        except Exception as exc:  # a bug, not bad input: the target stops with this text
            result = ("error", f"{type(exc).__name__}: {exc}")
        payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        sink.write(RESULT_HEADER.pack(len(payload)))
        sink.write(payload)
        sink.flush()


def main() -> None:
    # Ctrl-C reaches the whole process group: the target handles it and closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # As in the target's reader (reader._RelaxedGC): decoding allocates a few containers per row
    # and makes no garbage cycles, so the cyclic GC need not run every 700 allocations.
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    channel = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but results may reach the target through stdout
    try:
        serve(sys.stdin.buffer, channel)
    except BrokenPipeError:  # the target is gone or dropped our results: end without the
        os._exit(0)  # interpreter's flush of the half-written result (a warning on stderr)

