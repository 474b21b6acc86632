"""SDK-standard METRIC lines from both plugins, the target's progress line, and fatal errors at
ERROR level under Meltano's structured logging."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from target_dap_sql import target as target_module
from tests.integration.helpers import SUBMISSIONS, SUBMISSIONS_V1, upsert
from tests.integration.test_tap_harness import tap_config, write_json
from tests.unit.target.dap_messages import run_in_process

BIN = Path(sys.executable).parent


def metric_points(stderr: str) -> list[dict[str, Any]]:
    """The METRIC points of a plugin's stderr, as the SDK formats them (`METRIC: {json}`)."""
    return [json.loads(line.split("METRIC: ", 1)[1]) for line in stderr.splitlines()
            if "METRIC: " in line]  # fmt: skip


def test_tap_and_target_write_sdk_metric_lines(emulator_factory, tmp_path: Path) -> None:
    emulator = emulator_factory(tables="canvas.accounts,canvas.users", rows=25)
    tap_file = write_json(tmp_path / "tap.json", tap_config(emulator))
    target_file = write_json(tmp_path / "t.json", {"sqlalchemy_url": f"sqlite:///{tmp_path}/d.db"})
    tap = subprocess.run([str(BIN / "tap-dap"), "--config", tap_file], capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    target = subprocess.run([str(BIN / "target-dap-sql"), "--config", target_file],
                            input=tap.stdout, capture_output=True, text=True, timeout=120,
                            check=True)  # fmt: skip

    by_metric: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for point in metric_points(tap.stderr):
        by_metric[point["metric"], point["tags"]["stream"]].append(point)
    for stream in ("canvas-accounts", "canvas-users"):
        counts = by_metric["record_count", stream]
        assert sum(p["value"] for p in counts) == 25
        assert all(p["type"] == "counter" for p in counts)
        (duration,) = by_metric["sync_duration", stream]
        assert duration["type"] == "timer" and duration["tags"]["status"] == "succeeded"
        jobs = {p["tags"]["job_type"]: p for p in by_metric["job_duration", stream]}
        assert sorted(jobs) == ["dap_download", "dap_job_wait"]
        assert jobs["dap_download"]["tags"]["job_id"] == jobs["dap_job_wait"]["tags"]["job_id"]
        assert all(p["value"] >= 0 for p in jobs.values())

    loaded: dict[str, int] = defaultdict(int)
    for point in metric_points(target.stderr):
        assert point["metric"] == "record_count" and point["type"] == "counter"
        loaded[point["tags"]["stream"]] += point["value"]
    assert loaded == {"canvas-accounts": 25, "canvas-users": 25}


def test_target_logs_progress_while_records_arrive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(target_module, "PROGRESS_SECONDS", 0.0)
    caplog.set_level(logging.INFO)
    run_in_process({"sqlalchemy_url": f"sqlite:///{tmp_path}/d.db"},
                   [SUBMISSIONS_V1, *[upsert(i) for i in range(3)]])  # fmt: skip
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Loading ")]
    assert progress and progress[-1].startswith(f"Loading '{SUBMISSIONS}': 3 rows received so far")
    assert progress[-1].endswith(" rows/s")


def test_fatal_tap_error_is_an_error_record_under_structured_logging(
    emulator, tmp_path: Path
) -> None:
    # What Meltano hands a plugin with the structured-logging capability.
    log_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": "singer_sdk.logging.StructuredFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured",
                                 "stream": "ext://sys.stderr"}},  # fmt: skip
        "root": {"level": "INFO", "handlers": ["console"]},
    }
    config = write_json(tmp_path / "c.json", {**tap_config(emulator), "client_secret": "wrong"})
    env = {"SINGER_SDK_LOG_CONFIG": write_json(tmp_path / "logging.json", log_config),
           "PATH": str(BIN)}  # fmt: skip
    result = subprocess.run([str(BIN / "tap-dap"), "--config", config], capture_output=True,
                            text=True, timeout=60, env=env, check=False)  # fmt: skip
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1, result.stderr
    assert errors[0]["message"].startswith("tap-dap: error: DAP login at ")
    assert "DAP rejected the client credentials" in errors[0]["message"]
    assert "\n" not in errors[0]["message"]
    assert "wrong" not in result.stderr
    # without Meltano's logging configuration the error stays the plain README line
    plain = subprocess.run([str(BIN / "tap-dap"), "--config", config], capture_output=True,
                           text=True, timeout=60, check=False)  # fmt: skip
    assert plain.stderr.splitlines()[-1].startswith("tap-dap: error: DAP login at ")
