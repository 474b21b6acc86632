"""Runs of compact RECORD lines (decoded together) load exactly what line-by-line loading does.

Taps write compact JSON; the target then decodes a stream's consecutive RECORD lines in one call.
Every message list here is loaded twice — compact (runs) and spaced (`json.dumps`, which the
target takes line by line) — into two fresh databases that must end up identical, with the
same STATE lines; and a bad record inside a run must still be reported with its exact line.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from target_dap_sql.errors import InputError
from tests.servers import PostgresServer
from tests.unit.target.dap_messages import (
    activate,
    compact,
    dump_pg,
    dump_sqlite,
    record,
    run_in_process,
    singer_schema,
    state,
    submission,
    submissions_schema,
    web_logs_schema,
)

S = "canvas-submissions"
W = "canvas_logs-web_logs"


def _spaced(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _web_log(i: int) -> dict[str, Any]:
    return {"timestamp": f"2024-01-0{1 + i % 9}T00:00:00Z", "http_method": "get", "url": f"/p/{i}"}


def _messages() -> list[dict[str, Any]]:
    snapshot = [record(S, {"id": i}, submission(i)) for i in range(1, 40)]
    changes = [
        *[record(S, {"id": i}, submission(i, grade="B")) for i in range(5, 15)],  # updates
        *[record(S, {"id": i}, action="D") for i in range(10, 20)],  # deletes (no value)
        record(S, {"id": 12}, submission(12, grade="again")),  # deleted, then back
        record(S, {"id": 500}, action="D"),  # a key never loaded
        record(S, {"id": 600}, submission(600)),
        record(S, {"id": 600}, submission(600, grade="last")),  # last action per key wins
    ]
    return [
        singer_schema("canvas", "submissions", 1, submissions_schema(1)),
        activate(S, 7), *snapshot, activate(S, 7),
        state({S: ("2024-01-10T00:00:00Z", 1)}),
        singer_schema("canvas_logs", "web_logs", 1, web_logs_schema()),
        *changes[:12],
        *[record(W, {"id": f"w{i}"}, _web_log(i)) for i in range(8)],  # interleaved stream
        *changes[12:],
        state({S: ("2024-01-11T00:00:00Z", 1), W: ("2024-01-11T00:00:00Z", 1)}),
    ]


def _load_both(config_of: Any, messages: list[dict[str, Any]]) -> tuple[list, list]:
    runs = run_in_process(config_of("runs"), [compact(m) for m in messages])
    lines = run_in_process(config_of("lines"), [_spaced(m) for m in messages])
    return runs, lines


@pytest.mark.parametrize("batch_size_rows", [3, 1000])
def test_compact_runs_load_what_line_by_line_loads_sqlite(tmp_path: Path,
                                                          batch_size_rows: int) -> None:
    def config(name: str) -> dict[str, Any]:
        return {"sqlalchemy_url": f"sqlite:///{tmp_path / name}.db",
                "batch_size_rows": batch_size_rows}

    states_runs, states_lines = _load_both(config, _messages())
    assert states_runs == states_lines and states_runs
    loaded = dump_sqlite(tmp_path / "runs.db")
    assert loaded == dump_sqlite(tmp_path / "lines.db")
    ids = sorted(row[0] for row in loaded["canvas__submissions"])
    assert ids == [*range(1, 10), 12, *range(20, 40), 600]
    assert len(loaded["canvas_logs__web_logs"]) == 8


@pytest.mark.postgres
def test_compact_runs_load_what_line_by_line_loads_postgres(
        postgres_server: PostgresServer) -> None:
    urls = {name: postgres_server.create_database(f"r_{name}_{uuid.uuid4().hex[:8]}")
            for name in ("runs", "lines")}

    def config(name: str) -> dict[str, Any]:
        return {"sqlalchemy_url": urls[name], "batch_size_rows": 4}

    states_runs, states_lines = _load_both(config, _messages())
    assert states_runs == states_lines and states_runs
    assert dump_pg(urls["runs"]) == dump_pg(urls["lines"])


@pytest.mark.parametrize("bad_value, message", [
    ({"workflow_state": "no-such-state"}, "workflow_state"),
    ({"attempt": "one"}, "attempt"),
])
def test_a_bad_record_inside_a_run_names_its_line(tmp_path: Path, bad_value: dict[str, Any],
                                                  message: str) -> None:
    messages = [
        singer_schema("canvas", "submissions", 1, submissions_schema(1)),
        *[record(S, {"id": i}, submission(i)) for i in range(1, 30)],
        record(S, {"id": 30}, submission(30, **bad_value)),  # line 31
        *[record(S, {"id": i}, submission(i)) for i in range(31, 40)],
    ]
    with pytest.raises(InputError) as caught:
        run_in_process({"sqlalchemy_url": f"sqlite:///{tmp_path / 'dap.db'}"},
                       [compact(m) for m in messages])
    assert caught.value.line == 31
    assert message in str(caught.value)


def test_an_upsert_missing_a_required_column_inside_a_run_of_deletes(tmp_path: Path) -> None:
    value = submission(9)
    del value["workflow_state"]  # required in the schema: only a delete may leave it out
    messages = [
        singer_schema("canvas", "submissions", 1, submissions_schema(1)),
        *[record(S, {"id": i}, action="D") for i in range(1, 6)],
        record(S, {"id": 9}, value),  # line 7
    ]
    with pytest.raises(InputError) as caught:
        run_in_process({"sqlalchemy_url": f"sqlite:///{tmp_path / 'dap.db'}"},
                       [compact(m) for m in messages])
    assert caught.value.line == 7
    assert "workflow_state" in str(caught.value)


@pytest.mark.postgres
def test_an_escaped_nul_across_a_read_block_boundary_is_still_found(pg_url: str) -> None:
    """The input is read in 1 MiB blocks; a NUL escape split by a block edge must still stop
    a PostgreSQL load with the line and column (PostgreSQL cannot store NUL)."""
    from target_dap_sql.reader import INPUT_BUFFER_BYTES
    from target_dap_sql.target import TargetDapSQL

    head = [compact(singer_schema("canvas", "submissions", 1, submissions_schema(1))),
            compact(record(S, {"id": 1}, submission(1)))]
    bad = compact(record(S, {"id": 3}, submission(3, body="a\x00b")))
    escape_at = bad.index(b"\\u0000") + 3  # the edge falls inside the escape
    filler = compact(record(S, {"id": 2}, submission(2, body="")))
    size = sum(map(len, head)) + len(filler) + escape_at
    filler = compact(record(S, {"id": 2}, submission(2, body="x" * (INPUT_BUFFER_BYTES - size))))
    data = b"".join([*head, filler, bad])
    assert data[INPUT_BUFFER_BYTES - 3:INPUT_BUFFER_BYTES + 3] == b"\\u0000"
    with pytest.raises(InputError) as caught:
        TargetDapSQL(config={"sqlalchemy_url": pg_url}).listen(file_input=io.BytesIO(data))
    assert caught.value.line == 4
    assert "column 'body' (key 3) contains a NUL character" in str(caught.value)
