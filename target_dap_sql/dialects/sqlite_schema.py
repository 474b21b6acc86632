"""SQLite DDL: the official `<ns>__<table>` layout in storage classes, meta tables, evolution.

SQLite has no schemas, so a table lives in the database file as `<schema>__<table>` (the name the
official client gives it where tables cannot be grouped). Column types are SQLite's storage
classes (see docs/database-layout.md). Every method runs inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable

from target_dap_sql.dialects.base import (
    META_COLUMNS,
    ColumnNaming,
    check_primary_key,
    keep_deleted_rows_sql,
    logger,
    meta_row_sql,
    prefixed_name,
    primary_key_clause,
    quote,
)
from target_dap_sql.layout import Column, TableLayout
from target_dap_sql.meta import DATABASE_VERSION, META_NAMESPACE, MetaRow

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
STORAGE_CLASSES = {
    "smallint": "INTEGER", "integer": "INTEGER", "bigint": "INTEGER", "boolean": "INTEGER",
    "real": "REAL", "double": "REAL", "decimal": "REAL", "numeric": "REAL",
}
#: SQLite takes `Name` and `name` for one column (ASCII letters only: `Ä` and `ä` are two).
SQLITE_COLUMNS = ColumnNaming(
    lambda name: name.translate(_ASCII_LOWER),
    "SQLite compares column names without regard to the case of ASCII letters")
META_TABLE = f"{META_NAMESPACE}__table_sync"
VERSION_TABLE = f"{META_NAMESPACE}__database_version"
_META_UPDATE, _META_INSERT = meta_row_sql(quote(META_TABLE), "?",
                                          '"source_namespace" = ? AND "source_table" = ?')


class SqliteSchemaManager:
    """DDL and meta-table statements on the dialect's connection (opened on first use)."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]):
        self._connection = connection

    @property
    def conn(self) -> sqlite3.Connection:
        return self._connection()

    # --- meta tables ------------------------------------------------------------------------

    def ensure_meta_tables(self) -> None:
        # Checked first, not `CREATE TABLE IF NOT EXISTS`: a run whose schema did not change
        # issues no DDL at all (the caller's BEGIN IMMEDIATE keeps the check and the create one).
        execute = self.conn.execute
        existing = {r[0] for r in execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
            (VERSION_TABLE, META_TABLE))}
        if VERSION_TABLE not in existing:
            execute(f'CREATE TABLE {quote(VERSION_TABLE)} ('
                    '"version" INTEGER NOT NULL, '
                    'CONSTRAINT "pk_database_version" PRIMARY KEY ("version"))')
        if META_TABLE not in existing:
            execute(
                f"CREATE TABLE {quote(META_TABLE)} ("
                '"id" INTEGER PRIMARY KEY AUTOINCREMENT, '
                '"source_namespace" TEXT NOT NULL, "source_table" TEXT NOT NULL, '
                '"timestamp" TEXT NOT NULL, "schema_version" INTEGER NOT NULL, '
                '"target_schema" TEXT, "target_table" TEXT NOT NULL, '
                '"schema_description_format" TEXT NOT NULL, '
                '"schema_description" TEXT NOT NULL)')
        execute(f'INSERT OR IGNORE INTO {quote(VERSION_TABLE)} ("version") VALUES (?)',
                (DATABASE_VERSION,))

    def upsert_meta_row(self, meta: MetaRow) -> None:
        values = [getattr(meta, c) for c in META_COLUMNS]
        values[2] = meta.timestamp.isoformat(" ", "microseconds")
        cur = self.conn.execute(_META_UPDATE, (*values, meta.source_namespace, meta.source_table))
        if cur.rowcount == 0:
            self.conn.execute(_META_INSERT, values)

    def read_meta_rows(self) -> list[MetaRow]:
        if not self.table_exists(META_TABLE):
            return []
        rows = self.conn.execute(f"SELECT {', '.join(map(quote, META_COLUMNS))} FROM "
                                 f"{quote(META_TABLE)} ORDER BY id").fetchall()
        result = []
        for r in rows:
            fields = dict(zip(META_COLUMNS, r, strict=True))
            fields["timestamp"] = dt.datetime.fromisoformat(fields["timestamp"])
            result.append(MetaRow(**fields))
        return result

    # --- tables -----------------------------------------------------------------------------

    def table_exists(self, table: str) -> bool:
        return bool(self._table_info(table))

    def _table_info(self, table: str) -> list[tuple]:
        # `main.`: unqualified, it also finds a snapshot's rows table of the same name
        # (sqlite.py, `ROWS_DB`), e.g. another tap's stream named `_dap_rows_12`.
        return self.conn.execute(f"PRAGMA main.table_info({quote(table)})").fetchall()

    def existing_columns(self, table: str) -> dict[str, tuple[str, bool]]:
        """name → (declared type, NOT NULL) of the table's columns; empty if it is missing."""
        return {r[1]: (r[2], bool(r[3])) for r in self._table_info(table)}

    def primary_key(self, table: str) -> list[str]:
        return [r[1] for r in sorted(self._table_info(table), key=lambda r: r[5]) if r[5]]

    @staticmethod
    def column_ddl(c: Column, layout: TableLayout) -> str:
        ddl = f"{quote(c.name)} {STORAGE_CLASSES.get(c.type.kind, 'TEXT')}"
        # Only keys are NOT NULL: SQLite cannot relax a constraint later without a table rebuild,
        # and a required column that disappears from the DAP schema must not block loading.
        return ddl + " NOT NULL" if c.name in layout.key_columns else ddl

    def _create_table(self, table: str, columns: list[str], layout: TableLayout) -> None:
        if pk := primary_key_clause(layout, layout.table):
            columns = [*columns, pk]
        self.conn.execute(f"CREATE TABLE {quote(table)} ({', '.join(columns)})")

    def prepare_table(self, layout: TableLayout, drop_removed: bool) -> None:
        """Create the table, or evolve it: new columns added, removed ones dropped if asked.
        SQLite's storage classes never need widening."""
        table = prefixed_name(layout.schema, layout.table)
        existing = SQLITE_COLUMNS.existing_as_layout(layout, self.existing_columns(table))
        if not existing:
            self._create_table(table, [self.column_ddl(c, layout) for c in layout.columns],
                               layout)
            logger.info("Created table %s", table)
            return
        check_primary_key(layout, SQLITE_COLUMNS.key_as_layout(layout, self.primary_key(table)))
        # One statement per column: SQLite's ALTER TABLE takes one change at a time.
        for c in layout.columns:
            if c.name not in existing:
                logger.info("Adding column %s.%s", table, c.name)
                self.conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN "
                                  f"{self.column_ddl(c, layout)}")
        if drop_removed:
            for name in existing:
                if name not in layout._by_name:
                    logger.info("Dropping column %s.%s", table, name)
                    self.conn.execute(f"ALTER TABLE {quote(table)} DROP COLUMN {quote(name)}")

    def create_staging(self, layout: TableLayout, staging: str) -> None:
        live = prefixed_name(layout.schema, layout.table)
        self.conn.execute(f"DROP TABLE IF EXISTS {quote(staging)}")
        # Shaped like the live table, columns kept from older schema versions included.
        self._create_table(staging, [f"{quote(n)} {t}" + (" NOT NULL" if nn else "")
                                     for n, (t, nn) in self.existing_columns(live).items()],
                           layout)

    def keep_deleted_rows(self, layout: TableLayout, live: str, staging: str, now: str) -> None:
        """Copy the live rows the snapshot lacks into staging, marked deleted
        (`base.keep_deleted_rows_sql`), inside the swap's transaction."""
        self.conn.execute(keep_deleted_rows_sql(layout, quote(live), quote(staging),
                                                self.existing_columns(live),
                                                self.existing_columns(staging), now))

    def swap(self, live: str, staging: str) -> None:
        self.conn.execute(f"DROP TABLE {quote(live)}")
        self.conn.execute(f"ALTER TABLE {quote(staging)} RENAME TO {quote(live)}")

    # --- administration ---------------------------------------------------------------------

    def count_rows(self, table: str) -> int | None:
        if not self.table_exists(table):
            return None
        row = self.conn.execute(f"SELECT COUNT(*) FROM {quote(table)}").fetchone()
        return int(row[0])

    def drop(self, meta: MetaRow, table: str) -> None:
        """The meta row first (as the official dropdb does), then the table."""
        self.conn.execute(f'DELETE FROM {quote(META_TABLE)} WHERE "source_namespace" = ? '
                          'AND "source_table" = ?', (meta.source_namespace, meta.source_table))
        self.conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
