"""ParallelRuns.close() ends every worker promptly, also workers blocked writing results the
target will never read (an error or a signal left runs in flight)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

from target_dap_sql import workers
from target_dap_sql.dialects.pg_codec import PgRowCodec
from target_dap_sql.layout import LayoutOptions, build_layout


class _Sink(SimpleNamespace):
    __hash__ = object.__hash__  # ParallelRuns keeps a plan per sink


def _sink() -> Any:
    schema = {"type": "object", "properties": {"id": {"type": "integer"},
                                               "s": {"type": ["string", "null"]}}}
    layout = build_layout("big", schema, ["id"], LayoutOptions())
    sink = _Sink(stream="big", records_received=10**9, codec=None, layout=layout,
                           decoder=SimpleNamespace(renames_columns=False),
                           dialect=SimpleNamespace(row_codec=PgRowCodec))
    sink.use_codec = lambda codec: setattr(sink, "codec", codec)
    return sink


def test_close_with_big_results_in_flight_is_prompt(capfd: Any) -> None:
    runs = workers.ParallelRuns(3, lambda sink, rows: None, lambda lines, first: None)
    sink = _sink()
    value = "x" * 3_000_000  # each result is more than a pipe holds: its worker blocks writing
    for n in range(6):
        line = b'{"type":"RECORD","stream":"big","record":' + json.dumps(
            {"id": n, "s": value}).encode() + b"}"
        assert runs.take(sink, [line], n + 1)
    time.sleep(1)  # the workers decode and block on their full stdout
    processes = [w.process for w in runs._workers]
    started = time.monotonic()
    runs.close()
    assert time.monotonic() - started < 3
    assert all(p.returncode is not None for p in processes)
    assert capfd.readouterr().err == ""  # no worker wrote a warning or a traceback
