"""The worked example (examples/dagster_replicator.py) runs its Dagster job, one op per table,
against the emulator in its own venv (.venv-dagster, from requirements/dagster.txt): first
snapshots, then changes, each time ending equal to the truth."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from scripts import environments
from tests.e2e.replica import Replica, diff_table
from tests.emulator_fixture import RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
TABLES = ["accounts", "courses", "submissions"]
RUN_JOB = """
import json
from examples.dagster_replicator import dap_replication
result = dap_replication.execute_in_process()
assert result.success
print(json.dumps(result.output_for_node("replicate_table")))
"""


def run_job(emulator: RunningEmulator, url: str, tmp_path: Path) -> dict[str, Any]:
    python = environments.dagster_example()
    env = {**os.environ, "DAP_API_URL": emulator.base_url, "DAP_CLIENT_ID": emulator.client_id,
           "DAP_CLIENT_SECRET": emulator.client_secret, "DAP_CONNECTION_STRING": url,
           "DAP_NAMESPACE": "canvas", "DAP_TABLES": ",".join(TABLES),
           "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(python), "-c", RUN_JOB], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_dagster_job_replicates_one_op_per_table(emulator_factory: Any, tmp_path: Path) -> None:
    emulator = emulator_factory(tables=",".join(TABLES), rows=25)
    url = f"sqlite:///{tmp_path}/dap.db"
    first = run_job(emulator, url, tmp_path)
    assert {t: (o["snapshot"], o["rows_written"]) for t, o in first.items()} == {
        t: (True, 25) for t in TABLES}
    for table in TABLES:
        emulator.advance("canvas", table, inserts=2, updates=3, deletes=1)
    second = run_job(emulator, url, tmp_path)
    assert {t: (o["snapshot"], o["rows_written"]) for t, o in second.items()} == {
        t: (False, 6) for t in TABLES}
    for table in TABLES:
        diff = diff_table("canvas", table, emulator.truth("canvas", table),
                          Replica(url).rows("canvas", table))
        assert not diff, str(diff)
