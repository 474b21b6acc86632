"""A database made by dap_replicator continues under `dap syncdb` and under
`tap-dap | target-dap-sql`, and the reverse: every step ends equal to the emulator's truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dap_replicator import DatabaseConnection, SQLReplicator
from tests.compat.test_official_client import DAP, dap, ok
from tests.compat.test_two_way import DIALECTS, TABLES, _shell, _url, _write_configs
from tests.e2e.replica import as_utc
from tests.emulator_fixture import RunningEmulator
from tests.integration.test_replicator import (
    assert_equals_truth,
    assert_sync_moved_on,
    meta_rows,
    open_session,
)

FAST = {"poll_interval": 0.2}
official = pytest.mark.skipif(not DAP.exists(), reason=f"official client not installed at {DAP} "
                                                       "(scripts/test installs it)")


def _advance(emulator: RunningEmulator) -> None:
    for table in TABLES:
        emulator.advance("canvas", table, inserts=3, updates=4, deletes=2)


@pytest.fixture
def emulator(emulator_factory: Any) -> RunningEmulator:
    return emulator_factory(tables=",".join(TABLES), rows=30, rows_per_object=10)


@pytest.mark.compat
@official
@pytest.mark.parametrize("dialect", DIALECTS)
def test_replicator_then_dap_syncdb_then_replicator(dialect: str, emulator: RunningEmulator,
                                                    request: pytest.FixtureRequest) -> None:
    url = _url(request, dialect)
    session = open_session(emulator)
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    try:
        for table in TABLES:
            replicator.initialize("canvas", table)
        _advance(emulator)
        ok(dap(emulator, "syncdb", "--namespace", "canvas", "--table", ",".join(TABLES),
               "--connection-string", url))
        assert_equals_truth(url, emulator, TABLES)
        after_dap = meta_rows(url)
        _advance(emulator)
        for table in TABLES:
            result = replicator.synchronize("canvas", table)  # from the meta row dap wrote
            assert result.snapshot is False
            assert_sync_moved_on(dialect, result, changes=9, rows=30,
                                 previous=after_dap[table][0])
    finally:
        session.close()
    assert_equals_truth(url, emulator, TABLES)


@pytest.mark.compat
@official
@pytest.mark.parametrize("dialect", DIALECTS)
def test_dap_initdb_then_replicator(dialect: str, emulator: RunningEmulator,
                                    request: pytest.FixtureRequest) -> None:
    url = _url(request, dialect)
    ok(dap(emulator, "initdb", "--namespace", "canvas", "--table", ",".join(TABLES),
           "--connection-string", url))
    session = open_session(emulator)
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    _advance(emulator)
    try:
        with pytest.raises(ValueError, match="Table already initialized"):
            replicator.initialize("canvas", TABLES[0])
        for table in TABLES:
            assert replicator.replicate("canvas", table).snapshot is False
    finally:
        session.close()
    assert_equals_truth(url, emulator, TABLES)


def test_replicator_and_the_cli_pipeline_continue_each_other(emulator: RunningEmulator,
                                                             tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dap.db"
    _write_configs(tmp_path, emulator, url)
    session = open_session(emulator)
    replicator = SQLReplicator(session, DatabaseConnection(url), tap_settings=FAST)
    try:
        for table in TABLES:
            replicator.initialize("canvas", table)
        _advance(emulator)
        run = _shell("target-dap-sql --config target.json export-state > state.json && "
                     "tap-dap --config tap.json --state state.json "
                     "| target-dap-sql --config target.json > new_state.json", tmp_path)
        assert "snapshot job" not in run.stderr  # resumed from the replicator's meta rows
        assert_equals_truth(url, emulator, TABLES)
        final = json.loads((tmp_path / "new_state.json").read_text().splitlines()[-1])
        _advance(emulator)
        for table in TABLES:
            result = replicator.synchronize("canvas", table)
            assert result.rows_written == 9
            reached = as_utc(final["bookmarks"][f"canvas-{table}"]["timestamp"])
            assert as_utc(result.timestamp) > reached
    finally:
        session.close()
    assert_equals_truth(url, emulator, TABLES)
