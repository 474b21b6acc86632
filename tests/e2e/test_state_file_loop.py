"""Singer piping without Meltano: the README's state-file loop, run exactly as printed there."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import TABLES, advance_all, assert_equals_truth
from tests.e2e.replica import Replica, as_utc
from tests.e2e.tooling import ROOT, base_env
from tests.emulator_fixture import RunningEmulator

SECTION = "## Singer piping without Meltano"


def readme_state_loop() -> str:
    """The first ```bash block of the README's piping section (what users copy)."""
    readme = (ROOT / "README.md").read_text()
    assert SECTION in readme, f"README.md has no section {SECTION!r}"
    section = readme.split(SECTION, 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, f"no ```bash block under {SECTION!r} in README.md"
    return match.group(1)


def run_loop(script: str, workdir: Path) -> None:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir,
                          env=base_env(workdir), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


DIALECTS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_state_file_loop_snapshot_then_incremental(
        dialect: str, dap_emulator: RunningEmulator, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path}/dap.db" if dialect == "sqlite"
           else request.getfixturevalue("pg_url"))
    (tmp_path / "tap.json").write_text(json.dumps({
        "base_url": dap_emulator.base_url, "client_id": dap_emulator.client_id,
        "client_secret": dap_emulator.client_secret, "poll_interval": 0.2}))
    (tmp_path / "target.json").write_text(json.dumps({"sqlalchemy_url": url}))
    script = readme_state_loop()

    run_loop(script, tmp_path)
    assert_equals_truth(url, dap_emulator)
    first = json.loads((tmp_path / "state.json").read_text())["bookmarks"]
    assert sorted(first) == [f"canvas-{t}" for t in TABLES]

    advance_all(dap_emulator)
    run_loop(script, tmp_path)
    assert_equals_truth(url, dap_emulator)
    second = json.loads((tmp_path / "state.json").read_text())["bookmarks"]
    assert all(as_utc(second[s]["timestamp"]) > as_utc(first[s]["timestamp"]) for s in first)
    synced = Replica(url).table_sync()
    assert {f"{ns}-{t}": ts for (ns, t), (ts, _) in synced.items()} == {
        s: as_utc(b["timestamp"]) for s, b in second.items()}
