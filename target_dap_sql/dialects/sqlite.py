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
from target_dap_sql.dialects.base import Batch, Dialect, check_primary_key, logger, quote
from target_dap_sql.errors import ConfigError, DatabaseError
from target_dap_sql.layout import DELETED_AT, Column, TableLayout
from target_dap_sql.meta import (
    DATABASE_VERSION,
    META_NAMESPACE,
    MetaRow,
)

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
_JSON_DECODE = msgspec.json.Decoder().decode
_JSON_ENCODE = msgspec.json.Encoder().encode
_META_TABLE = f"{META_NAMESPACE}__table_sync"
_VERSION_TABLE = f"{META_NAMESPACE}__database_version"
_META_COLUMNS = ("source_namespace", "source_table", "timestamp", "schema_version",
                 "target_schema", "target_table", "schema_description_format",
                 "schema_description")


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


def _json_text(raw: msgspec.Raw) -> str | None:
    # Re-encoded compactly with non-ASCII kept, as the official replicator stores JSON, so the
    # stored text does not depend on how the tap formatted it.
    value = _JSON_DECODE(raw)
    return None if value is None else _JSON_ENCODE(value).decode()


class SqliteDialect(Dialect):
    name = "sqlite"

    def __init__(self, url: str):
        self._path = sqlite_path(url)
        self._conn: sqlite3.Connection | None = None
        self._statements: dict[tuple[int, bool], tuple[str, str, Any]] = {}
        #: Snapshot batches load here while the next one is decoded (sqlite3 releases the GIL
        #: while SQLite works); every other use of the connection settles it first.
        self._loads = BackgroundJob("dap-sqlite-load")

    @staticmethod
    def table_name(layout: TableLayout, table: str | None = None) -> str:
        table = table or layout.table
        return f"{layout.schema}__{table}" if layout.schema else table

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
            elif kind in ("json", "array"):
                out.append((i, _json_text))
            elif kind in ("uuid", "date"):
                out.append((i, str))
        return out

    # --- connection -------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.connect()
        assert self._conn is not None
        return self._conn

    def connect(self) -> None:
        self._loads.settle()
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

    def close(self) -> None:
        try:
            self._loads.settle()
        finally:
            if self._conn is not None:
                if self._conn.in_transaction:
                    self._conn.rollback()
                self._conn.close()
                self._conn = None

    def _transaction(self, what: str, fn: Any) -> Any:
        self._loads.settle()
        return self._run_transaction(what, fn)

    def _run_transaction(self, what: str, fn: Any) -> Any:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = fn(conn)
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise DatabaseError(f"{what}: {exc}") from None
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    # --- DDL --------------------------------------------------------------------------------

    def ensure_meta_tables(self) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(f'CREATE TABLE IF NOT EXISTS {quote(_VERSION_TABLE)} ('
                         '"version" INTEGER NOT NULL, '
                         'CONSTRAINT "pk_database_version" PRIMARY KEY ("version"))')
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {quote(_META_TABLE)} ("
                '"id" INTEGER PRIMARY KEY AUTOINCREMENT, '
                '"source_namespace" TEXT NOT NULL, "source_table" TEXT NOT NULL, '
                '"timestamp" TEXT NOT NULL, "schema_version" INTEGER NOT NULL, '
                '"target_schema" TEXT, "target_table" TEXT NOT NULL, '
                '"schema_description_format" TEXT NOT NULL, "schema_description" TEXT NOT NULL)')
            conn.execute(f'INSERT OR IGNORE INTO {quote(_VERSION_TABLE)} ("version") VALUES (?)',
                         (DATABASE_VERSION,))

        self._transaction("creating the instructure_dap meta tables", run)

    def _existing(self, conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, bool]]:
        rows = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
        return {r[1]: (r[2], bool(r[3])) for r in rows}

    @staticmethod
    def _primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
        rows = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
        return [r[1] for r in sorted(rows, key=lambda r: r[5]) if r[5]]

    def _column_ddl(self, c: Column, layout: TableLayout) -> str:
        ddl = f"{quote(c.name)} {_STORAGE.get(c.type.kind, 'TEXT')}"
        # Only keys are NOT NULL: SQLite cannot relax a constraint later without a table rebuild,
        # and a required column that disappears from the DAP schema must not block loading.
        return ddl + " NOT NULL" if c.name in layout.key_columns else ddl

    def prepare_table(self, layout: TableLayout, *, drop_removed_columns: bool) -> None:
        table = self.table_name(layout)

        def run(conn: sqlite3.Connection) -> None:
            existing = self._existing(conn, table)
            if not existing:
                cols = [self._column_ddl(c, layout) for c in layout.columns]
                if layout.key_columns:
                    cols.append(f"CONSTRAINT {quote('pk_' + layout.table)} PRIMARY KEY "
                                f"({', '.join(map(quote, layout.key_columns))})")
                conn.execute(f"CREATE TABLE {quote(table)} ({', '.join(cols)})")
                logger.info("Created table %s", table)
                return
            check_primary_key(layout, self._primary_key(conn, table))
            for c in layout.columns:
                if c.name not in existing:
                    logger.info("Adding column %s.%s", table, c.name)
                    conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN "
                                 f"{self._column_ddl(c, layout)}")
            if drop_removed_columns:
                for name in existing:
                    if name not in layout._by_name:
                        logger.info("Dropping column %s.%s", table, name)
                        conn.execute(f"ALTER TABLE {quote(table)} DROP COLUMN {quote(name)}")

        self._transaction(f"preparing table for stream '{layout.stream}'", run)
        self._statements = {k: v for k, v in self._statements.items() if k[0] != layout.uid}

    def create_staging(self, layout: TableLayout) -> None:
        live = self.table_name(layout)
        staging = self.table_name(layout, self.staging_table(layout))

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(f"DROP TABLE IF EXISTS {quote(staging)}")
            existing = self._existing(conn, live)
            cols = [f"{quote(n)} {t}" + (" NOT NULL" if nn else "")
                    for n, (t, nn) in existing.items()]
            if layout.key_columns:
                cols.append(f"CONSTRAINT {quote('pk_' + layout.table)} PRIMARY KEY "
                            f"({', '.join(map(quote, layout.key_columns))})")
            conn.execute(f"CREATE TABLE {quote(staging)} ({', '.join(cols)})")

        self._transaction(f"creating the snapshot staging table of '{layout.stream}'", run)

    # --- loading ----------------------------------------------------------------------------

    def _statements_for(self, layout: TableLayout, staging: bool) -> tuple[str, str, Any]:
        cached = self._statements.get((layout.uid, staging))
        if cached:
            return cached
        table = quote(self.table_name(layout, self.staging_table(layout) if staging else None))
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

    def _apply(self, conn: sqlite3.Connection, layout: TableLayout, batch: Batch,
               staging: bool) -> None:
        upsert, delete, delete_params = self._statements_for(layout, staging)
        if batch.upserts:
            conn.executemany(upsert, batch.upserts)
        if batch.deletes:
            conn.executemany(delete, map(delete_params, batch.deletes))

    def write_batch(self, layout: TableLayout, batch: Batch, *, staging: bool,
                    meta: MetaRow | None) -> None:
        def run(conn: sqlite3.Connection) -> None:
            self._apply(conn, layout, batch, staging)
            if meta is not None:
                self._upsert_meta(conn, meta)

        self._loads.settle()
        if staging and meta is None:
            # Nothing waits on a staging commit (STATE does not move until the swap), so the
            # batch loads in the background; the next use of the connection settles it.
            self._loads.start(
                lambda: self._run_transaction(f"loading stream '{layout.stream}'", run))
        else:
            self._transaction(f"loading stream '{layout.stream}'", run)

    def update_meta(self, meta: MetaRow) -> None:
        self._transaction("updating instructure_dap__table_sync",
                          lambda conn: self._upsert_meta(conn, meta))

    def swap_staging(self, layout: TableLayout, batch: Batch, meta: MetaRow | None) -> None:
        live = quote(self.table_name(layout))
        staging = quote(self.table_name(layout, self.staging_table(layout)))

        def run(conn: sqlite3.Connection) -> None:
            self._apply(conn, layout, batch, True)
            conn.execute(f"DROP TABLE {live}")
            conn.execute(f"ALTER TABLE {staging} RENAME TO {live}")
            if meta is not None:
                self._upsert_meta(conn, meta)

        self._transaction(f"replacing table of stream '{layout.stream}' by its snapshot", run)
        logger.info("Snapshot of '%s' swapped in", layout.stream)

    # --- meta rows --------------------------------------------------------------------------

    @staticmethod
    def _upsert_meta(conn: sqlite3.Connection, meta: MetaRow) -> None:
        values = [getattr(meta, c) for c in _META_COLUMNS]
        values[2] = meta.timestamp.isoformat(" ", "microseconds")
        sets = ", ".join(f"{quote(c)} = ?" for c in _META_COLUMNS)
        cur = conn.execute(f"UPDATE {quote(_META_TABLE)} SET {sets} WHERE "
                           '"source_namespace" = ? AND "source_table" = ?',
                           (*values, meta.source_namespace, meta.source_table))
        if cur.rowcount == 0:
            conn.execute(f"INSERT INTO {quote(_META_TABLE)} "
                         f"({', '.join(map(quote, _META_COLUMNS))}) "
                         f"VALUES ({', '.join('?' * len(_META_COLUMNS))})", values)

    def read_meta_rows(self) -> list[MetaRow]:
        self._loads.settle()
        conn = self.conn
        if not self._existing(conn, _META_TABLE):
            return []
        rows = conn.execute(f"SELECT {', '.join(map(quote, _META_COLUMNS))} FROM "
                            f"{quote(_META_TABLE)} ORDER BY id").fetchall()
        result = []
        for r in rows:
            fields = dict(zip(_META_COLUMNS, r, strict=True))
            fields["timestamp"] = dt.datetime.fromisoformat(fields["timestamp"])
            result.append(MetaRow(**fields))
        return result
