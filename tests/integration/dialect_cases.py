"""What each database of the Dialect contract (test_dialect_contract.py) is expected to
create and name: one `DialectCase` per dialect in `CASES`. Adding a dialect adds an entry here."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.integration.test_target_mysql import mysql_query

SUBMISSIONS_V1 = ["id", "assignment_id", "attempt", "workflow_state", "grade", "score", "excused",
                  "submitted_at", "lti_id", "body", "media", "tags"]
#: One DAP property of every kind docs/database-layout.md maps ("Column types"), in its order.
EVERY_KIND: dict[str, dict[str, Any]] = {
    "int64": {"type": "integer", "format": "int64"},
    "int_plain": {"type": "integer"},
    "int32": {"type": "integer", "format": "int32"},
    "int16": {"type": "integer", "format": "int16"},
    "int_enum": {"type": "integer", "enum": [1, 2, 3]},
    "int_range": {"type": "integer", "minimum": 0, "maximum": 40000},
    "float64": {"type": "number", "format": "float64"},
    "number_plain": {"type": "number"},
    "float32": {"type": "number", "format": "float32"},
    "decimal": {"type": "number", "exclusiveMinimum": -1000000, "exclusiveMaximum": 1000000,
                "multipleOf": 0.01},
    "flag": {"type": "boolean"},
    "text": {"type": "string"},
    "short": {"type": "string", "maxLength": 20},
    # one over the longest varchar MySQL creates in utf8mb4, PostgreSQL's longest, one more
    "long_16384": {"type": "string", "maxLength": 16384},
    "long_10485760": {"type": "string", "maxLength": 10485760},
    "long_2e24": {"type": "string", "maxLength": 2**24},
    "fixed": {"type": "string", "const": "abc"},
    "at": {"type": "string", "format": "date-time"},
    "day": {"type": "string", "format": "date"},
    "clock": {"type": "string", "format": "time"},
    "uid": {"type": "string", "format": "uuid"},
    "ip4": {"type": "string", "format": "ipv4"},
    "ip6": {"type": "string", "format": "ipv6"},
    "span": {"type": "string", "format": "duration"},
    "state": {"type": "string", "enum": ["a", "b", "__dap_unspecified__"]},
    "state_utf8": {"type": "string", "enum": ["ä", "b"]},
    "nested": {"type": "object", "properties": {"k": {"type": "string"}}},
    "strings": {"type": "array", "items": {"type": "string"}},
    "numbers": {"type": "array", "items": {"type": "integer", "format": "int64"}},
    "states": {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}},
    "defaulted": {"type": "integer", "format": "int32", "default": 5},  # moves to the end
}
EVERY_KIND_COLUMNS = ["id", *(k for k in EVERY_KIND if k != "defaulted"), "defaulted"]


def _sqlite_query(url: str, sql: str) -> list[tuple]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


def _pg_query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description is not None else []


@dataclass(frozen=True)
class DialectCase:
    """One database in the contract: how to reach it and what it names and types things."""

    name: str  # Dialect.name
    query: Callable[[str, str], list[tuple]]  # (url, sql) → rows, on a connection of its own
    column_types_sql: str  # {schema} {table}: (column, type) rows in column order
    tables_sql: str  # {schema}: the names of the tables holding the stream `canvas-…`
    types_v1: dict[str, str]  # the submissions table's column types, as the catalog shows them
    types_v2: dict[str, str]  # what evolution to schema version 2 changes or adds
    submissions: tuple[str, str]  # (table_name, qualified_name) of canvas.submissions
    container: str | None  # container_name("canvas"); None: the database's own name
    types_every_kind: list[str]  # the column types of EVERY_KIND_COLUMNS, as the catalog shows
    meta_table_label: str
    object_names: set[str]  # Dialect.object_names of canvas-submissions
    staging_table: str  # Dialect.staging_table of canvas-submissions (unprefixed)
    stores_nul_characters: bool
    refused_connection: tuple[str, str]  # (URL nothing answers at, the exact error text)
    server: str | None = None  # the fixture giving a fresh database's URL; None: a file
    marks: tuple[pytest.MarkDecorator, ...] = ()
    enum_types_sql: str | None = None  # the enum types named after canvas.submissions


CASES = {
    "sqlite": DialectCase(
        name="sqlite", query=_sqlite_query,
        column_types_sql='SELECT name, type FROM pragma_table_info(\'{schema}__{table}\')',
        tables_sql="SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE "
                   "'{schema}\\_\\_%' ESCAPE '\\' ORDER BY 1",
        types_v1=dict(zip(SUBMISSIONS_V1, ["INTEGER", "INTEGER", "INTEGER", "TEXT", "TEXT", "REAL",
                                           "INTEGER", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT"],
                          strict=True)),
        types_v2={"late_days": "INTEGER"},
        submissions=("canvas__submissions", '"canvas__submissions"'), container="main",
        types_every_kind=[
            *["INTEGER"] * 7, *["REAL"] * 4, "INTEGER", *["TEXT"] * 19, "INTEGER"],
        meta_table_label="instructure_dap__table_sync", object_names={"canvas__submissions"},
        staging_table="canvas__submissions__dap_staging", stores_nul_characters=True,
        refused_connection=("sqlite:////no-such-dir-dap/dap.db", "cannot open SQLite database "
                            "/no-such-dir-dap/dap.db: its directory does not exist")),
    "postgres": DialectCase(
        name="postgresql", query=_pg_query,
        column_types_sql="SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = '\"{schema}\".\"{table}\"'::regclass AND attnum > 0 "
                         "AND NOT attisdropped ORDER BY attnum",
        tables_sql="SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' ORDER BY 1",
        types_v1=dict(zip(SUBMISSIONS_V1, [
            "bigint", "bigint", "integer", "canvas.submissions__workflow_state",
            "character varying(255)", "double precision", "boolean",
            "timestamp without time zone", "uuid", "text", "jsonb", "text[]"], strict=True)),
        types_v2={"grade": "character varying(1024)", "late_days": "integer"},
        submissions=("submissions", '"canvas"."submissions"'), container="canvas",
        types_every_kind=[
            "bigint", "bigint", "bigint", "integer", "smallint", "smallint", "integer",
            "double precision", "double precision", "real", "numeric(8,2)", "boolean", "text",
            "character varying(20)", "character varying(16384)",
            "character varying(10485760)", "text", "character(3)",
            "timestamp without time zone", "date", "time without time zone", "uuid", "inet",
            "inet", "interval", "canvas.everything__state", "canvas.everything__state_utf8",
            "jsonb", "text[]", "bigint[]", "canvas.everything__states[]", "integer"],
        meta_table_label="instructure_dap.table_sync",
        object_names={"canvas.submissions", "canvas.submissions__workflow_state"},
        staging_table="submissions__dap_staging", stores_nul_characters=False,
        refused_connection=(
            "postgresql://u:pw-s3cret@127.0.0.1:1/db",
            "cannot connect to PostgreSQL at 127.0.0.1:1/db: connection failed: connection to "
            'server at "127.0.0.1", port 1 failed: Connection refused'),
        server="pg_url", marks=(pytest.mark.postgres,),
        enum_types_sql="SELECT typname FROM pg_type WHERE typtype = 'e' AND typname LIKE "
                       "'submissions\\_\\_%' ORDER BY 1"),
    "mariadb": DialectCase(
        name="mysql", query=mysql_query,
        column_types_sql="SELECT column_name, column_type FROM information_schema.columns WHERE "
                         "table_schema = DATABASE() AND table_name = '{schema}__{table}' "
                         "ORDER BY ordinal_position",
        tables_sql="SELECT table_name FROM information_schema.tables WHERE table_schema = "
                   "DATABASE() AND table_name LIKE '{schema}\\_\\_%' ORDER BY 1",
        types_v1=dict(zip(SUBMISSIONS_V1, [
            "bigint(20)", "bigint(20)", "int(11)",
            "enum('submitted','graded','__dap_unspecified__')", "varchar(255)", "double",
            "tinyint(4)", "datetime", "binary(16)", "mediumtext", "longtext", "longtext"],
            strict=True)),
        # New ENUM labels are appended: the stored order (and sorting) of old ones is kept.
        types_v2={"workflow_state": "enum('submitted','graded','__dap_unspecified__',"
                                    "'pending_review')",
                  "grade": "varchar(1024)", "late_days": "int(11)"},
        submissions=("canvas__submissions", '"canvas__submissions"'), container=None,
        types_every_kind=[
            "bigint(20)", "bigint(20)", "bigint(20)", "int(11)", "smallint(6)", "smallint(6)",
            "int(11)", "double", "double", "double", "decimal(8,2)", "tinyint(4)", "mediumtext",
            "varchar(20)", "mediumtext", "mediumtext", "longtext", "char(3)",
            "datetime", "date", "time", "binary(16)", "varchar(45)", "varchar(45)",
            "varchar(64)", "enum('a','b','__dap_unspecified__')", "enum('ä','b')", "longtext",
            "longtext", "longtext", "longtext", "int(11)"],
        meta_table_label="instructure_dap__table_sync", object_names={"canvas__submissions"},
        staging_table="canvas__submissions__dap_staging", stores_nul_characters=True,
        refused_connection=(
            "mysql://u:pw-s3cret@127.0.0.1:1/db",
            "cannot connect to MySQL at 127.0.0.1:1/db: Can't connect to MySQL server on "
            "'127.0.0.1' ([Errno 111] Connection refused)"),
        server="mariadb_url", marks=(pytest.mark.mariadb,)),
}
