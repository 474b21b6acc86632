"""The official ``dap`` CLI (instructure-dap-client 2.3.1) against the emulator.

Runs the CLI from /work/main/.venv-dap (installed by scripts/test) with DAP_TRACKING=false, asserts
exit code 0 and, for initdb/syncdb, that PostgreSQL holds exactly ``/_emulator/truth``.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.emulator_fixture import RunningEmulator

DAP = Path(__file__).resolve().parents[2] / ".venv-dap" / "bin" / "dap"
REPLICATED = ["accounts", "users", "courses", "enrollments", "assignments", "submissions",
              "developer_keys", "late_policies", "quizzes"]

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(not DAP.exists(), reason=f"official client not installed at {DAP} "
                                                "(scripts/test installs it)"),
]


def dap(emulator: RunningEmulator, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(DAP), "--base-url", emulator.base_url, "--client-id", emulator.client_id,
            "--client-secret", emulator.client_secret, "--non-interactive", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DAP_TRACKING": "false"})


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _cell(value: Any) -> Any:
    """A PostgreSQL value in the JSON form the emulator's truth uses."""
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{value.microsecond:06d}Z" if value.microsecond else "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_cell(v) for v in value]
    if isinstance(value, dict | str | int | float | bool) or value is None:
        return value
    return str(value)  # uuid.UUID, ipaddress


def assert_db_equals_truth(pg_url: str, emulator: RunningEmulator, ns: str, table: str) -> int:
    truth = emulator.truth(ns, table)
    with psycopg.connect(pg_url) as conn:
        cursor = conn.execute(f'SELECT * FROM "{ns}"."{table}" ORDER BY 1')
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, map(_cell, row), strict=True)) for row in cursor.fetchall()]
    expected = [{**t["key"], **t["value"]} for t in truth]
    assert len(rows) == len(expected), f"{ns}.{table}: {len(rows)} rows, truth {len(expected)}"
    for got, want in zip(rows, expected, strict=True):
        for column, value in want.items():
            cell = got[column]
            if isinstance(value, list) and isinstance(cell, str):
                # psycopg has no loader for arrays of enum types; parse the '{a,b}' literal
                cell = [part.strip('"') for part in cell[1:-1].split(",") if part]
            assert cell == value, f"{ns}.{table} {list(got.items())[0]} {column}"
    return len(rows)


def test_list_schema_snapshot_incremental(emulator_factory, tmp_path: Path) -> None:
    emulator = emulator_factory(rows=12, rows_per_object=5)
    tables = ok(dap(emulator, "list", "--namespace", "canvas")).stdout.split()
    assert {"submissions", "users", "accounts"} <= set(tables) and len(tables) > 100
    ok(dap(emulator, "schema", "--namespace", "canvas", "--table", "submissions,users",
           "--output-directory", str(tmp_path)))
    saved = json.loads((tmp_path / "submissions_schema_version_1.json").read_text())
    assert set(saved) == {"schema", "version"} and "workflow_state" in json.dumps(saved)

    for fmt in ("jsonl", "tsv", "csv"):
        out = tmp_path / fmt
        ok(dap(emulator, "snapshot", "--namespace", "canvas", "--table", "users", "--format", fmt,
               "--output-directory", str(out)))
        files = sorted(out.glob(f"job_*/*.{fmt}.gz"))
        assert len(files) == 3, files  # 12 rows, 5 per object
        text = b"".join(gzip.decompress(f.read_bytes()) for f in files).decode()
        if fmt == "jsonl":
            keys = sorted(json.loads(line)["key"]["id"] for line in text.splitlines())
            assert keys == list(range(1, 13))
        else:
            assert text.splitlines()[0].startswith("meta.ts" + ("\t" if fmt == "tsv" else ","))
            assert "meta.action" not in text.splitlines()[0]

    emulator.advance("canvas", "users", inserts=2, updates=1, deletes=1)
    out = tmp_path / "inc"
    ok(dap(emulator, "incremental", "--namespace", "canvas", "--table", "users", "--since",
           "2020-01-01T00:00:00Z", "--format", "tsv", "--output-directory", str(out)))
    lines = [line for f in sorted(out.glob("job_*/*.tsv.gz"))
             for line in gzip.decompress(f.read_bytes()).decode().splitlines()]
    assert lines[0].startswith("meta.ts\tmeta.action\tkey.id\t")
    actions = [line.split("\t")[1] for line in lines if not line.startswith("meta.ts")]
    assert sorted(actions).count("D") == 1 and len(actions) == 12 + 2


@pytest.mark.postgres
def test_initdb_syncdb_listdb_dropdb_match_truth(emulator_factory, pg_url: str) -> None:
    emulator = emulator_factory(rows=40, rows_per_object=15)
    conn = ["--connection-string", pg_url]
    ok(dap(emulator, "initdb", "--namespace", "canvas", "--table", ",".join(REPLICATED), *conn))
    ok(dap(emulator, "initdb", "--namespace", "canvas_logs", "--table", "web_logs", *conn))
    for table in REPLICATED:
        assert assert_db_equals_truth(pg_url, emulator, "canvas", table) == 40
    assert assert_db_equals_truth(pg_url, emulator, "canvas_logs", "web_logs") == 40

    emulator.advance("canvas", "submissions", inserts=5, updates=7, deletes=3)
    emulator.advance("canvas", "submissions", updates=4, deletes=1)
    emulator.advance("canvas", "users", inserts=1, deletes=2)
    emulator.schema_change("canvas", "users", add_column={
        "name": "nickname", "schema": {"type": "string", "maxLength": 64}})
    emulator.schema_change("canvas", "submissions", add_enum_value={
        "column": "workflow_state", "value": "archived"})
    emulator.advance("canvas", "users", inserts=3, updates=3)
    ok(dap(emulator, "syncdb", "--namespace", "canvas", "--table", "submissions,users", *conn))
    assert assert_db_equals_truth(pg_url, emulator, "canvas", "submissions") == 40 + 5 - 3 - 1
    assert assert_db_equals_truth(pg_url, emulator, "canvas", "users") == 40 + 1 - 2 + 3

    listing = json.loads(ok(dap(emulator, "listdb", "--namespace", "canvas",
                                 "--omit-not-replicated", *conn)).stdout)
    by_name = {row["name"]: row for row in listing}
    assert sorted(by_name) == sorted(REPLICATED)
    assert (by_name["submissions"]["schema"], by_name["submissions"]["records"]) == (2, 41)
    assert (by_name["users"]["schema"], by_name["users"]["records"]) == (2, 42)
    ok(dap(emulator, "dropdb", "--namespace", "canvas", "--table", "submissions", *conn))
    with psycopg.connect(pg_url) as db:
        left = db.execute("SELECT source_table FROM instructure_dap.table_sync "
                          "WHERE source_namespace = 'canvas' ORDER BY 1").fetchall()
        missing = db.execute("SELECT to_regclass('canvas.submissions')").fetchone()
    assert [r[0] for r in left] == sorted(t for t in REPLICATED if t != "submissions")
    assert missing == (None,)


@pytest.mark.postgres
def test_official_client_sees_snapshot_required_out_of_range_not_found(emulator_factory,
                                                                        pg_url: str) -> None:
    emulator = emulator_factory(tables="accounts,web_logs")
    conn = ["--connection-string", pg_url]
    ok(dap(emulator, "initdb", "--namespace", "canvas", "--table", "accounts", *conn))
    emulator.reload("canvas", "accounts")
    result = dap(emulator, "syncdb", "--namespace", "canvas", "--table", "accounts", *conn)
    assert result.returncode == 5
    assert "was reloaded; run a snapshot query first" in result.stderr

    result = dap(emulator, "incremental", "--namespace", "canvas_logs", "--table", "web_logs",
                 "--since", "2000-01-01T00:00:00Z", "--output-directory", "/tmp/unused-dap-out")
    assert result.returncode == 5 and "keeps 30 days of data" in result.stderr

    result = dap(emulator, "schema", "--namespace", "canvas", "--table", "nope",
                 "--output-directory", "/tmp/unused-dap-out")
    assert result.returncode == 5 and "Table does not exist: nope" in result.stderr
