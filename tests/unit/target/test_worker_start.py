"""A record worker that cannot start (its imports fail) says why in one stderr line, exit 1, and a
codec that cannot be unpickled is a failed task (its text goes to the target), not a crash."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

from target_dap_sql import record_worker, workers


def test_a_worker_that_cannot_import_says_so_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "target_dap_sql"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('boom in the installed package')\n")
    done = subprocess.run([sys.executable, "-P", "-c", workers._BOOTSTRAP], input=b"",
                          capture_output=True, env={"PYTHONPATH": str(tmp_path)}, timeout=60)
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        "target-dap-sql record worker cannot start: ImportError: boom in the installed package"]


def test_a_codec_that_cannot_be_unpickled_fails_the_task() -> None:
    data = b'{"type":"RECORD"}'
    task = record_worker.TASK_HEADER.pack(7, 5, len(data)) + b"nope." + data
    out = io.BytesIO()
    record_worker.serve(io.BytesIO(task), out)
    payload = out.getvalue()
    (size,) = record_worker.RESULT_HEADER.unpack(payload[:record_worker.RESULT_HEADER.size])
    status, text = pickle.loads(payload[record_worker.RESULT_HEADER.size:])
    assert size == len(payload) - record_worker.RESULT_HEADER.size
    assert status == "error"
    assert text.startswith("UnpicklingError: ")


def test_the_line_is_written_at_once(tmp_path: Path) -> None:
    """Workers start together: a line written in pieces (the text, then its newline, as
    `sys.exit(text)` prints) interleaves with another worker's into one garbled line. Each
    write to sys.stderr is marked here; the line must be one write of its own."""
    broken = tmp_path / "target_dap_sql"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('boom')\n")
    marked = ("import sys\n"
              "class Marked:\n"
              "    def write(self, text): sys.__stderr__.write('<' + text + '>')\n"
              "    def flush(self): sys.__stderr__.flush()\n"
              "sys.stderr = Marked()\n")
    done = subprocess.run([sys.executable, "-P", "-c", marked + workers._BOOTSTRAP], input=b"",
                          capture_output=True, env={"PYTHONPATH": str(tmp_path)}, timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode() in (
        "target-dap-sql record worker cannot start: ImportError: boom\n",
        "<target-dap-sql record worker cannot start: ImportError: boom\n>")
