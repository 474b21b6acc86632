"""Column names msgspec cannot rename a field to (`"` and `\\`) load, quoted, on every dialect;
and a key change between runs is refused on MySQL/MariaDB as on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from target_dap_sql.errors import SchemaError
from tests.integration.test_target_mysql import mysql_query
from tests.unit.target.dap_messages import run_in_process

QUOTE, BACKSLASH = 'dq"uote', "back\\slash"
SCHEMA = {"type": "SCHEMA", "stream": "things", "key_properties": ["id"], "schema": {
    "properties": {"id": {"type": "integer"}, QUOTE: {"type": ["string", "null"]},
                   BACKSLASH: {"type": ["integer", "null"]}, "plain": {"type": "string"},
                   "_sdc_deleted_at": {"type": ["string", "null"]}}}}


def _record(record: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RECORD", "stream": "things", "record": record}


MESSAGES = [SCHEMA,
            _record({"id": 1, QUOTE: "a", BACKSLASH: 10, "plain": "p1"}),
            _record({"id": 2, QUOTE: 'say "hi"', BACKSLASH: 20, "plain": "p2"}),
            _record({"id": 3, QUOTE: "gone", BACKSLASH: 30, "plain": "p3"}),
            _record({"id": 1, QUOTE: "a2", "plain": "p1b"}),
            _record({"id": 3, "_sdc_deleted_at": "2024-01-01T00:00:00Z"})]
EXPECTED = [(1, "a2", None, "p1b"), (2, 'say "hi"', 20, "p2")]
SELECT = 'SELECT "id", "dq""uote", "back\\slash", "plain" FROM {} ORDER BY 1'


def test_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "dap.db"
    run_in_process({"sqlalchemy_url": f"sqlite:///{path}"}, MESSAGES)
    with sqlite3.connect(path) as conn:
        assert conn.execute(SELECT.format('"things"')).fetchall() == EXPECTED


@pytest.mark.postgres
def test_postgres(pg_url: str) -> None:
    run_in_process({"sqlalchemy_url": pg_url}, MESSAGES)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(SELECT.format('"public"."things"')).fetchall() == EXPECTED  # type: ignore[arg-type]


@pytest.mark.mariadb
def test_mariadb(mariadb_url: str) -> None:
    run_in_process({"sqlalchemy_url": mariadb_url}, MESSAGES)
    # MySQL reads a backslash in a quoted identifier as itself (no escapes in identifiers).
    assert [tuple(r) for r in mysql_query(mariadb_url, SELECT.format('"things"'))] == EXPECTED


@pytest.mark.mariadb
def test_mariadb_key_change_across_runs_is_one_clear_error(mariadb_url: str) -> None:
    users = {"properties": {"id": {"type": "integer"}, "email": {"type": "string"}}}
    run_in_process({"sqlalchemy_url": mariadb_url}, [
        {"type": "SCHEMA", "stream": "users", "key_properties": ["id"], "schema": users},
        {"type": "RECORD", "stream": "users", "record": {"id": 1, "email": "a@x"}}])
    with pytest.raises(SchemaError) as raised:
        run_in_process({"sqlalchemy_url": mariadb_url}, [
            {"type": "SCHEMA", "stream": "users", "key_properties": ["email"], "schema": users},
            {"type": "RECORD", "stream": "users", "record": {"id": 2, "email": "b@x"}}])
    assert str(raised.value) == (
        "line 1, stream 'users': key_properties changed from ['id'] to ['email']: the table's "
        "primary key cannot change; drop the table to reload it with the new key")
    assert [tuple(r) for r in mysql_query(mariadb_url, 'SELECT * FROM "users"')] == [(1, "a@x")]
