"""The scale-out path (README "Beyond one machine"): shards of tables as separate Meltano jobs.

Two `meltano run --state-id-suffix` pipelines on disjoint table sets run at the same time into
one PostgreSQL database, twice (snapshot, then incremental), and must converge on the truth.
Shard A picks its tables with the tap's `tables` setting, shard B with Meltano's `select`.
Each shard has its own `.meltano` directory (MELTANO_SYS_DIR_ROOT), as each container of a real
deployment would: Meltano keeps a plugin's config, catalog and state files in
`.meltano/run/<plugin>/`, so two runs of one plugin from one directory overwrite each other's
catalog (measured: shard A then synced with shard B's selection). State is shared (one systemdb).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import advance_all, assert_equals_truth, meltano_state
from tests.e2e.tooling import MeltanoProject, MeltanoResult
from tests.emulator_fixture import RunningEmulator

SHARDS = {
    "shard-a": (("accounts", "courses"),
                lambda tables: {"TAP_DAP_TABLES": json.dumps(list(tables))}),
    "shard-b": (("enrollments", "submissions", "users"),
                lambda tables: {"TAP_DAP__SELECT": json.dumps([f"canvas-{t}.*" for t in tables])}),
}


def shard_env(suffix: str, sys_dirs: Path) -> dict[str, str]:
    tables, selector = SHARDS[suffix]
    return {"MELTANO_SYS_DIR_ROOT": str(sys_dirs / suffix), **selector(tables)}


def run_shards_in_parallel(project: MeltanoProject, sys_dirs: Path) -> None:
    running = [
        project.start("run", "--no-install", f"--state-id-suffix={suffix}",
                      "tap-dap", "target-dap-sql", extra_env=shard_env(suffix, sys_dirs))
        for suffix in SHARDS
    ]
    for process in running:
        stdout, stderr = process.communicate(timeout=300)
        result = MeltanoResult([str(a) for a in process.args], process.returncode, stdout, stderr)
        assert result.returncode == 0, result.explain()


@pytest.mark.postgres
def test_parallel_shards_converge_in_one_postgres(
        meltano_project: MeltanoProject, dap_emulator: RunningEmulator, pg_url: str,
        tmp_path: Path) -> None:
    meltano_project.env["TARGET_DAP_SQL_SQLALCHEMY_URL"] = pg_url
    # Two first-ever Meltano processes race to migrate a fresh system database ("Cannot upgrade
    # the system database"): any one command creates it before the shards start.
    meltano_project.run("state", "list")
    for suffix in SHARDS:  # each "machine" installs its plugins (uv, cached: ~2 s)
        meltano_project.run("install", extra_env=shard_env(suffix, tmp_path))

    run_shards_in_parallel(meltano_project, tmp_path)
    assert_equals_truth(pg_url, dap_emulator)
    advance_all(dap_emulator)
    run_shards_in_parallel(meltano_project, tmp_path)
    assert_equals_truth(pg_url, dap_emulator)

    # each shard keeps its own state with exactly its own tables
    for suffix, (tables, _) in SHARDS.items():
        state = meltano_state(meltano_project, f"emulator:tap-dap-to-target-dap-sql:{suffix}")
        assert sorted(state["singer_state"]["bookmarks"]) == [f"canvas-{t}" for t in tables]
