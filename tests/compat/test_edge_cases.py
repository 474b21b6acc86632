"""The official `dap` CLI and tap-dap | target-dap-sql continue each other's edge-case table.

`canvas.edge_cases` (tests/compat/edge_cases.py: arrays, nested objects, enums, JSON, extreme
timestamps) is served from an emulator ``--data`` fixture with ``--clock-start data``, and its
recorded later phases are appended with the admin API. Every step compares the database with the
rows computed from the recorded lines, and the catalogs of both tools' tables with each other. A
`dap syncdb` on a table the other tool made must not ALTER it (its debug log).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.compat import edge_cases as edge
from tests.compat.test_official_client import DAP, dap, ok
from tests.compat.test_two_way import _second_database, _shell, column_definitions
from tests.emulator_fixture import RunningEmulator
from tests.integration.test_target_mysql import mysql_query

COLUMNS_V1 = ["id", *edge.SCHEMA_V1["properties"]["value"]["properties"]]
JSON_COLUMNS = ("tags", "scores", "labels", "settings")
DIALECTS = [pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("mariadb", marks=pytest.mark.mariadb)]

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(not DAP.exists(), reason=f"official client not installed at {DAP}"),
]


@pytest.fixture
def replay(emulator_factory: Any, tmp_path: Path) -> RunningEmulator:
    data = edge.write_fixture(tmp_path / "data")
    return emulator_factory(dataset="empty", data=data, clock_start="data", rows_per_object=3)


def _url(request: pytest.FixtureRequest, dialect: str) -> str:
    return request.getfixturevalue("pg_url" if dialect == "postgres" else "mariadb_url")


def ours(emulator: RunningEmulator, url: str, workdir: Path) -> str:
    """One tap-dap | target-dap-sql run (resuming from workdir/state.json if there); stderr."""
    workdir.mkdir(exist_ok=True)
    (workdir / "tap.json").write_text(json.dumps({
        "base_url": emulator.base_url, "client_id": emulator.client_id,
        "client_secret": emulator.client_secret, "tables": [edge.TABLE], "poll_interval": 0.2}))
    (workdir / "target.json").write_text(json.dumps({"sqlalchemy_url": url}))
    resume = "--state state.json" if (workdir / "state.json").exists() else ""
    return _shell(f"tap-dap --config tap.json {resume} | target-dap-sql --config target.json "
                  "> out.json && tail -n 1 out.json > state.json", workdir).stderr


def official(emulator: RunningEmulator, command: str, url: str) -> str:
    """`dap --loglevel debug <command>` on the table; its log (stdout and stderr)."""
    done = ok(dap(emulator, "--loglevel", "debug", command, "--namespace", edge.NS, "--table",
                  edge.TABLE, "--connection-string", url))
    return done.stdout + done.stderr


#: What `dap syncdb` does to every MariaDB table with JSON columns, its own `dap initdb` ones too:
#: MariaDB reports `json` as longtext, so pysqlsync "changes" each back to json on every run.
MARIADB_OWN_ALTERS = {f'MODIFY COLUMN "{c}" json' for c in JSON_COLUMNS} | {
    f'ALTER TABLE "{edge.NS}__{edge.TABLE}"'}


def assert_no_alter(log: str, url: str) -> None:
    """`dap syncdb` changed nothing in the table (on MariaDB: nothing beyond its own habit)."""
    blocks = re.findall(r"synchronize schema with SQL:\n(.*?)(?=\n\d{4}-\d\d-\d\d |\Z)", log,
                        flags=re.DOTALL)
    statements = [line.strip().rstrip(",;") for block in blocks for line in block.splitlines()]
    if url.startswith("mysql"):
        statements = [s for s in statements if s and s not in MARIADB_OWN_ALTERS]
    else:
        statements += [line for line in log.splitlines() if re.search(r"\bALTER\b", line)]
    assert not statements, "dap syncdb changed the table:\n" + "\n".join(statements[:10])


def stored_rows(url: str, columns: list[str]) -> dict[int, dict[str, Any]]:
    if url.startswith("mysql"):
        names = ", ".join(f'"{c}"' for c in columns)
        rows = []
        for values in mysql_query(url, f'SELECT {names} FROM "{edge.NS}__{edge.TABLE}"'):
            row = dict(zip(columns, values, strict=True))
            rows.append({c: json.loads(v) if c in JSON_COLUMNS and v is not None else v
                         for c, v in row.items()})
    else:
        with psycopg.connect(url) as conn:
            found = conn.execute(f'SELECT to_jsonb(t) FROM "{edge.NS}"."{edge.TABLE}" t').fetchall()
        rows = [{c: r[0][c] for c in columns} for r in found]
    return {row["id"]: edge.normalise(row) for row in rows}


def assert_rows(url: str, *phases: list[dict[str, Any]], columns: list[str] = COLUMNS_V1) -> None:
    expected = edge.expected_rows(*phases, columns=columns)
    if url.startswith("mysql"):  # the official MySQL layout keeps whole seconds
        for row in expected.values():
            for column in edge.TIMESTAMP_COLUMNS:
                if row[column] is not None:
                    row[column] = row[column].replace(microsecond=0)
    assert stored_rows(url, columns) == expected


def catalog(url: str) -> list[tuple]:
    """Column definitions, and on PostgreSQL each array column's dimension (attndims)."""
    if url.startswith("mysql"):
        return column_definitions(url, f"{edge.NS}__{edge.TABLE}")
    with psycopg.connect(url) as conn:
        dims = conn.execute("SELECT attname, attndims FROM pg_attribute WHERE attrelid = "
                            "to_regclass(%s) AND attnum > 0 ORDER BY attnum",
                            (f"{edge.NS}.{edge.TABLE}",)).fetchall()
    return column_definitions(url, f"{edge.NS}.{edge.TABLE}") + dims


@pytest.mark.parametrize("dialect", DIALECTS)
def test_our_snapshot_then_dap_syncdb_without_alter(dialect: str, replay: RunningEmulator,
                                                    tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    url = _url(request, dialect)
    ours(replay, url, tmp_path / "ours")
    assert_rows(url, edge.PHASE1)
    official_url = _second_database(url)
    official(replay, "initdb", official_url)
    assert_rows(official_url, edge.PHASE1)
    assert catalog(url) == catalog(official_url)
    if dialect == "postgres":  # the documented difference: our exact value, dap's infinity
        with psycopg.connect(url) as a, psycopg.connect(official_url) as b:
            query = f"SELECT happened_at::text FROM {edge.NS}.{edge.TABLE} WHERE id IN (1, 2) " \
                    "ORDER BY id"
            assert a.execute(query).fetchall() == [("9999-12-31 23:59:59.999999",),
                                                   ("0001-01-01 00:00:00",)]
            assert b.execute(query).fetchall() == [("infinity",), ("-infinity",)]

    replay.append_changes(edge.NS, edge.TABLE, edge.jsonl(edge.PHASE2))
    assert_no_alter(official(replay, "syncdb", url), url)
    assert_rows(url, edge.PHASE1, edge.PHASE2)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dap_initdb_then_ours_then_dap_again(dialect: str, replay: RunningEmulator,
                                             tmp_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    url = _url(request, dialect)
    official(replay, "initdb", url)
    assert_rows(url, edge.PHASE1)
    workdir = tmp_path / "ours"
    workdir.mkdir()
    (workdir / "target.json").write_text(json.dumps({"sqlalchemy_url": url}))
    _shell("target-dap-sql --config target.json export-state > state.json", workdir)

    replay.append_changes(edge.NS, edge.TABLE, edge.jsonl(edge.PHASE2))
    log = ours(replay, url, workdir)
    assert "incremental job" in log and "snapshot job" not in log
    assert_rows(url, edge.PHASE1, edge.PHASE2)

    # back to dap on rows we wrote (exact 9999-12-31 values included): no ALTER, no failure
    later = [edge.upsert_line(2, "2024-05-02T12:00:00Z", happened_at=edge.MIN_TS, tags=["back"]),
             edge.delete_line(7, "2024-05-02T12:00:01Z")]
    replay.append_changes(edge.NS, edge.TABLE, edge.jsonl(later))
    assert_no_alter(official(replay, "syncdb", url), url)
    assert_rows(url, edge.PHASE1, edge.PHASE2, later)


@pytest.mark.postgres
def test_recorded_timeline_replays_alike_through_both_tools(replay: RunningEmulator,
                                                            pg_url: str, tmp_path: Path) -> None:
    """Phase 1 (fixture) → snapshot; phase 2 appended → incremental; schema 1 → 3 and phase 3
    → incremental. Both databases equal the recorded lines after each step."""
    url_ours, url_dap = pg_url, _second_database(pg_url)
    ours(replay, url_ours, tmp_path / "ours")
    official(replay, "initdb", url_dap)
    for url in (url_ours, url_dap):
        assert_rows(url, edge.PHASE1)

    replay.append_changes(edge.NS, edge.TABLE, edge.jsonl(edge.PHASE2))
    ours(replay, url_ours, tmp_path / "ours")
    official(replay, "syncdb", url_dap)
    for url in (url_ours, url_dap):
        assert_rows(url, edge.PHASE1, edge.PHASE2)

    assert replay.set_schema(edge.NS, edge.TABLE, edge.schema_v3(), 3, ts=edge.PHASE3_TS) == 3
    replay.append_changes(edge.NS, edge.TABLE, edge.jsonl(edge.PHASE3))
    log = ours(replay, url_ours, tmp_path / "ours")
    assert "snapshot job" not in log
    official(replay, "syncdb", url_dap)
    for url in (url_ours, url_dap):
        assert_rows(url, edge.PHASE1, edge.PHASE2, edge.PHASE3, columns=[*COLUMNS_V1, "extra"])
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT schema_version FROM instructure_dap.table_sync WHERE "
                                "source_table = %s", (edge.TABLE,)).fetchall() == [(3,)]
    assert catalog(url_ours) == catalog(url_dap)
