"""Stream → table names never merge two streams: a collision is one error before anything is
written, and PostgreSQL's 63-byte identifiers neither merge two long names nor cut a staging
table's name back to its live table's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.replica import Replica
from tests.integration.helpers import logged_errors
from tests.unit.target.dap_messages import (
    activate,
    record,
    run_cli,
    singer_schema,
    state,
    submissions_schema,
)


def generic(stream: str) -> dict[str, Any]:
    return {"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
            "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                        "v": {"type": "string"}}}}


def row(stream: str, i: int) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": {"id": i, "v": stream}}


def test_streams_that_would_share_a_sqlite_table_are_refused(tmp_path: Path) -> None:
    first, second = "canvas-a__b", "canvas__a-b"  # both `canvas__a__b` in SQLite
    run = run_cli({"sqlalchemy_url": f"sqlite:///{tmp_path}/dap.db"},
                  [generic(first), row(first, 1), generic(second), row(second, 1)], tmp_path)
    assert run.returncode == 1 and run.states == []
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: line 3, stream '{second}': streams '{first}' and '{second}' would both "
        "write 'canvas__a__b' in the database; rename one (stream maps `__alias__`) or give it "
        "its own default_target_schema"]


@pytest.mark.postgres
def test_long_names_that_postgresql_would_cut_to_one_are_refused(tmp_path: Path,
                                                                pg_url: str) -> None:
    stem = "x" * 70
    first, second = f"shop-{stem}_first", f"shop-{stem}_second"
    run = run_cli({"sqlalchemy_url": pg_url},
                  [generic(first), row(first, 1), generic(second), row(second, 1)], tmp_path)
    assert run.returncode == 1
    [error] = logged_errors(run.stderr)
    assert f"streams '{first}' and '{second}' would both write 'shop.{'x' * 63}'" in error


@pytest.mark.postgres
def test_a_63_byte_dap_table_snapshots_through_its_own_staging_table(tmp_path: Path,
                                                                     pg_url: str) -> None:
    table = "t" * 63
    stream = f"canvas-{table}"
    dap = submissions_schema(1)
    messages = [singer_schema("canvas", table, 1, dap), activate(stream, 7),
                *[record(stream, {"id": i}, {"attempt": 1, "workflow_state": "submitted"})
                  for i in (1, 2)],
                state({stream: ("2024-01-01T00:00:00Z", 1)}), activate(stream, 7)]
    for _ in range(2):  # the second snapshot replaces the first one's table
        run = run_cli({"sqlalchemy_url": pg_url}, messages, tmp_path)
        assert run.returncode == 0, run.stderr
    assert sorted(r["id"] for r in Replica(pg_url).rows("canvas", table)) == [1, 2]


@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_dap_table_replicated_under_another_name_is_not_overwritten(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path}/dap.db" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    dap = submissions_schema(1)
    first = [singer_schema("canvas", "things", 1, dap),
             record("canvas-things", {"id": 1}, {"attempt": 1, "workflow_state": "submitted"}),
             state({"canvas-things": ("2024-01-01T00:00:00Z", 1)})]
    assert run_cli({"sqlalchemy_url": url}, first, tmp_path).returncode == 0
    # another namespace's `things` written into canvas's table by default_target_schema
    other = [singer_schema("canvas_logs", "things", 1, dap),
             record("canvas_logs-things", {"id": 2}, {"attempt": 1, "workflow_state": "submitted"})]
    run = run_cli({"sqlalchemy_url": url, "default_target_schema": "canvas"}, other, tmp_path)
    assert run.returncode == 1
    [error] = logged_errors(run.stderr)
    assert "table 'things' already replicates canvas.things" in error
    assert [r["id"] for r in Replica(url).rows("canvas", "things")] == [1]
