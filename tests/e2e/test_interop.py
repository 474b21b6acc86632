"""Both plugins speak plain Singer: tap-dap into a generic target, a generic tap into ours.

The generic plugins are SDK-built packages from PyPI (MeltanoLabs target-csv, tap-jsonl) in their
own venvs, so nothing of tap-dap/target-dap-sql leaks into them.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import TABLES
from tests.e2e.replica import Replica, fetch_truth
from tests.e2e.tooling import PROJECT_BIN, base_env
from tests.emulator_fixture import RunningEmulator


def pipe(tap: list[str], target: list[str], workdir: Path) -> list[dict]:
    """``tap | target``; returns the STATE lines the target printed."""
    env = base_env(workdir)
    with subprocess.Popen(tap, cwd=workdir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as producer:
        done = subprocess.run(target, cwd=workdir, env=env, stdin=producer.stdout,
                              capture_output=True, text=True, timeout=300)
        assert producer.stdout is not None
        producer.stdout.close()
        tap_err = producer.stderr.read().decode() if producer.stderr else ""
        producer.wait(timeout=60)
    assert producer.returncode == 0, tap_err[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_tap_dap_into_a_generic_singer_target(
        dap_emulator: RunningEmulator, tmp_path: Path,
        generic_plugin: Callable[[str], Path]) -> None:
    target_csv = generic_plugin("target-csv")
    (tmp_path / "tap.json").write_text(json.dumps({
        "base_url": dap_emulator.base_url, "client_id": dap_emulator.client_id,
        "client_secret": dap_emulator.client_secret, "poll_interval": 0.2}))
    (tmp_path / "csv.json").write_text(json.dumps({"output_path": str(tmp_path / "out")}))

    states = pipe([str(PROJECT_BIN / "tap-dap"), "--config", "tap.json"],
                  [str(target_csv), "--config", "csv.json"], tmp_path)

    assert sorted(states[-1]["bookmarks"]) == [f"canvas-{t}" for t in TABLES]
    for table in TABLES:
        with (tmp_path / "out" / f"canvas-{table}.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        truth = fetch_truth(dap_emulator.base_url, "canvas", table)
        assert sorted(int(r["id"]) for r in rows) == sorted(t["key"]["id"] for t in truth)
        by_id = {int(r["id"]): r for r in rows}
        # a text column survives the trip unchanged (CSV writes None as "")
        assert {t["key"]["id"]: t["value"]["workflow_state"] for t in truth} == {
            i: r["workflow_state"] for i, r in by_id.items()}


def test_a_generic_singer_tap_into_target_dap_sql(
        tmp_path: Path, generic_plugin: Callable[[str], Path]) -> None:
    tap_jsonl = generic_plugin("tap-jsonl")
    people = [{"id": 1, "name": "Ada", "active": True, "tags": ["x", "y"]},
              {"id": 2, "name": "Grace", "active": False, "tags": []},
              {"id": 1, "name": "Ada L.", "active": True, "tags": ["z"]}]  # same key again
    (tmp_path / "people.jsonl").write_text("".join(json.dumps(p) + "\n" for p in people))
    (tmp_path / "tap.json").write_text(json.dumps({
        "path": str(tmp_path / "people.jsonl"), "stream_name": "people", "primary_keys": ["id"]}))
    url = f"sqlite:///{tmp_path}/other.db"
    (tmp_path / "target.json").write_text(json.dumps({"sqlalchemy_url": url}))

    states = pipe([str(tap_jsonl), "--config", "tap.json"],
                  [str(PROJECT_BIN / "target-dap-sql"), "--config", "target.json"], tmp_path)

    assert "people" in states[-1]["bookmarks"]
    rows = Replica(url).query('SELECT "id", "name", "active", "tags" FROM "people" ORDER BY 1')[1]
    assert [(i, n, a, json.loads(t)) for i, n, a, t in rows] == [
        (1, "Ada L.", 1, ["z"]), (2, "Grace", 0, [])]
