"""target-dap-sql's admin commands through Meltano (`meltano invoke target-dap-sql …`).

Meltano passes the loader's settings as `--config FILE` before the command; the commands must
then see the same database the `meltano run` filled, and report exactly what it replicated.
"""

from __future__ import annotations

import json

from tests.e2e.conftest import NS_TABLES, STATE_ID, TABLES, meltano_state
from tests.e2e.replica import Replica, as_utc, fetch_truth
from tests.e2e.tooling import MeltanoProject
from tests.emulator_fixture import RunningEmulator

INVOKE = ("invoke", "--no-install", "target-dap-sql")


def test_list_and_export_state_describe_what_meltano_run_loaded(
        meltano_project: MeltanoProject, dap_emulator: RunningEmulator, target_url: str) -> None:
    meltano_project.run("run", "--no-install", "tap-dap", "target-dap-sql")
    singer_state = meltano_state(meltano_project, STATE_ID)["singer_state"]
    assert sorted(singer_state["bookmarks"]) == [f"canvas-{t}" for t in TABLES]

    listed = json.loads(meltano_project.run(*INVOKE, "list", "--json").stdout)
    # Independent sources for every field: row counts from the emulator's truth, bookmarks and
    # schema versions from Meltano's own state store, and the meta table read directly.
    synced = Replica(target_url).table_sync()
    assert sorted((r["namespace"], r["table"]) for r in listed) == sorted(NS_TABLES)
    for entry in listed:
        ns, table = entry["namespace"], entry["table"]
        bookmark = singer_state["bookmarks"][f"{ns}-{table}"]
        where = f"{ns}.{table}: {entry}"
        assert entry["rows"] == len(fetch_truth(dap_emulator.base_url, ns, table)) > 0, where
        assert entry["timestamp"] == bookmark["timestamp"], where
        assert entry["schema_version"] == bookmark["schema_version"], where
        assert (as_utc(entry["timestamp"]), entry["schema_version"]) == synced[(ns, table)], where

    # export-state prints, from the database alone, the state Meltano stored: a replica loaded
    # by this pipeline (or by `dap initdb`) can be handed back to tap-dap with `meltano state set`.
    exported = json.loads(meltano_project.run(*INVOKE, "export-state").stdout)
    assert exported == singer_state
