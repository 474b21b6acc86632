"""Moving a replica between the official `dap` CLI and tap-dap | target-dap-sql, both ways.

On PostgreSQL and MariaDB, against the emulator: (a) `dap initdb`, then `target-dap-sql
export-state` and an incremental tap-dap run; (b) our snapshot, then `dap syncdb`; (c) `dap listdb`
lists what we replicated. Every step ends with the database equal to `/_emulator/truth`, and the
tables both tools create have identical column definitions.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.compat.test_official_client import DAP, dap, ok
from tests.e2e.replica import ISO_TIMESTAMP, Replica, diff_table
from tests.e2e.tooling import base_env
from tests.emulator_fixture import RunningEmulator
from tests.integration.test_target_mysql import mysql_query

TABLES = ["accounts", "submissions"]
DIALECTS = [pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("mariadb", marks=pytest.mark.mariadb)]

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(not DAP.exists(), reason=f"official client not installed at {DAP} "
                                                "(scripts/test installs it)"),
]


def _url(request: pytest.FixtureRequest, dialect: str) -> str:
    return request.getfixturevalue("pg_url" if dialect == "postgres" else "mariadb_url")


def _write_configs(workdir: Path, emulator: RunningEmulator, url: str) -> None:
    (workdir / "tap.json").write_text(json.dumps({
        "base_url": emulator.base_url, "client_id": emulator.client_id,
        "client_secret": emulator.client_secret, "tables": TABLES, "poll_interval": 0.2}))
    (workdir / "target.json").write_text(json.dumps({"sqlalchemy_url": url}))


def _shell(script: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir,
                          env=base_env(workdir), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _mysql_rows(url: str, table: str) -> list[dict[str, Any]]:
    names = [r[0] for r in mysql_query(
        url, "SELECT column_name FROM information_schema.columns WHERE table_schema = "
             "DATABASE() AND table_name = %s ORDER BY ordinal_position", (f"canvas__{table}",))]
    rows = mysql_query(url, f'SELECT * FROM "canvas__{table}"')
    # binary(16) → the UUID text DAP sends
    return [{n: str(uuid.UUID(bytes=v)) if isinstance(v, bytes) and len(v) == 16 else v
             for n, v in zip(names, row, strict=True)} for row in rows]


def _whole_seconds(value: Any) -> Any:
    """MySQL `datetime` (the official layout) keeps no fraction: compare to the second."""
    if isinstance(value, str) and ISO_TIMESTAMP.match(value):
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(microsecond=0).isoformat()
    if isinstance(value, dict):
        return {k: _whole_seconds(v) for k, v in value.items()}
    return value


def assert_equals_truth(url: str, emulator: RunningEmulator) -> None:
    for table in TABLES:
        truth = emulator.truth("canvas", table)
        if url.startswith("mysql"):
            stored = [_whole_seconds(r) for r in _mysql_rows(url, table)]
            truth = [{"key": t["key"], "value": _whole_seconds(t["value"])} for t in truth]
        else:
            stored = Replica(url).rows("canvas", table)
        diff = diff_table("canvas", table, truth, stored)
        assert not diff, str(diff)
        assert len(stored) == len(truth) > 0


def column_definitions(url: str, table: str) -> list[tuple]:
    if url.startswith("mysql"):
        return mysql_query(url, "SELECT column_name, column_type, is_nullable, column_default, "
                                "column_comment, character_set_name FROM "
                                "information_schema.columns WHERE table_schema = DATABASE() AND "
                                "table_name = %s ORDER BY ordinal_position", (table,))
    schema, name = table.split(".")
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull, "
            "col_description(attrelid, attnum) FROM pg_attribute WHERE attrelid = "
            "to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (f'"{schema}"."{name}"',)).fetchall()


def _physical(url: str, table: str) -> str:
    return f"canvas__{table}" if url.startswith("mysql") else f"canvas.{table}"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_official_initdb_then_our_incremental(dialect: str, emulator_factory: Any,
                                              tmp_path: Path,
                                              request: pytest.FixtureRequest) -> None:
    url = _url(request, dialect)
    emulator = emulator_factory(tables=",".join(TABLES), rows=30, rows_per_object=10)
    ok(dap(emulator, "initdb", "--namespace", "canvas", "--table", ",".join(TABLES),
           "--connection-string", url))
    assert_equals_truth(url, emulator)
    _write_configs(tmp_path, emulator, url)
    _shell("target-dap-sql --config target.json export-state > state.json", tmp_path)
    exported = json.loads((tmp_path / "state.json").read_text())["bookmarks"]
    assert sorted(exported) == [f"canvas-{t}" for t in TABLES]

    for table in TABLES:
        emulator.advance("canvas", table, inserts=4, updates=5, deletes=3)
    run = _shell("tap-dap --config tap.json --state state.json "
                 "| target-dap-sql --config target.json > new_state.json", tmp_path)
    for table in TABLES:  # resumed from the exported bookmark: no snapshot
        assert f"canvas-{table}: incremental job" in run.stderr
        assert f"(since {exported[f'canvas-{table}']['timestamp']})" in run.stderr
    assert "snapshot job" not in run.stderr
    assert_equals_truth(url, emulator)
    final = json.loads((tmp_path / "new_state.json").read_text().splitlines()[-1])
    after = json.loads(_shell("target-dap-sql --config target.json export-state",
                              tmp_path).stdout)["bookmarks"]
    for stream, bookmark in final["bookmarks"].items():
        stored = dt.datetime.fromisoformat(after[stream]["timestamp"].replace("Z", "+00:00"))
        sent = dt.datetime.fromisoformat(bookmark["timestamp"].replace("Z", "+00:00"))
        # MySQL keeps whole seconds and we cut down: never a resume point after the data
        assert stored <= sent and sent - stored < dt.timedelta(seconds=1)
        assert stored > dt.datetime.fromisoformat(
            exported[stream]["timestamp"].replace("Z", "+00:00"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_our_snapshot_then_official_syncdb_and_listdb(dialect: str, emulator_factory: Any,
                                                      tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    url = _url(request, dialect)
    emulator = emulator_factory(tables=",".join(TABLES), rows=30, rows_per_object=10)
    _write_configs(tmp_path, emulator, url)
    _shell("tap-dap --config tap.json | target-dap-sql --config target.json > state.json",
           tmp_path)
    assert_equals_truth(url, emulator)

    # The official client creates exactly our columns (types, nullability, comments, enums).
    official_url = _second_database(url)
    ok(dap(emulator, "initdb", "--namespace", "canvas", "--table", ",".join(TABLES),
           "--connection-string", official_url))
    for table in TABLES:
        ours = column_definitions(url, _physical(url, table))
        assert len(ours) > 5
        assert ours == column_definitions(official_url, _physical(url, table))

    for table in TABLES:
        emulator.advance("canvas", table, inserts=3, updates=4, deletes=2)
    ok(dap(emulator, "syncdb", "--namespace", "canvas", "--table", ",".join(TABLES),
           "--connection-string", url))
    assert_equals_truth(url, emulator)

    listing = json.loads(ok(dap(emulator, "listdb", "--namespace", "canvas",
                                 "--omit-not-replicated", "--connection-string", url)).stdout)
    assert sorted((r["name"], r["schema"], r["records"]) for r in listing) == [
        (t, 1, len(emulator.truth("canvas", t))) for t in TABLES]


def _second_database(url: str) -> str:
    """A fresh empty database next to `url` (the server fixtures hand out one per test)."""
    name = "official_" + uuid.uuid4().hex[:10]
    if url.startswith("mysql"):
        mysql_query(url, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return url.rsplit("/", 1)[0] + "/" + name
