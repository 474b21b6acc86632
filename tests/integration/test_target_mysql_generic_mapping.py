"""Streams of other taps on every dialect: `_sdc_*` data columns survive, integer|number is numeric.

Shaped like tap-jsonl's output (`_sdc_filename`, `_sdc_last_modified`, `_sdc_stream` are data it
declares) plus a mapper-added SDK metadata column (`_sdc_extracted_at`), which stays out.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.integration.test_target_mysql import mysql_query
from tests.unit.target.dap_messages import run_in_process

SCHEMA = {"type": "SCHEMA", "stream": "orders", "key_properties": ["id"], "schema": {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "amount": {"type": ["integer", "null", "number"]},
        "code": {"type": "string"},
        "_sdc_filename": {"type": ["string", "null"]},
        "_sdc_last_modified": {"type": ["string", "null"], "format": "date-time"},
        "_sdc_stream": {"type": ["string", "null"]},
        "_sdc_extracted_at": {"type": ["string", "null"], "format": "date-time"},
    }}}


def _record(i: int, amount: float | int) -> dict:
    return {"type": "RECORD", "stream": "orders", "record": {
        "id": i, "amount": amount, "code": f"c{i}", "_sdc_filename": f"/data/orders-{i}.jsonl",
        "_sdc_last_modified": "2024-05-01T12:00:00+00:00", "_sdc_stream": "orders",
        "_sdc_extracted_at": "2024-05-02T00:00:00+00:00"}}


MESSAGES = [SCHEMA, _record(1, 9.5), _record(2, 3)]
COLUMNS = ["id", "amount", "code", "_sdc_filename", "_sdc_last_modified", "_sdc_stream"]


def test_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "dap.db"
    run_in_process({"sqlalchemy_url": f"sqlite:///{path}"}, MESSAGES)
    with sqlite3.connect(path) as conn:
        names = [r[1] for r in conn.execute('PRAGMA table_info("orders")')]
        rows = conn.execute('SELECT "id", "amount", typeof("amount"), "_sdc_filename", '
                            '"_sdc_stream" FROM "orders" ORDER BY 1').fetchall()
    assert names == COLUMNS
    assert rows == [(1, 9.5, "real", "/data/orders-1.jsonl", "orders"),
                    (2, 3.0, "real", "/data/orders-2.jsonl", "orders")]


@pytest.mark.postgres
def test_postgres(pg_url: str) -> None:
    run_in_process({"sqlalchemy_url": pg_url}, MESSAGES)
    with psycopg.connect(pg_url) as conn:
        cols = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_name = 'orders' ORDER BY ordinal_position").fetchall()
        rows = conn.execute('SELECT "id", "amount", "_sdc_filename", "_sdc_stream" '
                            'FROM public.orders ORDER BY 1').fetchall()
    assert [c[0] for c in cols] == COLUMNS
    assert dict(cols)["amount"] == "numeric"
    assert rows == [(1, Decimal("9.5"), "/data/orders-1.jsonl", "orders"),
                    (2, Decimal("3"), "/data/orders-2.jsonl", "orders")]


@pytest.mark.mariadb
def test_mariadb(mariadb_url: str) -> None:
    run_in_process({"sqlalchemy_url": mariadb_url}, MESSAGES)
    cols = mysql_query(mariadb_url, "SELECT column_name, column_type FROM "
                       "information_schema.columns WHERE table_schema = DATABASE() AND "
                       "table_name = 'orders' ORDER BY ordinal_position")
    rows = mysql_query(mariadb_url, 'SELECT "id", "amount", "_sdc_filename", '
                                    'CAST("_sdc_last_modified" AS CHAR) FROM "orders" ORDER BY 1')
    assert [c[0] for c in cols] == COLUMNS
    assert dict(cols)["amount"] == "double"
    assert rows == [(1, 9.5, "/data/orders-1.jsonl", "2024-05-01 12:00:00.000000"),
                    (2, 3.0, "/data/orders-2.jsonl", "2024-05-01 12:00:00.000000")]
