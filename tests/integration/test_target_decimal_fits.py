"""A DAP `decimal(p, s)` value its column cannot hold is refused naming its line.

PostgreSQL and MySQL round a value to the column's scale and then refuse one whose integer
part is too long, in an error that named no line (the whole batch failed at its commit). The
bound the target checks must be the server's own: what the server takes loads, what it
refuses is refused first, with the line.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.helpers import logged_errors
from tests.integration.replica_dbs import ReplicaDb
from tests.integration.test_target_mysql import mysql_connect
from tests.unit.target.dap_messages import META, jsonl, record, run_cli, singer_schema

# decimal(5, 2): exclusive bounds ±1000 and steps of 0.01 (the official generator's rule)
DAP = {"type": "object", "properties": {
    "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
            "required": ["id"]},
    "value": {"type": "object", "properties": {
        "amount": {"type": "number", "exclusiveMinimum": -1000, "exclusiveMaximum": 1000,
                   "multipleOf": 0.01}}},
    "meta": META}}
SCHEMA = singer_schema("canvas", "amounts", 1, DAP)


def _schema(bound: float, step: float) -> dict[str, Any]:
    """The stream with `amount` a decimal of exclusive bounds ±bound in steps of `step`."""
    dap = copy.deepcopy(DAP)
    dap["properties"]["value"]["properties"]["amount"].update(
        exclusiveMinimum=-bound, exclusiveMaximum=bound, multipleOf=step)
    return singer_schema("canvas", "amounts", 1, dap)


def _lines(amounts: list[str], schema: dict[str, Any] = SCHEMA) -> bytes:
    """RECORD lines with the amounts as JSON numbers, spelled exactly as given."""
    return re.sub(rb'"#([^#]*)#"', rb"\1", jsonl([schema, *[
        record(schema["stream"], {"id": i}, {"amount": f"#{text}#"})
        for i, text in enumerate(amounts)]]))


@pytest.fixture(name="db", params=[pytest.param("postgres", marks=pytest.mark.postgres),
                                   pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_fixture(request: pytest.FixtureRequest) -> ReplicaDb:
    fixture = "pg_url" if request.param == "postgres" else "mariadb_url"
    return ReplicaDb(request.param, request.getfixturevalue(fixture))


@pytest.mark.parametrize("too_large", ["999.995", "-999.995", "1000", "1E+3", "-12345.6",
                                       "9" * 50 + ".5"])
def test_a_decimal_beyond_its_column_is_refused_naming_its_line(
        db: ReplicaDb, tmp_path: Path, too_large: str) -> None:
    fits = ["999.994", "-999.994", "0.005", "1E-999"]
    run = run_cli({"sqlalchemy_url": db.url}, _lines([*fits, too_large]), tmp_path)
    assert run.returncode == 1
    shown = str(Decimal(too_large)) if len(too_large) < 40 else "1.000000E+50"
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: line 6, stream 'canvas-amounts': invalid value for 'amount': "
        f"{shown} does not fit: decimal(5, 2) holds less than 10^3"]
    # The bound is the server's: the values that passed load (rounded as the server rounds),
    # and the refused one is refused by the server too.
    run = run_cli({"sqlalchemy_url": db.url}, _lines(fits), tmp_path)
    assert run.returncode == 0, run.stderr
    stored = db.query(f'SELECT "amount" FROM {db.table("canvas", "amounts")} ORDER BY "id"')
    assert stored == [(Decimal("999.99"),), (Decimal("-999.99"),), (Decimal("0.01"),),
                      (Decimal("0.00"),)]
    with pytest.raises(Exception, match="(?i)overflow|out of range"):
        _strict_update(db, f'UPDATE {db.table("canvas", "amounts")} SET "amount" = {too_large}')


def _strict_update(db: ReplicaDb, sql: str) -> None:
    """Run an UPDATE as the target's session would: MySQL in strict mode (the server refuses
    an out-of-range value instead of clipping it with a warning)."""
    if db.kind == "postgres":
        with psycopg.connect(db.url) as conn:
            conn.execute(sql)  # type: ignore[arg-type]
        return
    conn = mysql_connect(db.url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES,STRICT_ALL_TABLES'")
            cur.execute(sql)
    finally:
        conn.close()


# (bound, step, values the server keeps, as it stores them, the smallest value it refuses):
# more digits than Python's default 28 (its rounding made a value below the bound compare as
# at it), a precision above 28, a negative scale (PostgreSQL 15; MySQL has none) and a scale
# above the precision (MySQL has none).
EDGES = [
    (1000, 0.01, ["999.99499999999999999999999999999", "-999.994999999999999999999999999999"],
     ["999.99", "-999.99"], "999.995"),
    (1e36, 0.01, ["9" * 36 + ".994", "-" + "9" * 36 + ".99499999999999999999"],
     ["9" * 36 + ".99", "-" + "9" * 36 + ".99"], "9" * 36 + ".995"),
    (1000, 10, ["994", "-985", "4.9", "-0.5"], ["990", "-990", "0", "0"], "995"),
    (0.01, 0.0001, ["0.00994", "-0.00005"], ["0.0099", "-0.0001"], "-0.00995"),
]


@pytest.mark.parametrize(("bound", "step", "fits", "stored", "too_large"), EDGES)
def test_the_bound_is_the_servers_at_any_precision_and_scale(
        db: ReplicaDb, tmp_path: Path, bound: float, step: float, fits: list[str],
        stored: list[str], too_large: str) -> None:
    schema = _schema(bound, step)
    for _ in range(2):  # the second run finds the table as the first made it: no change
        run = run_cli({"sqlalchemy_url": db.url}, _lines(fits, schema), tmp_path)
        assert run.returncode == 0, run.stderr
        assert "WARNING" not in run.stderr
    rows = db.query(f'SELECT "amount" FROM {db.table("canvas", "amounts")} ORDER BY "id"')
    assert [row[0] for row in rows] == [Decimal(v) for v in stored]
    run = run_cli({"sqlalchemy_url": db.url}, _lines([*fits, too_large], schema), tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr)[0].startswith(
        f"target-dap-sql: line {len(fits) + 2}, stream 'canvas-amounts': invalid value for "
        f"'amount': {Decimal(too_large)} does not fit: decimal(")


def test_a_bad_value_after_committed_batches_in_workers_names_its_line(
        db: ReplicaDb, tmp_path: Path) -> None:
    """Workers decode with the same bound (their own decimal context); the batches committed
    before the bad line stay."""
    fits = ["999.99499999999999999999999999999", "1E-999", "-0", "999.994"] * 5
    run = run_cli({"sqlalchemy_url": db.url, "workers": 2, "batch_size_rows": 4},
                  _lines([*fits, "-999.995"]), tmp_path,
                  env={"DAP_TARGET_WORKERS_MIN_ROWS": "1"})
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        "target-dap-sql: line 22, stream 'canvas-amounts': invalid value for 'amount': "
        "-999.995 does not fit: decimal(5, 2) holds less than 10^3"]
    rows = db.query(f'SELECT "amount" FROM {db.table("canvas", "amounts")} ORDER BY "id"')
    assert len(rows) == 20
    assert {row[0] for row in rows} == {Decimal("999.99"), Decimal("0.00"), Decimal("999.99")}
