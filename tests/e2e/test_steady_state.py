"""Steady state on every dialect: a snapshot, then incrementals with changes in between.

A representative set of emulator tables covers every column shape of the canvas and canvas_logs
datasets (enums required/optional with lower-case and capitalised labels such as
enrollments.type 'StudentEnrollment', an array of enum, an array of strings, JSON objects, dates,
timestamps required/optional, int16/32/64, float, number, uuid, ipv4, uuid keys). After every run
the pipeline exited 0, the database equals the emulator's truth, and — the schema being unchanged
— no run after the first sent a schema-changing statement (the drivers' statement log, see
tests/statement_log.py) nor changed the catalog (read back from the database). Also from a
database created by the official `dap initdb` (PostgreSQL, MariaDB), where none of our runs may
change the schema.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.compat.test_official_client import DAP, dap, ok
from tests.compat.test_two_way import _mysql_rows, _whole_seconds
from tests.e2e.replica import Replica, diff_table
from tests.e2e.tooling import base_env
from tests.emulator_fixture import RunningEmulator
from tests.integration.test_target_mysql import mysql_query
from tests.statement_log import ddl_statements, read_log

#: Together these hold every column shape of canvas + canvas_logs (see the module docstring).
TABLES = [("canvas", "enrollments"), ("canvas", "assignments"), ("canvas", "developer_keys"),
          ("canvas", "late_policies"), ("canvas", "learning_outcomes"),
          ("canvas_logs", "web_logs")]
STATEMENT_LOG = Path(__file__).resolve().parents[1] / "statement_log.py"
INCREMENTALS = 3


class Pipeline:
    """`tap-dap | target-dap-sql` runs chained by a state file, each with its statement log."""

    def __init__(self, workdir: Path, emulator: RunningEmulator, url: str,
                 tables: list[tuple[str, str]]) -> None:
        self.workdir, self.emulator, self.url, self.tables = workdir, emulator, url, tables
        self.runs = 0
        (workdir / "tap.json").write_text(json.dumps({
            "base_url": emulator.base_url, "client_id": emulator.client_id,
            "client_secret": emulator.client_secret, "poll_interval": 0.2,
            "namespaces": sorted({ns for ns, _ in tables}),
            "tables": [f"{ns}-{t}" for ns, t in tables]}))
        (workdir / "target.json").write_text(json.dumps({"sqlalchemy_url": url}))

    def shell(self, script: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=self.workdir,
                              env=base_env(self.workdir), capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
        return done

    def run(self) -> tuple[list[str], str]:
        """One replication step: (its statements, its log)."""
        self.runs += 1
        log = self.workdir / f"statements-{self.runs}.log"
        state = "--state state.json" if (self.workdir / "state.json").exists() else ""
        done = self.shell(
            f"tap-dap --config tap.json {state} | {sys.executable} {STATEMENT_LOG} {log} "
            "--config target.json > out.jsonl\n"
            "tail -n 1 out.jsonl > state.json")
        statements = read_log(log)
        # The log must be live for "no DDL" to mean anything: every run writes its meta rows.
        assert any("table_sync" in s for s in statements), "no statement was recorded"
        return statements, done.stderr

    def advance(self) -> None:
        for ns, table in self.tables:
            self.emulator.advance(ns, table, inserts=3, updates=4, deletes=2)

    def assert_equals_truth(self) -> None:
        for ns, table in self.tables:
            truth = self.emulator.truth(ns, table)
            stored = stored_rows(self.url, ns, table)
            if self.url.startswith("mysql"):  # datetime drops fractions (official layout)
                stored = [_whole_seconds(r) for r in stored]
                truth = [{"key": t["key"], "value": _whole_seconds(t["value"])} for t in truth]
            diff = diff_table(ns, table, truth, stored)
            assert not diff, str(diff)
            assert len(stored) == len(truth) > 0


def job_kinds(log: str) -> dict[str, set[str]]:
    """Stream -> the kinds of DAP query job the tap's log names for it."""
    kinds: dict[str, set[str]] = {}
    for stream, kind in re.findall(r"(\S+): (snapshot|incremental) job", log):
        kinds.setdefault(stream, set()).add(kind)
    return kinds


def stored_rows(url: str, ns: str, table: str) -> list[dict[str, Any]]:
    if url.startswith("mysql"):
        return _mysql_rows(url, table) if ns == "canvas" else _mysql_rows_of(url, ns, table)
    if url.startswith("sqlite"):
        return Replica(url).rows(ns, table)
    # to_jsonb: arrays of enum types come back as lists (psycopg has no loader for them)
    with psycopg.connect(url) as conn:
        rows = conn.execute(f'SELECT to_jsonb(t) FROM "{ns}"."{table}" t').fetchall()
    return [r[0] for r in rows]


def _mysql_rows_of(url: str, ns: str, table: str) -> list[dict[str, Any]]:
    import uuid

    name = f"{ns}__{table}"
    names = [r[0] for r in mysql_query(
        url, "SELECT column_name FROM information_schema.columns WHERE table_schema = "
             "DATABASE() AND table_name = %s ORDER BY ordinal_position", (name,))]
    rows = mysql_query(url, f'SELECT * FROM "{name}"')
    return [{n: str(uuid.UUID(bytes=v)) if isinstance(v, bytes) and len(v) == 16 else v
             for n, v in zip(names, row, strict=True)} for row in rows]


def catalog(url: str) -> list[tuple]:
    """Every column's definition (and PostgreSQL's enum labels) as the database reports it."""
    if url.startswith("mysql"):
        return mysql_query(url, "SELECT table_name, ordinal_position, column_name, column_type, "
                                "is_nullable, column_default, column_comment, collation_name "
                                "FROM information_schema.columns WHERE table_schema = DATABASE() "
                                "ORDER BY 1, 2")
    if url.startswith("sqlite"):
        _, rows = Replica(url).query("SELECT type, name, sql FROM sqlite_master ORDER BY 2")
        return rows
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT c.relnamespace::regnamespace::text, c.relname, a.attnum, a.attname, "
            "format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "col_description(c.oid, a.attnum) FROM pg_attribute a JOIN pg_class c ON "
            "c.oid = a.attrelid WHERE c.relnamespace::regnamespace::text IN "
            "('canvas', 'canvas_logs', 'instructure_dap') AND a.attnum > 0 AND NOT "
            "a.attisdropped ORDER BY 1, 2, 3").fetchall()
        enums = conn.execute(
            "SELECT t.typnamespace::regnamespace::text, t.typname, e.enumsortorder, "
            "e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
            "ORDER BY 1, 2, 3").fetchall()
    return columns + enums


def _url(request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path}/dap.db"
    return request.getfixturevalue("pg_url" if dialect == "postgres" else "mariadb_url")


def _assert_capitalised_labels_stored(url: str) -> None:
    """enrollments.type holds labels like 'StudentEnrollment' exactly (not lower-cased)."""
    types = {r["type"] for r in stored_rows(url, "canvas", "enrollments")}
    assert any(t != t.lower() for t in types), types


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                                     pytest.param("mariadb", marks=pytest.mark.mariadb)])
def test_snapshot_then_incrementals_change_rows_not_schema(
        dialect: str, emulator_factory: Any, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    url = _url(request, dialect, tmp_path)
    emulator = emulator_factory(tables=",".join(f"{ns}.{t}" for ns, t in TABLES), seed=3)
    pipeline = Pipeline(tmp_path, emulator, url, TABLES)

    statements, log = pipeline.run()
    assert job_kinds(log) == {f"{ns}-{t}": {"snapshot"} for ns, t in TABLES}
    created = ddl_statements(statements)
    for _, table in TABLES:  # the statement log sees the DDL it is there to catch
        assert any(table in s and s.upper().startswith("CREATE TABLE") for s in created), table
    pipeline.assert_equals_truth()
    _assert_capitalised_labels_stored(url)
    schema = catalog(url)

    for _ in range(INCREMENTALS):
        pipeline.advance()
        statements, log = pipeline.run()
        assert job_kinds(log) == {f"{ns}-{t}": {"incremental"} for ns, t in TABLES}
        assert ddl_statements(statements) == []
        assert catalog(url) == schema
        pipeline.assert_equals_truth()
    _assert_capitalised_labels_stored(url)


@pytest.mark.compat
@pytest.mark.skipif(not DAP.exists(), reason=f"official client not installed at {DAP}")
@pytest.mark.parametrize("dialect", [pytest.param("postgres", marks=pytest.mark.postgres),
                                     pytest.param("mariadb", marks=pytest.mark.mariadb)])
def test_incrementals_on_a_dap_initdb_database_change_rows_not_schema(
        dialect: str, emulator_factory: Any, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    url = _url(request, dialect, tmp_path)
    # The official MySQL DDL of ipv4 columns (web_logs) is invalid: `dap initdb` cannot create it.
    tables = [t for t in TABLES if dialect == "postgres" or t[1] != "web_logs"]
    emulator = emulator_factory(tables=",".join(f"{ns}.{t}" for ns, t in tables), seed=3)
    for ns in sorted({ns for ns, _ in tables}):
        ok(dap(emulator, "initdb", "--namespace", ns, "--table",
               ",".join(t for n, t in tables if n == ns), "--connection-string", url))
    pipeline = Pipeline(tmp_path, emulator, url, tables)
    pipeline.assert_equals_truth()
    schema = catalog(url)
    pipeline.shell("target-dap-sql --config target.json export-state > state.json")

    for _ in range(INCREMENTALS):
        pipeline.advance()
        statements, log = pipeline.run()
        assert job_kinds(log) == {f"{ns}-{t}": {"incremental"} for ns, t in tables}
        assert ddl_statements(statements) == []
        assert catalog(url) == schema
        pipeline.assert_equals_truth()
    _assert_capitalised_labels_stored(url)
