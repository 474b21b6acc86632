"""`meltano run tap-dap target-dap-sql` on the emulator: snapshot, incremental, state, refresh."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.e2e.conftest import (
    NS_TABLES,
    STATE_ID,
    TABLES,
    advance_all,
    assert_equals_truth,
    meltano_state,
)
from tests.e2e.replica import Replica, as_utc
from tests.e2e.tooling import MeltanoProject
from tests.emulator_fixture import RunningEmulator

RUN = ("run", "--no-install", "tap-dap", "target-dap-sql")


def _bookmarks(project: MeltanoProject) -> dict[str, datetime]:
    state = meltano_state(project, STATE_ID)
    return {stream: as_utc(b["timestamp"])
            for stream, b in state["singer_state"]["bookmarks"].items()}


def test_snapshot_then_incremental_equals_truth(
        meltano_project: MeltanoProject, dap_emulator: RunningEmulator, target_url: str) -> None:
    before_snapshot = datetime.now(UTC)
    meltano_project.run(*RUN)
    assert_equals_truth(target_url, dap_emulator)
    snapshot_marks = _bookmarks(meltano_project)
    assert sorted(snapshot_marks) == [f"canvas-{t}" for t in TABLES]
    assert all(mark >= before_snapshot for mark in snapshot_marks.values()), snapshot_marks

    advance_all(dap_emulator)
    meltano_project.run(*RUN)
    assert_equals_truth(target_url, dap_emulator)

    # `meltano state get` shows the since/until chain: every bookmark moved past the changes,
    # and equals what target-dap-sql recorded in instructure_dap.table_sync.
    incremental_marks = _bookmarks(meltano_project)
    assert all(incremental_marks[s] > snapshot_marks[s] for s in snapshot_marks), (
        snapshot_marks, incremental_marks)
    synced = Replica(target_url).table_sync()
    assert {f"{ns}-{t}": ts for (ns, t), (ts, _) in synced.items()} == incremental_marks


def test_full_refresh_resnapshots_and_swaps(
        meltano_project: MeltanoProject, dap_emulator: RunningEmulator) -> None:
    url = meltano_project.env["TARGET_DAP_SQL_SQLALCHEMY_URL"]
    replica = Replica(url)
    meltano_project.run(*RUN)
    first_sync = replica.table_sync()

    # A row DAP never had: an incremental run keeps it, only a replacing snapshot removes it.
    replica.execute('INSERT INTO "canvas__accounts" ("id", "created_at", "updated_at", '
                    "\"workflow_state\") VALUES (990001, '2024-01-01 00:00:00.000000', "
                    "'2024-01-01 00:00:00.000000', 'active')")
    advance_all(dap_emulator)
    meltano_project.run(*RUN)
    stale = [r["id"] for r in replica.rows("canvas", "accounts") if r["id"] == 990001]
    assert stale == [990001]
    incremental_sync = replica.table_sync()

    meltano_project.run("run", "--no-install", "--full-refresh", "tap-dap", "target-dap-sql")
    # the planted row is gone: each table was replaced by a fresh snapshot, not merged into
    assert_equals_truth(url, dap_emulator)
    refreshed = replica.table_sync()
    assert sorted(refreshed) == sorted(NS_TABLES)
    assert all(refreshed[t][0] > incremental_sync[t][0] > first_sync[t][0] for t in NS_TABLES), (
        first_sync, incremental_sync, refreshed)


def test_fractional_settings_from_the_environment(
        meltano_project: MeltanoProject, dap_emulator: RunningEmulator, target_url: str) -> None:
    """The documented way (env vars) for the two fractional settings works through Meltano 4.4.

    Declared `kind: decimal`, Meltano turned the environment's text into a Decimal and failed to
    write the plugin's config ("Object of type Decimal is not JSON serializable").
    """
    env = {"TAP_DAP_POLL_INTERVAL": "0.3", "TARGET_DAP_SQL_BATCH_MAX_SECONDS": "0.5"}
    printed = meltano_project.run("config", "print", "target-dap-sql", extra_env=env)
    assert '"batch_max_seconds": "0.5"' in printed.stdout
    meltano_project.run(*RUN, extra_env=env)
    assert_equals_truth(target_url, dap_emulator)
    bad = meltano_project.run(*RUN, extra_env={"TARGET_DAP_SQL_BATCH_MAX_SECONDS": "soon"},
                              check=False)
    assert bad.returncode != 0
    assert "batch_max_seconds" in bad.stderr
