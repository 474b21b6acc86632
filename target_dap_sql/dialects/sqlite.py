"""SQLite (the embedded default): `<ns>__<table>` tables, WAL, executemany upserts per transaction.

Types are SQLite's storage classes: INTEGER (integers, booleans), REAL (floats, decimals) and
TEXT (strings, enums, UUIDs, JSON, arrays as JSON, timestamps as naive UTC
`YYYY-MM-DD HH:MM:SS.ffffff`, which sorts correctly and SQLite's date functions understand).
"""

from __future__ import annotations

import datetime as dt
import operator
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import msgspec

from target_dap_sql.decoding import Converters, constrained
from target_dap_sql.dialects.background import BackgroundJob
from target_dap_sql.dialects.base import (
    META_COLUMNS,
    Batch,
    check_primary_key,
    compact_json_text,
    logger,
    meta_row_sql,
    nested_object_text,
    prefixed_table_name,
    primary_key_clause,
    quote,
)
from target_dap_sql.dialects.connection import ConnectionDialect
from target_dap_sql.errors import ConfigError, DatabaseError
from target_dap_sql.layout import DELETED_AT, Column, TableLayout
from target_dap_sql.meta import DATABASE_VERSION, META_NAMESPACE, MetaRow

_STORAGE = {
    "smallint": "INTEGER", "integer": "INTEGER", "bigint": "INTEGER", "boolean": "INTEGER",
    "real": "REAL", "double": "REAL", "decimal": "REAL", "numeric": "REAL",
}
_DECODE = {
    "smallint": int, "integer": int, "bigint": int, "boolean": bool,
    "real": float, "double": float, "decimal": float, "numeric": float,
    "timestamp": dt.datetime, "date": dt.date, "uuid": uuid.UUID,
    "json": msgspec.Raw, "array": msgspec.Raw,
}
_ZERO = dt.timedelta(0)
_META_TABLE = f"{META_NAMESPACE}__table_sync"
_VERSION_TABLE = f"{META_NAMESPACE}__database_version"
_META_UPDATE, _META_INSERT = meta_row_sql(quote(_META_TABLE), "?",
                                          '"source_namespace" = ? AND "source_table" = ?')


def sqlite_path(url: str) -> str:
    """`sqlite:///rel.db` → `rel.db`, `sqlite:////abs.db` → `/abs.db`, `sqlite://` → memory."""
    if not url.startswith("sqlite:"):
        raise ConfigError("not a SQLite URL")
    rest = url[len("sqlite:"):]
    if rest in ("", "//", "///:memory:"):
        return ":memory:"
    if not rest.startswith("///"):
        raise ConfigError("a SQLite URL looks like sqlite:///relative.db or sqlite:////abs.db")
    return rest[3:].split("?", 1)[0]


def _timestamp_text(value: dt.datetime) -> str:
    if value.tzinfo is dt.UTC:
        # DAP's `Z` timestamps: drop the "+00:00" instead of building a naive copy first.
        return value.isoformat(" ", "microseconds")[:26]
    if value.tzinfo is not None and value.utcoffset() != _ZERO:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


class SqliteDialect(ConnectionDialect[sqlite3.Connection]):
    name = "sqlite"
    driver_error = sqlite3.Error
    meta_table_label = _META_TABLE

    def __init__(self, url: str):
        # Snapshot batches load in the background: sqlite3 releases the GIL while SQLite works.
        super().__init__(loads=BackgroundJob("dap-sqlite-load"))
        self._path = sqlite_path(url)
        self._statements: dict[tuple[int, bool], tuple[str, str, Any]] = {}

    # --- decoding ---------------------------------------------------------------------------

    def field_type(self, column: Column, layout: TableLayout) -> Any:
        base = _DECODE.get(column.type.kind, str)
        return constrained(base, column.type, layout)

    def converters(self, layout: TableLayout) -> Converters:
        out: Converters = []
        for i, c in enumerate(layout.record_columns):
            kind = c.type.kind
            if kind == "timestamp":
                out.append((i, _timestamp_text))
            elif kind == "json" and c.type.nested:
                out.append((i, nested_object_text(c.nullable)))
            elif kind in ("json", "array"):
                out.append((i, compact_json_text))
            elif kind in ("uuid", "date"):
                out.append((i, str))
        return out

    # --- connection -------------------------------------------------------------------------

    def connect(self) -> None:
        self._settle_loads()
        if self._path != ":memory:" and not Path(self._path).parent.exists():
            raise DatabaseError(f"cannot open SQLite database {self._path}: "
                                "its directory does not exist")
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open SQLite database {self._path}: {exc}") from None
        self._conn = conn

    def _close_connection(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.rollback()
        conn.close()

    def _roll_back(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            self._conn.rollback()

    def _failure_text(self, exc: Exception) -> str:
        return str(exc)

    def _begin(self) -> None:
        # IMMEDIATE takes the write lock now, so a concurrent writer makes us wait (busy_timeout)
        # here rather than fail halfway through the batch.
        self.conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self.conn.execute("COMMIT")

    # --- DDL --------------------------------------------------------------------------------

    def ensure_meta_tables(self) -> None:
        def create() -> None:
            # Checked first, not `CREATE TABLE IF NOT EXISTS`: a run whose schema did not
            # change issues no DDL at all (BEGIN IMMEDIATE keeps the check and the create one).
            execute = self.conn.execute
            existing = {r[0] for r in execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
                (_VERSION_TABLE, _META_TABLE))}
            if _VERSION_TABLE not in existing:
                execute(f'CREATE TABLE {quote(_VERSION_TABLE)} ('
                        '"version" INTEGER NOT NULL, '
                        'CONSTRAINT "pk_database_version" PRIMARY KEY ("version"))')
            if _META_TABLE not in existing:
                execute(
                    f"CREATE TABLE {quote(_META_TABLE)} ("
                    '"id" INTEGER PRIMARY KEY AUTOINCREMENT, '
                    '"source_namespace" TEXT NOT NULL, "source_table" TEXT NOT NULL, '
                    '"timestamp" TEXT NOT NULL, "schema_version" INTEGER NOT NULL, '
                    '"target_schema" TEXT, "target_table" TEXT NOT NULL, '
                    '"schema_description_format" TEXT NOT NULL, '
                    '"schema_description" TEXT NOT NULL)')
            execute(f'INSERT OR IGNORE INTO {quote(_VERSION_TABLE)} ("version") VALUES (?)',
                    (DATABASE_VERSION,))

        self._transaction("creating the instructure_dap meta tables", create)

    def _table_info(self, table: str) -> list[tuple]:
        return self.conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()

    def _existing(self, table: str) -> dict[str, tuple[str, bool]]:
        return {r[1]: (r[2], bool(r[3])) for r in self._table_info(table)}

    def _primary_key(self, table: str) -> list[str]:
        return [r[1] for r in sorted(self._table_info(table), key=lambda r: r[5]) if r[5]]

    def _column_ddl(self, c: Column, layout: TableLayout) -> str:
        ddl = f"{quote(c.name)} {_STORAGE.get(c.type.kind, 'TEXT')}"
        # Only keys are NOT NULL: SQLite cannot relax a constraint later without a table rebuild,
        # and a required column that disappears from the DAP schema must not block loading.
        return ddl + " NOT NULL" if c.name in layout.key_columns else ddl

    def _create_table(self, table: str, columns: list[str], layout: TableLayout) -> None:
        if pk := primary_key_clause(layout, layout.table):
            columns = [*columns, pk]
        self.conn.execute(f"CREATE TABLE {quote(table)} ({', '.join(columns)})")

    def prepare_table(self, layout: TableLayout, *, drop_removed_columns: bool) -> None:
        table = prefixed_table_name(layout)

        def prepare() -> None:
            existing = self._existing(table)
            if not existing:
                self._create_table(table, [self._column_ddl(c, layout) for c in layout.columns],
                                   layout)
                logger.info("Created table %s", table)
                return
            check_primary_key(layout, self._primary_key(table))
            # One statement per column: SQLite's ALTER TABLE takes one change at a time.
            for c in layout.columns:
                if c.name not in existing:
                    logger.info("Adding column %s.%s", table, c.name)
                    self.conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN "
                                      f"{self._column_ddl(c, layout)}")
            if drop_removed_columns:
                for name in existing:
                    if name not in layout._by_name:
                        logger.info("Dropping column %s.%s", table, name)
                        self.conn.execute(f"ALTER TABLE {quote(table)} DROP COLUMN {quote(name)}")

        self._transaction(f"preparing table for stream '{layout.stream}'", prepare)
        self._statements = {k: v for k, v in self._statements.items() if k[0] != layout.uid}

    def create_staging(self, layout: TableLayout) -> None:
        live = prefixed_table_name(layout)
        staging = prefixed_table_name(layout, self.staging_table(layout))

        def create() -> None:
            self.conn.execute(f"DROP TABLE IF EXISTS {quote(staging)}")
            # Shaped like the live table, columns kept from older schema versions included.
            self._create_table(staging, [f"{quote(n)} {t}" + (" NOT NULL" if nn else "")
                                         for n, (t, nn) in self._existing(live).items()], layout)

        self._transaction(f"creating the snapshot staging table of '{layout.stream}'", create)

    # --- loading ----------------------------------------------------------------------------

    def _statements_for(self, layout: TableLayout, staging: bool) -> tuple[str, str, Any]:
        cached = self._statements.get((layout.uid, staging))
        if cached:
            return cached
        table = quote(prefixed_table_name(layout, self.staging_table(layout) if staging else None))
        names = ", ".join(quote(c.name) for c in layout.columns)
        values = ", ".join("?" if c.source == "record" else
                           "strftime('%Y-%m-%d %H:%M:%f', 'now')" for c in layout.columns)
        upsert = f"INSERT INTO {table} ({names}) VALUES ({values})"
        if layout.key_columns:
            keys = ", ".join(map(quote, layout.key_columns))
            sets = ", ".join(f"{quote(c.name)} = excluded.{quote(c.name)}"
                             for c in layout.value_columns)
            upsert += f" ON CONFLICT ({keys}) DO " + (f"UPDATE SET {sets}" if sets else "NOTHING")
        match = " AND ".join(f"{quote(k)} = ?" for k in layout.key_columns)
        names_in_row = [c.name for c in layout.record_columns]
        key_idx = [names_in_row.index(k) for k in layout.key_columns]
        if layout.soft_delete:
            delete = (f'UPDATE {table} SET "_sdc_deleted_at" = COALESCE(?, '
                      f"strftime('%Y-%m-%d %H:%M:%f', 'now')) WHERE {match}")
            key_idx = [names_in_row.index(DELETED_AT), *key_idx]
        else:
            delete = f"DELETE FROM {table} WHERE {match}"
        getter = operator.itemgetter(*key_idx) if len(key_idx) > 1 else (
            lambda row, i=key_idx[0] if key_idx else 0: (row[i],))
        result = (upsert, delete, getter)
        self._statements[(layout.uid, staging)] = result
        return result

    def _apply(self, layout: TableLayout, batch: Batch, staging: bool) -> None:
        upsert, delete, delete_params = self._statements_for(layout, staging)
        if batch.upserts:
            self.conn.executemany(upsert, batch.upserts)
        if batch.deletes:
            self.conn.executemany(delete, map(delete_params, batch.deletes))

    def live_table_has_rows(self, layout: TableLayout) -> bool:
        live = quote(prefixed_table_name(layout))
        return self._transaction(
            f"counting rows of stream '{layout.stream}'",
            lambda: self.conn.execute(f"SELECT 1 FROM {live} LIMIT 1").fetchone() is not None)

    def swap_staging(self, layout: TableLayout, batch: Batch, meta: MetaRow | None) -> None:
        live = quote(prefixed_table_name(layout))
        staging = quote(prefixed_table_name(layout, self.staging_table(layout)))

        def replace_live_table() -> None:
            self.conn.execute(f"DROP TABLE {live}")
            self.conn.execute(f"ALTER TABLE {staging} RENAME TO {live}")

        self._swap_in_one_transaction(layout, batch, meta, replace_live_table)

    # --- meta rows --------------------------------------------------------------------------

    def _upsert_meta(self, meta: MetaRow) -> None:
        values = [getattr(meta, c) for c in META_COLUMNS]
        values[2] = meta.timestamp.isoformat(" ", "microseconds")
        cur = self.conn.execute(_META_UPDATE, (*values, meta.source_namespace, meta.source_table))
        if cur.rowcount == 0:
            self.conn.execute(_META_INSERT, values)

    def read_meta_rows(self) -> list[MetaRow]:
        self._settle_loads()
        if not self._existing(_META_TABLE):
            return []
        rows = self.conn.execute(f"SELECT {', '.join(map(quote, META_COLUMNS))} FROM "
                                 f"{quote(_META_TABLE)} ORDER BY id").fetchall()
        result = []
        for r in rows:
            fields = dict(zip(META_COLUMNS, r, strict=True))
            fields["timestamp"] = dt.datetime.fromisoformat(fields["timestamp"])
            result.append(MetaRow(**fields))
        return result
