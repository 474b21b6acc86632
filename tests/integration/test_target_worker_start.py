"""What the target prints when its record workers cannot start (their imports fail): each worker's
one line, then the target's one error line naming the exit code; exit 1, no traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import logged_errors

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_workers_that_cannot_start_end_the_run_with_one_error_line(
        pg_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken" / "target_dap_sql"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('boom in the installed package')\n")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"sqlalchemy_url": pg_url, "workers": 2}))
    lines: list[Any] = [{"type": "SCHEMA", "stream": "s", "key_properties": ["id"], "schema": {
        "type": "object", "properties": {"id": {"type": "integer"}}}}]
    lines += [{"type": "RECORD", "stream": "s", "record": {"id": n}} for n in range(20_000)]
    data = "".join(json.dumps(m, separators=(",", ":")) + "\n" for m in lines).encode()
    # This checkout's target (the current directory comes first on its sys.path); the workers
    # (`-P`: no current directory) find the broken package first.
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "broken"),
           "DAP_TARGET_WORKERS_MIN_ROWS": "100"}
    done = subprocess.run(
        [sys.executable, "-c", "from target_dap_sql.target import cli; cli()",
         "--config", str(config)],
        input=data, capture_output=True, cwd=ROOT, env=env, timeout=120, check=False)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert done.stdout == b""
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if "| INFO" not in line] == [
        "target-dap-sql record worker cannot start: ImportError: boom in the installed package",
    ] * 2 + [line for line in stderr.splitlines() if "| ERROR" in line]
    (error,) = logged_errors(stderr)
    assert re.fullmatch(
        r"target-dap-sql: stream 's': record worker process \d+ ended unexpectedly \(exit code "
        r"1\); rows after the last STATE are loaded again by the next run", error), error
