"""The line counter after tap-alone: counts, and times the first RECORD to EOF of the stream."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.errors import RunFailed
from bench.line_counter import measure
from bench.measure import ProcessSpec, run_pipeline
from bench.runner import read_json_line, window_times
from bench.spec import Window

SCHEMA = b'{"type":"SCHEMA","stream":"s","schema":{},"key_properties":["id"]}\n'


def ticking() -> Iterator[float]:
    yield from (10.0 * n for n in range(1, 100))


def test_first_record_is_the_chunk_that_completes_the_marker() -> None:
    clock = ticking()
    chunks = [SCHEMA, b'{"type":"ACTIVATE_VERSION","stream":"s","version":1}\n{"type":"REC',
              b'ORD","stream":"s","record":{"id":1}}\n', b'{"type":"RECORD","record":{}}\n']
    result = measure(chunks, lambda: next(clock))
    assert result == {"lines": 4, "bytes": sum(map(len, chunks)), "first_byte": 10.0,
                      "first_record": 30.0, "eof": 50.0}


def test_marker_split_over_many_tiny_chunks_and_spaced_json() -> None:
    clock = ticking()
    stream = SCHEMA + b'{"type": "RECORD", "record": {"id": 1}}\n'
    chunks = [stream[i:i + 3] for i in range(0, len(stream), 3)]
    result = measure(chunks, lambda: next(clock))
    completes = (stream.index(b'"type": "RECORD"') + len(b'"type": "RECORD"') - 1) // 3
    assert result["first_record"] == 10.0 * (completes + 1)
    assert result["lines"] == 2


def test_no_record_and_no_input() -> None:
    clock = ticking()
    assert measure([SCHEMA], lambda: next(clock)) == {
        "lines": 1, "bytes": len(SCHEMA), "first_byte": 10.0, "first_record": None, "eof": 20.0}
    assert measure([], lambda: 5.0) == {"lines": 0, "bytes": 0, "first_byte": None,
                                        "first_record": None, "eof": 5.0}


# SCHEMA at once, then records only after a pause, as a tap waiting for its job does
TAP_LIKE = (
    "import sys, time\nout = sys.stdout.buffer\n"
    f"out.write({SCHEMA!r}); out.flush()\ntime.sleep(0.6)\n"
    "for i in range(20000): out.write(b'{\"type\":\"RECORD\",\"record\":{\"id\":%d}}\\n' % i)\n"
)


def test_the_window_excludes_the_wait_before_the_first_record(tmp_path: Path) -> None:
    out = tmp_path / "counter.out"
    result = run_pipeline(
        [ProcessSpec("tap", (sys.executable, "-c", TAP_LIKE)),
         ProcessSpec("counter", (sys.executable, "-m", "bench.line_counter"), stdout=out)],
        tmp_path / "logs", timeout=60,
    )
    data = read_json_line(out)
    assert data["lines"] == 20_001
    # less than the pause if the counter started (and so read SCHEMA) after the writer
    assert data["first_record"] - data["first_byte"] >= 0.4
    start, seconds = window_times(Window(str(out), "first_record", "eof", "x"), {},
                                  result.started_at)
    assert 0.6 <= start < result.seconds
    assert 0 <= seconds < result.seconds - 0.6


def test_result_lines_that_are_missing_or_broken_fail_the_run(tmp_path: Path) -> None:
    missing = tmp_path / "none.out"
    with pytest.raises(RunFailed, match=r"^cannot read the result line of .*none\.out"):
        read_json_line(missing)
    broken = tmp_path / "broken.out"
    broken.write_text("12345\n")
    with pytest.raises(RunFailed, match=r"broken\.out: no JSON result line$"):
        read_json_line(broken)
    backwards = tmp_path / "backwards.out"
    backwards.write_text('{"first_record": 5.0, "eof": 4.0}\n')
    with pytest.raises(RunFailed, match=r"no first_record → eof times"):
        window_times(Window(str(backwards), "first_record", "eof", "x"), {}, 0.0)
