"""A small database handle for the target's integration tests (SQLite file or PostgreSQL)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.unit.target.dap_messages import dump_pg, dump_sqlite


@dataclass
class TargetDb:
    kind: str  # "sqlite" | "postgres"
    url: str
    path: Path | None = None

    def table(self, namespace: str, table: str) -> str:
        if self.kind == "sqlite":
            return f'"{namespace}__{table}"'
        return f'"{namespace}"."{table}"'

    def meta_table(self) -> str:
        return self.table("instructure_dap", "table_sync")

    def query(self, sql: str) -> list[tuple]:
        if self.kind == "sqlite":
            assert self.path is not None
            with sqlite3.connect(self.path) as conn:
                return conn.execute(sql).fetchall()
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    def rows(self, namespace: str, table: str, columns: str = "*") -> list[tuple]:
        return self.query(f"SELECT {columns} FROM {self.table(namespace, table)} ORDER BY 1")

    def meta_rows(self) -> list[tuple]:
        return self.query(
            'SELECT "source_namespace", "source_table", "timestamp", "schema_version", '
            '"target_schema", "target_table", "schema_description_format" '
            f"FROM {self.meta_table()} ORDER BY 1, 2")

    def dump(self) -> dict[str, list[Any]]:
        if self.kind == "sqlite":
            assert self.path is not None
            return dump_sqlite(self.path)
        return dump_pg(self.url)

    def timestamp(self, text: str) -> Any:
        """How a naive-UTC timestamp reads back from this database."""
        from datetime import datetime

        value = datetime.fromisoformat(text)
        return value.isoformat(" ", "microseconds") if self.kind == "sqlite" else value


@pytest.fixture(name="db",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> TargetDb:
    if request.param == "sqlite":
        path = tmp_path / "dap.db"
        return TargetDb("sqlite", f"sqlite:///{path}", path)
    return TargetDb("postgres", request.getfixturevalue("pg_url"))
