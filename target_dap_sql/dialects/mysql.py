"""MySQL 8 / MariaDB ≥ 10.5 via PyMySQL: official `<ns>__<table>` layout, multi-row upserts.

Per batch, in one InnoDB transaction: multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements
(built here, ~2 MB each; as fast as `LOAD DATA LOCAL INFILE` into a staging table plus
`INSERT … SELECT` in a 100k-row measurement, and it needs no `local_infile` on the server),
`DELETE … WHERE key IN (…)` chunks and the meta-row update; each statement is written (a function
generated per table shape, mysql_literals.py) while the previous one executes (mysql_send.py).
The session uses the official client's settings (ANSI_QUOTES, STRICT_ALL_TABLES, UTC).

Snapshots load into a staging table and `RENAME TABLE live TO old, staging TO live` swaps it in
one atomic statement. MySQL DDL commits implicitly, so the meta row of a snapshot is written
right AFTER the rename: a crash in between leaves the new rows with the old bookmark, and the
next run re-applies changes since that bookmark (idempotent) — never the other way round. With
`hard_delete: false` the live rows the snapshot lacks are copied into staging, marked deleted, in
the transaction of the snapshot's last batch, before the rename: a crash before the rename leaves
the live table as it was (the next snapshot starts a new staging table).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import pymysql

from target_dap_sql.decoding import Converters, constrained, decimal_fits
from target_dap_sql.dialects.background import BackgroundJob
from target_dap_sql.dialects.base import (
    Batch,
    check_primary_key,
    compact_json_text,
    keep_deleted_rows_sql,
    logger,
    nested_object_text,
    prefixed_name,
    prefixed_table_name,
    quote,
)
from target_dap_sql.dialects.connection import ConnectionDialect
from target_dap_sql.dialects.mysql_literals import (
    decimal_in_range,
    literal_row_of,
    rounded_to_scale,
)
from target_dap_sql.dialects.mysql_packets import (
    PACKET_TOO_LARGE,
    STATEMENT_BYTES,
    RowTooLarge,
    value_lists,
)
from target_dap_sql.dialects.mysql_schema import (
    META_TABLE,
    VERSION_TABLE,
    MySqlSchemaManager,
    staging_name,
)
from target_dap_sql.dialects.mysql_send import abort_statement, execute_overlapped
from target_dap_sql.dialects.mysql_server import (
    CHARSET,
    charset_error,
    check_server_version,
    mysql_params,
)
from target_dap_sql.errors import DatabaseError
from target_dap_sql.layout import DELETED_AT, Column, TableLayout
from target_dap_sql.meta import MetaRow

_SESSION = ("SET SESSION sql_mode = 'ANSI_QUOTES,NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES', "
            "time_zone = '+00:00'")
_DECODE = {
    "smallint": int, "integer": int, "bigint": int, "boolean": bool,
    "real": float, "double": float, "numeric": float, "decimal": Decimal,
    "timestamp": dt.datetime, "timestamptz": dt.datetime, "date": dt.date,
    "uuid": uuid.UUID, "json": msgspec.Raw, "array": msgspec.Raw,
}
#: Server error codes meaning "you may not write here" (access denied, read-only server).
_NO_WRITE = {1044, 1142, 1143, 1227, 1290, 1836}
DELETE_CHUNK = 1000


def _utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


#: (`INSERT … VALUES ` head, its `ON DUPLICATE KEY UPDATE …` tail, the DELETE/UPDATE of deletes).
_Statements = tuple[str, str, str]


class MySqlDialect(ConnectionDialect[pymysql.connections.Connection, _Statements]):
    name = "mysql"
    driver_error = pymysql.MySQLError
    meta_table_label = "instructure_dap__table_sync"

    def __init__(self, url: str):
        # Batches that move no bookmark load on a worker thread while the next one is decoded.
        # No second connection (lanes.py): InnoDB's next-key locks make two connections
        # upserting neighbouring keys deadlock.
        super().__init__(loads=BackgroundJob("dap-mysql-load"))
        self._params = mysql_params(url)
        self._where = f"{self._params['host']}:{self._params['port']}/{self._params['database']}"
        self._schemas = MySqlSchemaManager(self._execute, self._query)
        self._charset_checked = False
        #: Characters of SQL text per upsert statement (`connect` fits it to the server).
        self._statement_chars = STATEMENT_BYTES
        self._packet_bytes = 0

    # --- names ------------------------------------------------------------------------------

    def table_name(self, schema: str | None, table: str) -> str:
        return prefixed_name(schema, table)

    def qualified_name(self, schema: str | None, table: str) -> str:
        return quote(prefixed_name(schema, table))

    def container_name(self, schema: str | None) -> str:
        return self.database

    # --- decoding ---------------------------------------------------------------------------

    def field_type(self, column: Column, layout: TableLayout) -> Any:
        return constrained(_DECODE.get(column.type.kind, str), column.type, layout)

    def converters(self, layout: TableLayout) -> Converters:
        out: Converters = []
        for i, c in enumerate(layout.record_columns):
            kind = c.type.kind
            if kind in ("timestamp", "timestamptz"):
                out.append((i, _utc_naive))
            elif kind == "json" and c.type.nested:
                out.append((i, nested_object_text(c.nullable)))
            elif kind in ("json", "array"):
                out.append((i, compact_json_text))
            elif kind == "uuid":
                out.append((i, _uuid_bytes))
            elif kind == "decimal":
                out.append((i, decimal_in_range))
                if c.type.precision is not None:
                    out.append((i, decimal_fits(c.type)))
                    if (c.type.scale or 0) < 0:
                        out.append((i, rounded_to_scale(c.type)))
        return out

    # --- connection -------------------------------------------------------------------------

    @property
    def database(self) -> str:
        return str(self._params["database"])

    def connect(self) -> None:
        try:
            conn = pymysql.connect(**self._params)
        except pymysql.MySQLError as exc:
            raise DatabaseError(f"cannot connect to MySQL at {self._where}: "
                                f"{self._error_text(exc)}") from None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION(), @@max_allowed_packet")
                row = cur.fetchone()
                check_server_version(str(row[0]) if row else "")
                # A statement must fit the server's packet (4 MB on MySQL 5.7, as little as
                # 1 KB if so set): at most an eighth of it in characters, as a character of
                # utf8mb4 text is up to 4 bytes and a chunk may pass its size by one row.
                self._packet_bytes = int(row[1]) if row else 0
                if self._packet_bytes:
                    self._statement_chars = max(1, min(STATEMENT_BYTES, self._packet_bytes // 8))
                cur.execute(_SESSION)
            conn.commit()
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_connection(self, conn: pymysql.connections.Connection) -> None:
        with contextlib.suppress(pymysql.MySQLError):  # a dropped connection is closed anyway
            conn.rollback()
            conn.close()

    def interrupt(self) -> None:
        if self._conn is not None:
            abort_statement(self._conn)

    def _roll_back(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.MySQLError):
                self._conn.rollback()

    def _error_text(self, exc: Exception) -> str:
        args = exc.args
        text = str(args[1]) if len(args) > 1 else str(exc) or type(exc).__name__
        password = self._params.get("password")
        return text.replace(password, "***") if password else text

    def _failure_text(self, exc: Exception) -> str:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _NO_WRITE:
            return (f"the MySQL user cannot write to database {self.database!r} at "
                    f"{self._where}: {self._error_text(exc)}")
        if code == PACKET_TOO_LARGE:
            # Row chunks fit the packet (`_chunks` refuses a row that cannot); the server
            # refused anything else: a CREATE/ALTER TABLE, or the stream's table_sync row, with
            # its schema, were said to be "a row's SQL text" before.
            what = ("a row's SQL text" if isinstance(exc, RowTooLarge) else
                    "a statement (the table's DDL or its table_sync row)")
            return (f"{self._error_text(exc)}: {what} is larger than the server's "
                    f"max_allowed_packet ({self._packet_bytes} bytes); raise it on the server "
                    "(up to 1 GiB: SET GLOBAL max_allowed_packet = 1073741824)")
        return self._error_text(exc)

    def _execute(self, statement: str, params: Any = None) -> int:
        with self.conn.cursor() as cur:
            return int(cur.execute(statement, params))

    def _query(self, statement: str, params: Any = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())

    # --- DDL --------------------------------------------------------------------------------

    def _check_charset(self) -> None:
        """Refuse, before creating a table, a database whose new tables could not hold the data:
        they take its default character set (latin1 on many servers), and the load would fail
        midway, leaving a staging table behind. Runs inside the caller's transaction."""
        if self._charset_checked:
            return
        rows = self._query("SELECT @@character_set_database")
        charset = str(rows[0][0]) if rows and rows[0][0] else ""
        if charset.lower() != CHARSET:
            raise charset_error(self.database, charset or "(unknown)")
        self._charset_checked = True

    def ensure_meta_tables(self) -> None:
        def ensure() -> None:
            if not all(map(self._schemas.table_exists, (VERSION_TABLE, META_TABLE))):
                self._check_charset()
            self._schemas.ensure_meta_tables()

        self._transaction("creating the instructure_dap meta tables", ensure)

    def prepare_table(self, layout: TableLayout, *, drop_removed_columns: bool) -> None:
        table = prefixed_table_name(layout)

        def prepare() -> None:
            existing, naming = self._schemas.layout_columns(layout, table)
            if not existing:
                self._check_charset()
                self._schemas.create_table(layout)
            else:
                # A table `dap initdb` made in a latin1 database keeps working until a value
                # latin1 cannot hold arrives (for either tool): say so, but do not stop it.
                narrow = sorted(name for name, column in existing.items() if column.charset
                                and not column.is_enum and column.charset.lower() != CHARSET)
                if narrow:
                    logger.warning(
                        "Table %s has text columns in a character set that cannot hold all "
                        "DAP text (%s); convert it with ALTER TABLE %s CONVERT TO CHARACTER "
                        "SET %s COLLATE %s_bin", table, ", ".join(narrow), quote(table),
                        CHARSET, CHARSET)
                check_primary_key(layout, naming.key_as_layout(
                    layout, self._schemas.primary_key(table)))
                self._schemas.check_key_collations(table, layout, existing)
                self._schemas.evolve(layout, existing, drop_removed_columns)

        self._transaction(f"preparing table for stream '{layout.stream}'", prepare)
        self._forget_statements(layout)

    def staging_table(self, layout: TableLayout) -> str:
        return staging_name(prefixed_table_name(layout), "__dap_staging")

    def create_staging(self, layout: TableLayout) -> None:
        stage = quote(self.staging_table(layout))

        def create() -> None:
            self._execute(f"DROP TABLE IF EXISTS {stage}")
            # LIKE keeps columns kept from older schema versions, defaults, comments and the PK.
            self._execute(f"CREATE TABLE {stage} LIKE {quote(prefixed_table_name(layout))}")

        self._transaction(f"creating the snapshot staging table of '{layout.stream}'", create)

    def read_meta_rows(self) -> list[MetaRow]:
        return self._transaction(f"reading {self.meta_table_label}", self._schemas.read_meta_rows)

    # --- loading ----------------------------------------------------------------------------

    def _build_statements(self, layout: TableLayout, staging: bool) -> _Statements:
        table = quote(self.staging_table(layout) if staging else prefixed_table_name(layout))
        names = ", ".join(quote(c.name) for c in layout.columns)
        updates = [f"{quote(c.name)} = VALUES({quote(c.name)})" for c in layout.value_columns]
        if layout.key_columns and updates:
            suffix = f" ON DUPLICATE KEY UPDATE {', '.join(updates)}"
        elif layout.key_columns:  # only key columns: a duplicate changes nothing
            first = quote(layout.key_columns[0])
            suffix = f" ON DUPLICATE KEY UPDATE {first} = {first}"
        else:
            suffix = ""
        keys = ", ".join(quote(k) for k in layout.key_columns)
        delete = f"DELETE FROM {table} WHERE ({keys}) IN "
        if layout.soft_delete:
            match = " AND ".join(f"{quote(k)} = %s" for k in layout.key_columns)
            delete = (f'UPDATE {table} SET "_sdc_deleted_at" = COALESCE(%s, UTC_TIMESTAMP(6)) '
                      f"WHERE {match}")
        return f"INSERT INTO {table} ({names}) VALUES ", suffix, delete

    def _apply(self, layout: TableLayout, batch: Batch, staging: bool) -> None:
        insert, suffix, delete = self._statements_for(layout, staging)
        conn = self.conn
        with conn.cursor() as cur:
            def statements() -> Iterator[str]:
                if batch.upserts:
                    rows = self._with_batched_at(layout, batch.upserts)
                    kinds = [c.type.kind if c.source == "record" else "" for c in layout.columns]
                    escape = literal_row_of(conn, kinds)
                    # (the packet's header and command byte: 5 bytes)
                    largest = self._packet_bytes - len((insert + suffix).encode()) - 5
                    for values in value_lists(escape, rows, self._statement_chars,
                                          largest if self._packet_bytes else None):
                        yield insert + values + suffix
                if batch.deletes and not layout.soft_delete:
                    yield from self._delete_statements(layout, batch.deletes, delete)

            execute_overlapped(cur.execute, statements(), lambda: abort_statement(conn))
            if batch.deletes and layout.soft_delete:
                self._soft_delete(cur, layout, batch.deletes, delete)

    @staticmethod
    def _with_batched_at(layout: TableLayout, rows: Sequence[tuple]) -> Sequence[tuple]:
        if all(c.source == "record" for c in layout.columns):
            return rows
        # Only `_sdc_batched_at` is not from the record; it is the last column.
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return [(*row, now) for row in rows]

    @staticmethod
    def _key_values(layout: TableLayout, rows: Sequence[tuple]) -> list[tuple]:
        key_idx = [i for i, c in enumerate(layout.record_columns)
                   if c.name in layout.key_columns]
        return [tuple(row[i] for i in key_idx) for row in rows]

    def _delete_statements(self, layout: TableLayout, rows: Sequence[tuple],
                           delete: str) -> Iterator[str]:
        keys = self._key_values(layout, rows)
        escape = self.conn.escape
        # Sized to the packet as the upserts are: 1000 long text keys passed a small one.
        largest = self._packet_bytes - len(delete.encode()) - 2 - 5 if self._packet_bytes else None
        for start in range(0, len(keys), DELETE_CHUNK):
            chunk = keys[start:start + DELETE_CHUNK]
            for values in value_lists(escape, chunk, self._statement_chars, largest):
                yield delete + "(" + values + ")"

    def _soft_delete(self, cur: Any, layout: TableLayout, rows: Sequence[tuple],
                     delete: str) -> None:
        keys = self._key_values(layout, rows)
        deleted_at = [i for i, c in enumerate(layout.record_columns) if c.name == DELETED_AT]
        cur.executemany(delete, [(row[deleted_at[0]], *key)
                                 for row, key in zip(rows, keys, strict=True)])

    def _upsert_meta(self, meta: MetaRow) -> None:
        self._schemas.upsert_meta_row(meta)

    def table_exists(self, layout: TableLayout) -> bool:
        return self._transaction(
            f"looking up the table of stream '{layout.stream}'",
            lambda: self._schemas.table_exists(prefixed_table_name(layout)))

    def live_table_has_rows(self, layout: TableLayout) -> bool:
        live = quote(prefixed_table_name(layout))
        return self._transaction(f"counting rows of stream '{layout.stream}'",
                                 lambda: bool(self._query(f"SELECT 1 FROM {live} LIMIT 1")))

    def swap_staging(self, layout: TableLayout, batch: Batch, meta: MetaRow | None) -> None:
        # Not one transaction as on the other databases: MySQL DDL commits implicitly. Each step
        # commits on its own, the meta row right after the rename (see the module docstring).
        live, stage = prefixed_table_name(layout), self.staging_table(layout)
        old = staging_name(live, "__dap_old")
        what = f"replacing table of stream '{layout.stream}' by its snapshot"
        if len(batch) or layout.soft_delete:
            self._transaction(what, lambda: self._load_last(layout, batch))

        def rename() -> None:
            self._execute(f"DROP TABLE IF EXISTS {quote(old)}")
            self._execute(f"RENAME TABLE {quote(live)} TO {quote(old)}, "
                          f"{quote(stage)} TO {quote(live)}")

        self._transaction(what, rename)
        if meta is not None:
            self._transaction(what, lambda: self._upsert_meta(meta))
        self._transaction(what, lambda: self._execute(f"DROP TABLE IF EXISTS {quote(old)}"))
        logger.info("Snapshot of '%s' swapped in", layout.stream)
        self._forget_statements(layout)

    def _load_last(self, layout: TableLayout, batch: Batch) -> None:
        """The snapshot's last batch into staging and, with `hard_delete: false`, the live rows
        the snapshot lacks, marked deleted (`base.keep_deleted_rows_sql`): one transaction
        before the rename (DML only). A crash after it leaves the live table as it was."""
        if len(batch):
            self._apply(layout, batch, True)
        if layout.soft_delete:
            live, stage = prefixed_table_name(layout), self.staging_table(layout)
            self._execute(keep_deleted_rows_sql(
                layout, quote(live), quote(stage), self._schemas.existing_columns(live),
                self._schemas.existing_columns(stage), "UTC_TIMESTAMP(6)"))

    # --- administration ---------------------------------------------------------------------

    def count_rows(self, schema: str | None, table: str) -> int | None:
        name = prefixed_name(schema, table)

        def count() -> int | None:
            if not self._schemas.table_exists(name):
                return None
            return int(self._query(f"SELECT COUNT(*) FROM {quote(name)}")[0][0])

        return self._read(f"counting rows of {quote(name)}", count)

    def drop_replica(self, meta: MetaRow) -> None:
        # MySQL DDL commits implicitly: the meta row's DELETE commits first, on its own.
        what = f"dropping {meta.source_namespace}.{meta.source_table}"
        self._transaction(what, lambda: self._schemas.delete_meta_row(meta))
        table = quote(prefixed_name(meta.target_schema, meta.target_table))
        self._transaction(what, lambda: self._execute(f"DROP TABLE IF EXISTS {table}"))


def _uuid_bytes(value: uuid.UUID) -> bytes:
    return value.bytes
