"""``dap-emulator serve`` as a real process: startup line, options, bad input, shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.emulator_fixture import EmulatorCallError


def test_fixture_handle_drives_a_real_server(emulator_factory) -> None:
    emulator = emulator_factory(rows=5, tables="users,canvas.accounts", seed=3)
    assert emulator.base_url.startswith("http://127.0.0.1:")
    assert [(t["namespace"], t["table"], t["rows"]) for t in emulator.tables()] == [
        ("canvas", "accounts", 5), ("canvas", "users", 5), ("catalog", "users", 5)]
    ts = emulator.advance("canvas", "users", inserts=2, deletes=1)
    assert ts.endswith("Z")
    assert [row["key"]["id"] for row in emulator.truth("canvas", "users")] == sorted(
        row["key"]["id"] for row in emulator.truth("canvas", "users"))
    assert len(emulator.truth("canvas", "users")) == 6
    assert emulator.schema_change("canvas", "users", add_column={
        "name": "extra", "schema": {"type": "boolean"}}) == 2
    assert emulator.faults([{"endpoint": "job", "kind": "500"}]) == {"pending": 1}
    assert emulator.requests()["job"] == {"total": 0, "throttled": 0, "faulted": 0}
    with pytest.raises(EmulatorCallError, match="unknown table canvas.nope"):
        emulator.advance("canvas", "nope", inserts=1)
    emulator.stop()
    assert emulator.process.returncode == 0


def test_first_stdout_line_is_the_base_url_and_sigterm_stops_cleanly(emulator_factory) -> None:
    emulator = emulator_factory(dataset="empty")
    with urllib.request.urlopen(f"{emulator.base_url}/_emulator/tables") as response:
        assert json.loads(response.read()) == []
    emulator.process.terminate()
    assert emulator.process.wait(timeout=10) == 0


def test_a_million_rows_start_instantly_and_lazily(emulator_factory) -> None:
    emulator = emulator_factory(rows=1_000_000, tables="submissions")
    assert emulator.tables()[0]["rows"] == 1_000_000
    status = Path(f"/proc/{emulator.process.pid}/status").read_text()
    rss_kib = int(status.split("VmRSS:")[1].split()[0])
    assert rss_kib < 150_000, f"{rss_kib} KiB resident for an idle 1M-row table"


@pytest.mark.parametrize("args, message", [
    (["--rows", "-1"], "--rows: must be >= 0"),
    (["--tables", "nope"], "--tables: no table named 'nope'"),
    (["--data", "/nonexistent"], "--data /nonexistent: not a directory"),
    (["--rate-limits", "query=x"], "--rate-limits: expected ENDPOINT=PER_MINUTE"),
    (["--dataset", "other"], "invalid choice: 'other'"),
])
def test_bad_options_exit_nonzero_with_one_clear_line(args, message) -> None:
    result = subprocess.run([sys.executable, "-m", "tap_dap.emulator.cli", "serve", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stdout == ""
    assert message in result.stderr and "Traceback" not in result.stderr


def test_every_serve_option_has_help_text() -> None:
    from tap_dap.emulator.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command")
    for name, subparser in commands.choices.items():
        undocumented = [a.option_strings[0] for a in subparser._actions
                        if a.option_strings and not a.help]
        assert undocumented == [], f"dap-emulator {name}: options without help"


def test_verbose_log_hides_presigned_url_signatures() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_dap.emulator.cli", "serve", "--port", "0", "--rows", "1",
         "--tables", "accounts", "--verbose"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        secret = "a1b2c3d4e5f6deadbeef"
        for query in (f"X-Amz-Expires=9&X-Amz-Signature={secret}", f"x-amz-signature={secret}"):
            try:
                urllib.request.urlopen(f"{base_url}/objects/j/part-0.json.gz?{query}", timeout=10)
            except urllib.error.HTTPError as exc:
                assert exc.code in (403, 404)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "X-Amz-Signature=***" in stderr and "x-amz-signature=***" in stderr
    assert secret not in stderr
