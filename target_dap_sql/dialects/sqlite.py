"""SQLite (the embedded default): `<ns>__<table>` tables, WAL, executemany upserts per transaction.

Types are SQLite's storage classes: INTEGER (integers, booleans), REAL (floats, decimals) and
TEXT (strings, enums, UUIDs, JSON, arrays as JSON, timestamps as naive UTC
`YYYY-MM-DD HH:MM:SS.ffffff`, which sorts correctly and SQLite's date functions understand).
Decoded rows are bound after one C call that makes datetimes, dates and UUIDs text;
sqlite_binding.py says how they become those types without a Python call per value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import operator
import sqlite3
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from target_dap_sql.decoding import Converters, constrained
from target_dap_sql.dialects import sqlite_binding
from target_dap_sql.dialects.background import BackgroundJob
from target_dap_sql.dialects.base import (
    STAGING_SUFFIX,
    Batch,
    compact_json_text,
    nested_object_text,
    prefixed_name,
    prefixed_table_name,
    quote,
)
from target_dap_sql.dialects.connection import ConnectionDialect
from target_dap_sql.dialects.sqlite_rows import IMAGES, ROWS_DB, BoundRows, RowsBinder
from target_dap_sql.dialects.sqlite_schema import META_TABLE, SqliteSchemaManager
from target_dap_sql.errors import ConfigError, DatabaseError
from target_dap_sql.layout import DELETED_AT, Column, TableLayout
from target_dap_sql.meta import MetaRow

_DECODE = {
    "smallint": int, "integer": int, "bigint": int, "boolean": bool,
    "real": float, "double": float, "decimal": float, "numeric": float,
    "timestamp": dt.datetime, "date": dt.date, "uuid": uuid.UUID,
    "json": msgspec.Raw, "array": msgspec.Raw,
}
_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
#: Connection settings for a replica (docs/database-layout.md, "SQLite settings"). WAL: readers
#: (dbt, the `dap` CLI) never block the loader nor see half a batch, and a commit appends to the
#: WAL once instead of journalling every page. `synchronous` is set per transaction (`_begin`).
PRAGMAS = ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = FULL")
# A background slice's rows are bound into a table of an attached in-memory database first
# (ROWS_DB, sqlite_rows.py), ~10 MB per 10,000-row slice: a TEMP table would spill to a file
# past 2 MB, and `temp_store = MEMORY` also keeps statement journals in memory (a DROP COLUMN
# of a big table then journals the whole table in RAM).
#: Key kinds whose values are JSON numbers or strings that SQLite compares equal to the stored
#: value: deletes by such a key go as one JSON array (`json_each`) instead of one bind per row.
_JSON_KEY_KINDS = frozenset({"smallint", "integer", "bigint", "varchar", "char", "text", "enum"})
_ENCODE = msgspec.json.Encoder().encode


class _Statements(NamedTuple):
    #: The upsert of one bound row (`executemany`): batches with a meta row (`_apply`).
    upsert: str
    #: Creates the `ROWS_DB` table a batch's rows are bound into (untyped columns `c0`…: values keep
    #: the storage class they were bound with until `move` gives them the table's affinity).
    temp_table: str
    #: Binds one row into that table: `executemany`, under the GIL (sqlite_rows.py).
    stage: str
    #: The upsert of all staged rows, in their order, made stored values in SQL: one statement,
    #: so one `sqlite3_step` without the GIL (on the load thread, while the next slice decodes).
    move: str
    #: Empties that table.
    clear: str
    delete: str
    #: The delete's parameters of a deleted row.
    delete_params: Any
    #: Where the key is a single column of _JSON_KEY_KINDS: the delete by a JSON array of keys
    #: and the key's place in a row.
    delete_many: tuple[str, int] | None


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


def _json_keys(batch: Batch, index: int) -> str | None:
    """The deleted rows' keys as a JSON array, or None if one of them might not come back from
    SQLite's JSON as the same value (a NUL, an unpaired surrogate)."""
    try:
        keys = _ENCODE([row[index] for row in batch.deletes])
    except (TypeError, ValueError, UnicodeEncodeError):
        return None
    return None if b"\\u0000" in keys else keys.decode()


class SqliteDialect(ConnectionDialect[sqlite3.Connection, _Statements]):
    name = "sqlite"
    driver_error = sqlite3.Error
    meta_table_label = META_TABLE

    def __init__(self, url: str):
        # Snapshot batches load in the background: sqlite3 releases the GIL while SQLite works.
        super().__init__(loads=BackgroundJob("dap-sqlite-load"))
        self._path = sqlite_path(url)
        self._schema = SqliteSchemaManager(lambda: self.conn)
        self._synchronous = "FULL"
        #: Whether the next transaction's commit must be durable (see `write_batch`, `_begin`).
        self._durable_next = True
        #: Binds background slices' rows on the caller's thread (sqlite_rows.py).
        self._binder = RowsBinder()
        #: Streams whose slices outgrew an image: bound on the loading connection since.
        self._wide: set[Any] = set()
        #: The background slice whose rows `_binder` bound, and their image, which the load
        #: thread's `_begin` puts in place of `ROWS_DB` (then None) for `_apply` to move.
        self._bound: Batch | None = None
        self._image: bytes | None = None
        #: Whether `ROWS_DB` holds a slice's rows, to empty once its transaction ends.
        self._rows_held = False
        #: What `sqlite_binding.utc_text` raised in SQL (SQLite reports only that it raised).
        self._function_error: str | None = None

    # --- names ------------------------------------------------------------------------------

    def table_name(self, schema: str | None, table: str) -> str:
        return prefixed_name(schema, table)

    def qualified_name(self, schema: str | None, table: str) -> str:
        return quote(prefixed_name(schema, table))

    def container_name(self, schema: str | None) -> str:
        return "main"

    def staging_table(self, layout: TableLayout) -> str:
        return prefixed_table_name(layout, layout.table + STAGING_SUFFIX)

    # --- decoding ---------------------------------------------------------------------------

    def field_type(self, column: Column, layout: TableLayout) -> Any:
        base = _DECODE.get(column.type.kind, str)
        return constrained(base, column.type, layout)

    def converters(self, layout: TableLayout) -> Converters:
        # Only JSON is re-encoded in Python (compact, nulls of nested objects dropped, as the
        # official client stores it); every other value is bound as decoded, datetimes, dates
        # and UUIDs made text by one call per batch (`sqlite_binding.bindable`).
        out: Converters = []
        for i, c in enumerate(layout.record_columns):
            kind = c.type.kind
            if kind == "json" and c.type.nested:
                out.append((i, nested_object_text(c.nullable)))
            elif kind in ("json", "array"):
                out.append((i, compact_json_text))
        return out

    # --- connection -------------------------------------------------------------------------

    def connect(self) -> None:
        self._settle_loads()
        if self._path != ":memory:" and not Path(self._path).parent.exists():
            raise DatabaseError(f"cannot open SQLite database {self._path}: "
                                "its directory does not exist")
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            for pragma in PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            conn.execute(f"ATTACH DATABASE ':memory:' AS {ROWS_DB}")
            sqlite_binding.register(conn, self._function_failed)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open SQLite database {self._path}: {exc}") from None
        self._synchronous = "FULL"
        sqlite_binding.hold()  # how None and bools bind while the connection is open
        self._conn = conn

    def _close_connection(self, conn: sqlite3.Connection) -> None:
        self._bound = self._image = None
        self._rows_held = False
        self._binder.close()
        try:
            if conn.in_transaction:
                conn.rollback()
            conn.close()
        finally:
            sqlite_binding.release()

    def _roll_back(self) -> None:
        self._bound = self._image = None
        if self._conn is not None and self._conn.in_transaction:
            self._conn.rollback()
        self._release_rows()

    def _release_rows(self) -> None:
        if self._rows_held and self._conn is not None:
            self._rows_held = False
            # A new plain in-memory database: the image's memory is freed, and a slice bound
            # on this connection (`_apply`) is not held to an image's size cap.
            with contextlib.suppress(sqlite3.Error):  # only memory: never hide what failed
                self._conn.execute(f"DETACH DATABASE {ROWS_DB}")
                self._conn.execute(f"ATTACH DATABASE ':memory:' AS {ROWS_DB}")

    def _function_failed(self, text: str) -> None:
        self._function_error = text

    def _failure_text(self, exc: Exception) -> str:
        text, self._function_error = self._function_error, None
        if text is not None and "user-defined function raised exception" in str(exc):
            return text
        return str(exc)

    def write_batch(self, layout: TableLayout, batch: Batch, *, staging: bool,
                    meta: MetaRow | None) -> None:
        image = None
        if meta is None and batch.upserts and IMAGES and layout.uid not in self._wide:
            # A slice, which loads on the background thread (`ConnectionDialect._write`): its
            # rows are bound here, on a connection of their own, while the previous slice still
            # loads, and only `move` runs there (sqlite_rows.py, docs/performance.md).
            image = self._bind(layout, batch, staging)
        # SQLite cannot change `synchronous` inside a transaction (so `_without_durable_commit`
        # comes too late): the batch's transaction learns it in `_begin`. Settled first: the
        # load in flight has ended, and no other transaction begins before this batch's.
        self._settle_loads()
        # A DAP slice that moves no bookmark: lost to a power cut, it is fetched again (as
        # `ConnectionDialect.write_batch` says); other taps' STATE may cover any commit.
        self._durable_next = not (meta is None and layout.dap is not None)
        if image is not None:
            batch = Batch(BoundRows(len(batch.upserts)), batch.deletes, batch.encoded, batch.keys)
            self._bound, self._image = batch, image
        super().write_batch(layout, batch, staging=staging, meta=meta)

    def _bind(self, layout: TableLayout, batch: Batch, staging: bool) -> bytes | None:
        """The batch's upserts bound into a `ROWS_DB` image, on this thread (None: too large
        for one, `_apply` binds them on the load thread)."""
        statements = self._statements_for(layout, staging)
        self.conn  # noqa: B018 - connected: our adapters are installed (`sqlite_binding.hold`)
        try:
            image = self._binder.bind(statements.temp_table, statements.stage, batch.upserts)
            if image is None:
                self._wide.add(layout.uid)
            return image
        except BaseException as exc:
            self._settle_loads()  # an error of the slice loading now came first
            if isinstance(exc, sqlite3.Error):
                raise DatabaseError(f"loading stream '{layout.stream}': {exc}") from None
            raise

    def _begin(self) -> None:
        # FULL syncs the WAL at COMMIT, and every frame before it: a commit that moves a
        # bookmark survives a power cut. NORMAL (slices) writes the WAL without syncing it: the
        # commit survives the process being killed, not the machine losing power.
        image, self._image = self._image, None
        if image is not None:  # a slice's rows, bound by `_bind` (outside any transaction)
            self.conn.deserialize(image, name=ROWS_DB)
            self._rows_held = True
        durable, self._durable_next = self._durable_next, True
        level = "FULL" if durable else "NORMAL"
        if self._synchronous != level:
            self.conn.execute(f"PRAGMA synchronous = {level}")
            self._synchronous = level
        # IMMEDIATE takes the write lock now, so a concurrent writer makes us wait (busy_timeout)
        # here rather than fail halfway through the batch.
        self.conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self.conn.execute("COMMIT")
        self._release_rows()

    # --- DDL --------------------------------------------------------------------------------

    def ensure_meta_tables(self) -> None:
        self._transaction("creating the instructure_dap meta tables",
                          self._schema.ensure_meta_tables)

    def prepare_table(self, layout: TableLayout, *, drop_removed_columns: bool) -> None:
        self._transaction(f"preparing table for stream '{layout.stream}'",
                          lambda: self._schema.prepare_table(layout, drop_removed_columns))
        self._forget_statements(layout)

    def create_staging(self, layout: TableLayout) -> None:
        staging = self.staging_table(layout)
        self._transaction(f"creating the snapshot staging table of '{layout.stream}'",
                          lambda: self._schema.create_staging(layout, staging))

    # --- loading ----------------------------------------------------------------------------

    def _build_statements(self, layout: TableLayout, staging: bool) -> _Statements:
        table = quote(self.staging_table(layout) if staging else prefixed_table_name(layout))
        names_in_row = [c.name for c in layout.record_columns]

        def param(name: str, number: int | None = None) -> str:
            """The SQL of a row value: numbered (`?N`, N = its place in the bound tuple), as
            the SQL that makes a timestamp's text names it more than once."""
            p = f"?{names_in_row.index(name) + 1 if number is None else number}"
            return sqlite_binding.value_sql(p, layout._by_name[name].type.kind)

        # The rows table is named by its width: any table with as many record columns shares it.
        width = len(names_in_row)
        temp = f'{ROWS_DB}."_dap_rows_{width}"'
        temp_table = (f"CREATE TABLE IF NOT EXISTS {temp} "
                      f"({', '.join(f'c{i}' for i in range(width))})")
        stage = f"INSERT INTO {temp} VALUES ({', '.join('?' * width)})"
        names = ", ".join(quote(c.name) for c in layout.columns)
        # The SQL of each column over the staged row: the bound tuple's ?N is column c{N-1}.
        values = ", ".join(
            sqlite_binding.value_sql(f"c{names_in_row.index(c.name)}",
                                     layout._by_name[c.name].type.kind)
            if c.source == "record" else _NOW for c in layout.columns)
        # `WHERE true`: an upsert's SELECT needs a WHERE (its ON would be read as a join's).
        move = (f"INSERT INTO {table} ({names}) SELECT {values} FROM {temp} "
                "WHERE true ORDER BY rowid")
        if layout.key_columns:
            keys = ", ".join(map(quote, layout.key_columns))
            sets = ", ".join(f"{quote(c.name)} = excluded.{quote(c.name)}"
                             for c in layout.value_columns)
            move += f" ON CONFLICT ({keys}) DO " + (f"UPDATE SET {sets}" if sets else "NOTHING")
        key_idx = [names_in_row.index(k) for k in layout.key_columns]
        # The delete binds (deleted_at?, key…) in that order, numbered from 1.
        first_key = 2 if layout.soft_delete else 1
        match = " AND ".join(f"{quote(k)} = {param(k, first_key + i)}"
                             for i, k in enumerate(layout.key_columns))
        delete_many = None
        if layout.soft_delete:
            delete = (f'UPDATE {table} SET "_sdc_deleted_at" = COALESCE({param(DELETED_AT, 1)}, '
                      f"{_NOW}) WHERE {match}")
            key_idx = [names_in_row.index(DELETED_AT), *key_idx]
        else:
            delete = f"DELETE FROM {table} WHERE {match}"
            if len(key_idx) == 1 and layout._by_name[layout.key_columns[0]].type.kind in (
                    _JSON_KEY_KINDS):
                delete_many = (f"DELETE FROM {table} WHERE {quote(layout.key_columns[0])} "
                               "IN (SELECT value FROM json_each(?))", key_idx[0])
        getter = operator.itemgetter(*key_idx) if len(key_idx) > 1 else (
            lambda row, i=key_idx[0] if key_idx else 0: (row[i],))
        upsert = f"INSERT INTO {table} ({names}) VALUES (" + ", ".join(
            param(c.name) if c.source == "record" else _NOW for c in layout.columns) + ")"
        if layout.key_columns:
            upsert += move[move.index(" ON CONFLICT"):]
        return _Statements(upsert, temp_table, stage, move, f"DELETE FROM {temp}", delete,
                           getter, delete_many)

    def _apply(self, layout: TableLayout, batch: Batch, staging: bool) -> None:
        statements = self._statements_for(layout, staging)
        bound, self._bound = self._bound, None
        with sqlite_binding.binding():  # our adapters encode only here (sqlite_binding.py)
            if bound is batch and batch.upserts:  # bound by `_bind`, deserialized by `_begin`
                self.conn.execute(statements.move)
            elif batch.upserts and staging:  # the snapshot's last batch, in the swap
                self.conn.execute(statements.temp_table)
                self.conn.execute(statements.clear)
                self.conn.executemany(statements.stage, sqlite_binding.bindable(batch.upserts))
                self.conn.execute(statements.move)
            elif batch.upserts:  # a batch with a meta row, in the foreground
                self.conn.executemany(statements.upsert, sqlite_binding.bindable(batch.upserts))
            if batch.deletes:
                self._delete(statements, batch)

    def _delete(self, statements: _Statements, batch: Batch) -> None:
        delete_many = statements.delete_many
        keys = _json_keys(batch, delete_many[1]) if delete_many is not None else None
        if keys is not None:
            # One statement: the keys as one JSON array (encoded in C), matched by SQLite.
            self.conn.execute(delete_many[0], (keys,))
        else:
            self.conn.executemany(statements.delete, map(
                statements.delete_params, sqlite_binding.bindable(batch.deletes)))

    def table_exists(self, layout: TableLayout) -> bool:
        return self._transaction(
            f"looking up the table of stream '{layout.stream}'",
            lambda: self._schema.table_exists(prefixed_table_name(layout)))

    def live_table_has_rows(self, layout: TableLayout) -> bool:
        live = quote(prefixed_table_name(layout))
        return self._transaction(
            f"counting rows of stream '{layout.stream}'",
            lambda: self.conn.execute(f"SELECT 1 FROM {live} LIMIT 1").fetchone() is not None)

    def swap_staging(self, layout: TableLayout, batch: Batch, meta: MetaRow | None) -> None:
        live, staging = prefixed_table_name(layout), self.staging_table(layout)

        def replace() -> None:
            if layout.soft_delete:
                self._schema.keep_deleted_rows(layout, live, staging, _NOW)
            self._schema.swap(live, staging)

        self._swap_in_one_transaction(layout, batch, meta, replace)

    # --- meta rows -------------------------------------------------------------------------

    def _upsert_meta(self, meta: MetaRow) -> None:
        self._schema.upsert_meta_row(meta)

    def read_meta_rows(self) -> list[MetaRow]:
        return self._read(f"reading {META_TABLE}", self._schema.read_meta_rows)

    # --- administration ---------------------------------------------------------------------

    def count_rows(self, schema: str | None, table: str) -> int | None:
        return self._read(f"counting rows of {self.qualified_name(schema, table)}",
                          lambda: self._schema.count_rows(prefixed_name(schema, table)))

    def drop_replica(self, meta: MetaRow) -> None:
        table = prefixed_name(meta.target_schema, meta.target_table)
        self._transaction(f"dropping {meta.source_namespace}.{meta.source_table}",
                          lambda: self._schema.drop(meta, table))
