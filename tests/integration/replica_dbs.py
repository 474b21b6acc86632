"""One handle on a fresh replica database of each kind (SQLite, PostgreSQL, MariaDB), for tests
that assert the same rows on all three: `rdb` fixture."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest


@dataclass
class ReplicaDb:
    kind: str  # "sqlite" | "postgres" | "mariadb"
    url: str
    path: Path | None = None

    def table(self, schema: str, table: str) -> str:
        return f'"{schema}"."{table}"' if self.kind == "postgres" else f'"{schema}__{table}"'

    def query(self, sql: str) -> list[tuple]:
        if self.kind == "sqlite":
            assert self.path is not None
            with sqlite3.connect(self.path) as conn:
                return conn.execute(sql).fetchall()
        if self.kind == "postgres":
            with psycopg.connect(self.url) as conn:
                return conn.execute(sql).fetchall()  # type: ignore[arg-type]
        from tests.integration.test_target_mysql import mysql_query

        return mysql_query(self.url, sql)

    def rows(self, schema: str, table: str, columns: str) -> list[tuple]:
        return self.query(f"SELECT {columns} FROM {self.table(schema, table)} ORDER BY 1")

    def columns(self, schema: str, table: str) -> list[str]:
        if self.kind == "sqlite":
            return [r[1] for r in self.query(f"PRAGMA table_info('{schema}__{table}')")]
        if self.kind == "postgres":
            where = f"table_schema = '{schema}' AND table_name = '{table}'"
        else:
            where = f"table_schema = DATABASE() AND table_name = '{schema}__{table}'"
        return [str(r[0]) for r in self.query(
            f"SELECT column_name FROM information_schema.columns WHERE {where} "
            "ORDER BY ordinal_position")]

    def tables(self) -> list[str]:
        if self.kind == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        elif self.kind == "postgres":
            sql = ("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                   "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
        else:
            sql = ("SELECT table_name FROM information_schema.tables "
                   "WHERE table_schema = DATABASE()")
        return sorted(str(r[0]) for r in self.query(sql))


def stamp(value: Any) -> str | None:
    """A timestamp read back from any of the databases, to the second: `YYYY-MM-DD HH:MM:SS`."""
    return None if value is None else str(value)[:19].replace("T", " ")


@pytest.fixture(name="rdb", params=[
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
])
def rdb_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> ReplicaDb:
    if request.param == "sqlite":
        path = tmp_path / "dap.db"
        return ReplicaDb("sqlite", f"sqlite:///{path}", path)
    if request.param == "postgres":
        return ReplicaDb("postgres", request.getfixturevalue("pg_url"))
    return ReplicaDb("mariadb", request.getfixturevalue("mariadb_url"))
