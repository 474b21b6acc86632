"""run_pipeline: per-process peak RSS, pipes, failures and timeouts, with real processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from bench.errors import RunFailed
from bench.measure import ProcessSpec, run_pipeline

MB = 2**20
# writes 3 MB of lines, holding little memory itself
WRITER = "import sys\nfor i in range(30000): sys.stdout.write('x' * 99 + '\\n')"
# reads everything, then holds it plus a 120 MB buffer: its peak must be >= 120 MB
READER = (
    "import sys\ndata = sys.stdin.buffer.read()\nblob = bytearray(120 * 2**20)\n"
    "blob[::4096] = b'1' * len(blob[::4096])\nprint(len(data))"
)


def py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def test_pipe_measures_each_process_separately(tmp_path: Path) -> None:
    out = tmp_path / "reader.out"
    result = run_pipeline(
        [ProcessSpec("writer", py(WRITER)), ProcessSpec("reader", py(READER), stdout=out)],
        tmp_path / "logs", timeout=60,
    )
    writer, reader = result.processes
    assert (writer.role, reader.role) == ("writer", "reader")
    assert out.read_text() == "3000000\n"  # every byte went through the pipe
    assert reader.peak_rss_bytes >= 120 * MB
    # the writer is not charged for the reader's memory, nor for the harness's imports
    assert writer.peak_rss_bytes < 40 * MB
    assert writer.exit_code == reader.exit_code == 0
    assert result.seconds >= max(writer.seconds, reader.seconds) - 0.01


def test_last_failing_process_is_reported(tmp_path: Path) -> None:
    # the reader dies; the writer then fails on the broken pipe: the reader is the cause
    reader = "import sys\nsys.stdin.buffer.read(10)\nsys.exit('reader gave up: bad input')"
    writer = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    with pytest.raises(RunFailed) as raised:
        run_pipeline([ProcessSpec("tap", py(writer)), ProcessSpec("target", py(reader))],
                     tmp_path / "logs", timeout=60)
    message = str(raised.value)
    assert message.startswith("target exited with 1 (log ")
    assert message.rstrip().endswith("reader gave up: bad input")


def test_missing_executable_is_a_failed_run(tmp_path: Path) -> None:
    with pytest.raises(RunFailed, match=r"(?s)^nothing exited with 127 .*cannot run /no/such/tool"):
        run_pipeline([ProcessSpec("nothing", ("/no/such/tool",))], tmp_path / "logs",
                     timeout=60)


def test_timeout_kills_the_pipeline(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(RunFailed, match=r"^timed out after 1 s: sleeper still running$"):
        run_pipeline([ProcessSpec("sleeper", ("sleep", "30"))], tmp_path / "logs", timeout=1)
    assert time.monotonic() - started < 15
