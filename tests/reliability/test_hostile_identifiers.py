"""Issue 9.5: namespace, table, column and enum names that are SQL keywords or carry quotes,
semicolons, spaces and non-ASCII letters, served by the emulator (``--data DIR``): created safely
(quoted) in SQLite and PostgreSQL with no injection, or refused with a clear error."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.replica import Replica, diff_table
from tests.emulator_fixture import RunningEmulator
from tests.reliability.fixtures import write_table
from tests.reliability.pipeline import Workdir

INJECTION = "x'); DROP TABLE canvas__select; --"
COLUMNS: dict[str, Any] = {
    "semi;colon": {"type": "string"},
    "space col": {"type": "string"},
    "from": {"type": "integer", "format": "int32"},
    "sq'uote": {"type": "string"},
    "ÄÖÜ_表": {"type": "string"},
    INJECTION: {"type": "string"},
    "state": {"type": "string", "enum": ["a'b", "c\"d; DROP TYPE x", "__dap_unspecified__"]},
}
KEY = {"id": {"type": "integer", "format": "int64"}}


def values(i: int, columns: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, schema in columns.items():
        if "enum" in schema:
            out[name] = schema["enum"][i % 2]
        elif schema["type"] == "integer":
            out[name] = i
        else:
            out[name] = f"{name} = {i}'\";"
    return out


def serve(factory: Callable[..., RunningEmulator], tmp_path: Path,
          tables: list[tuple[str, str]], columns: dict[str, Any]) -> RunningEmulator:
    for namespace, table in tables:
        changes = [{"key": {"id": i}, "value": values(i, columns)} for i in (1, 2, 3)]
        write_table(tmp_path / "data", namespace, table, KEY, columns, changes)
    return factory(data=tmp_path / "data", rows=0)


def quoted(replica: Replica, namespace: str, table: str) -> str:
    def ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'
    if replica.dialect == "sqlite":
        return ident(f"{namespace}__{table}")
    return f"{ident(namespace)}.{ident(table)}"


def assert_tables_equal_truth(workdir: Workdir, tables: list[tuple[str, str]]) -> None:
    replica = Replica(workdir.db_url)
    for namespace, table in tables:
        path = f"/_emulator/truth/{quote(namespace)}/{quote(table)}"
        with urllib.request.urlopen(workdir.emulator.base_url + path, timeout=30) as answer:
            truth = [json.loads(line) for line in answer.read().splitlines() if line]
        columns, rows = replica.query(f"SELECT * FROM {quoted(replica, namespace, table)}")
        stored = [dict(zip(columns, row, strict=True)) for row in rows]
        diff = diff_table(namespace, table, truth, stored)
        assert not diff, str(diff)
        assert len(stored) == 3


def test_keywords_quotes_semicolons_spaces_unicode_are_quoted(
        emulator_factory: Callable[..., RunningEmulator], db_url: str, tmp_path: Path) -> None:
    tables = [("canvas", "select"), ("canvas", "user"), ("order", "group")]
    emu = serve(emulator_factory, tmp_path, tables, COLUMNS)
    workdir = Workdir(tmp_path / "job", emu, db_url, namespaces=["canvas", "order"])
    run = workdir.run()
    assert run.ok, run.explain()
    assert_tables_equal_truth(workdir, tables)  # the injection column did not drop the table
    synced = Replica(db_url).table_sync()
    assert sorted(synced) == sorted(tables)


@pytest.mark.parametrize("column", ['dq"uote', "back\\slash"])
def test_double_quote_or_backslash_in_a_column_name(
        column: str, emulator_factory: Callable[..., RunningEmulator], tmp_path: Path) -> None:
    tables = [("canvas", "things")]
    emu = serve(emulator_factory, tmp_path, tables, {column: {"type": "string"}})
    workdir = Workdir(tmp_path / "job", emu, f"sqlite:///{tmp_path}/dap.db")
    run = workdir.run()
    assert "Traceback" not in run.target_stderr, run.explain()
    assert run.ok, run.explain()
    assert_tables_equal_truth(workdir, tables)


@pytest.mark.parametrize("table", ["semi;colon", "q'uote", "sp ace", "ünï_表"])
def test_table_names_that_need_url_encoding(
        table: str, emulator_factory: Callable[..., RunningEmulator], tmp_path: Path) -> None:
    tables = [("canvas", table)]
    emu = serve(emulator_factory, tmp_path, tables, {"note": {"type": "string"}})
    workdir = Workdir(tmp_path / "job", emu, f"sqlite:///{tmp_path}/dap.db")
    run = workdir.run()
    assert run.ok, run.explain()
    assert_tables_equal_truth(workdir, tables)
