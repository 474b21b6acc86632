"""The real ``tap-dap`` console script: state-file round trip, discovery, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_tap_harness import TAP_EXECUTABLE, run_cli, tap_config, write_json


def _messages(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def test_state_file_round_trip_through_the_console_script(emulator, tmp_path: Path) -> None:
    config = write_json(tmp_path / "config.json", tap_config(emulator, tables=["accounts"]))
    first = run_cli("--config", config)
    assert first.returncode == 0, first.stderr
    states = [m for m in _messages(first.stdout) if m["type"] == "STATE"]
    assert len(states) == 1
    state_file = write_json(tmp_path / "state.json", states[-1]["value"])

    ts = emulator.advance("canvas", "accounts", deletes=2)
    second = run_cli("--config", config, "--state", state_file)
    assert second.returncode == 0, second.stderr
    messages = _messages(second.stdout)
    # the input state is echoed first, then the stream, then the advanced bookmark
    assert [m["type"] for m in messages] == ["STATE", "SCHEMA", "RECORD", "RECORD", "STATE"]
    assert messages[0]["value"] == states[-1]["value"]
    deletes = [m["record"] for m in messages if m["type"] == "RECORD"]
    assert [(r["meta"], r["_sdc_deleted_at"]) for r in deletes] == [
        ({"action": "D", "ts": ts}, ts)
    ] * 2
    assert "canvas-accounts: incremental job" in second.stderr
    assert emulator.client_secret not in first.stderr + second.stderr

    # Meltano's `meltano state get` wrapper is accepted as well
    wrapped = write_json(tmp_path / "wrapped.json", {"singer_state": messages[-1]["value"]})
    third = run_cli("--config", config, "--state", wrapped)
    assert third.returncode == 0, third.stderr
    assert _messages(third.stdout)[0]["value"] == messages[-1]["value"]


def test_discover_lists_streams_with_keys_and_provenance(emulator, tmp_path: Path) -> None:
    settings = tap_config(emulator, tables=["accounts", "canvas-user?"])
    config = write_json(tmp_path / "c.json", settings)
    result = run_cli("--config", config, "--discover")
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    entries = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert sorted(entries) == ["canvas-accounts", "canvas-users"]
    assert entries["canvas-users"]["key_properties"] == ["id"]
    assert entries["canvas-users"]["schema"]["x-dap"]["table"] == "users"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"client_secret": "wrong"}, "AuthenticationError"),
        ({"namespaces": ["nonexistent"]}, "namespace 'nonexistent' does not exist"),
        ({"tables": ["accounts", "no_such_table"]},
         "setting tables: table 'no_such_table' does not exist in namespace(s) canvas"),
        ({"start_mode": "incremental"}, "setting start_mode=incremental needs a start_date"),
        ({"download_concurrency": 1_000_000},
         "setting download_concurrency must be at most 64, got 1000000"),
        ({"retry_budget_seconds": 100_000},
         "setting retry_budget_seconds must be at most 86,400, got 100000"),
        ({"request_timeout_seconds": "7200"},
         "setting request_timeout_seconds must be at most 3,600, got '7200'"),
        ({"object_download_timeout_seconds": 0},
         "setting object_download_timeout_seconds must be a positive number, got 0"),
        ({"max_retry_after_seconds": -5},
         "setting max_retry_after_seconds must be a positive number, got -5"),
        ({"base_url": "http://[::1"}, "setting base_url 'http://[::1' is not a valid URL"),
        ({"base_url": "ftp://example.edu"}, "must be an http(s) URL with a host"),
    ],
)  # fmt: skip
def test_bad_settings_give_one_clear_error_line(emulator, tmp_path, setting, expected) -> None:
    config = write_json(tmp_path / "c.json", {**tap_config(emulator), **setting})
    result = run_cli("--config", config)
    assert result.returncode == 1
    errors = _error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("tap-dap: error: ") and expected in errors[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert "wrong" not in result.stderr and emulator.client_secret not in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "state.json: not valid JSON"),
        ('{"bookmarks": {"canvas-accounts": {"timestamp": "yesterday"}}}',
         "state bookmark 'canvas-accounts': 'timestamp': not an ISO 8601 timestamp: "
         "'yesterday'"),
        ('{"bookmarks": {"canvas-accounts": {"timestamp": "2024-01-01T25:00:00Z"}}}',
         "not an ISO 8601 timestamp: '2024-01-01T25:00:00Z'"),
        ('{"bookmarks": []}', "state: 'bookmarks' must be an object"),
    ],
)  # fmt: skip
def test_malformed_state_file_is_one_clear_error(emulator, tmp_path, content, expected) -> None:
    config = write_json(tmp_path / "c.json", tap_config(emulator))
    state = tmp_path / "state.json"
    state.write_text(content)
    result = run_cli("--config", config, "--state", str(state))
    assert result.returncode == 1
    errors = _error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert expected in errors[0]
    assert result.stdout == ""


def test_unparsable_environment_setting_is_one_clear_error(emulator, tmp_path) -> None:
    env = {**os.environ, "TAP_DAP_CLIENT_ID": emulator.client_id,
           "TAP_DAP_CLIENT_SECRET": emulator.client_secret, "TAP_DAP_BASE_URL": emulator.base_url,
           "TAP_DAP_MAX_CONCURRENT_JOBS": "abc"}
    result = subprocess.run([TAP_EXECUTABLE, "--config", "ENV"], capture_output=True, text=True,
                            timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert _error_lines(result.stderr) == [
        "tap-dap: error: environment variable TAP_DAP_MAX_CONCURRENT_JOBS='abc': not an integer"]
    assert "Traceback" not in result.stderr and result.stdout == ""
