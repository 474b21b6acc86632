"""PostgreSQL via psycopg 3: official DAP layout, binary COPY + set-based upsert/delete.

Per batch, in one transaction: binary COPY of the deduplicated rows into a temp table (typed for
the driver: enums and JSON travel as text/bytes and are cast on the server), one
`INSERT … SELECT … ON CONFLICT DO UPDATE`, one `DELETE … USING`, and the meta-row update.
Snapshot batches whose columns all take the binary values as they are skip the temp table: they
are COPYed straight into the staging table (the server-side INSERT … SELECT cost more than COPY).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from target_dap_sql.dialects import pg_codec
from target_dap_sql.dialects.background import BackgroundJob
from target_dap_sql.dialects.base import STAGING_SUFFIX, Batch, logger, quote, shortened
from target_dap_sql.dialects.connection import ConnectionDialect
from target_dap_sql.dialects.pg_codec import COPY_HEADER, COPY_TRAILER, PgRowCodec, copy_type
from target_dap_sql.dialects.pg_schema import PgSchemaManager
from target_dap_sql.dialects.pg_types import MAX_IDENTIFIER_BYTES, pg_enum_type, pg_name
from target_dap_sql.dialects.urls import url_secrets
from target_dap_sql.errors import ConfigError, DatabaseError
from target_dap_sql.layout import DELETED_AT, Column, TableLayout
from target_dap_sql.meta import MetaRow

#: Kinds whose binary COPY value (above) the column's own type reads unchanged: a snapshot batch of
#: only these goes straight into the staging table, with no temp table and no INSERT … SELECT.
#: (An aware datetime is sent as timestamptz; with the session in UTC that is the same 8 bytes a
#: `timestamp` column stores. Enums and varchars read the text bytes as their input.)
_DIRECT_KINDS = frozenset({
    "smallint", "integer", "bigint", "real", "double", "decimal", "numeric", "boolean",
    "text", "varchar", "char", "enum", "timestamp", "date", "uuid",
})


def pg_conninfo(url: str) -> str:
    """Turn a SQLAlchemy-style URL (`postgresql+psycopg://…`) into a libpq URI."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"not a PostgreSQL URL (scheme {parts.scheme!r})")
    query = parts.query.replace("ssl=", "sslmode=") if "sslmode=" not in parts.query else (
        parts.query)
    return urlunsplit(("postgresql", parts.netloc, parts.path, query, ""))


def redact(text: str, url: str) -> str:
    """``text`` without the URL's password, however the URL was (mis)written."""
    try:
        parsed = urlsplit(url).password
    except ValueError:
        parsed = None
    for secret in sorted({p for p in (parsed, *url_secrets(url)) if p}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


#: (COPY into the load table, INSERT … SELECT, DELETE … USING, the COPY's column types) of a table.
_Statements = tuple[sql.SQL, sql.SQL, sql.SQL, list[str]]


class PostgresDialect(ConnectionDialect[psycopg.Connection, _Statements]):
    name = "postgresql"
    stores_nul_characters = False
    driver_error = psycopg.Error
    meta_table_label = "instructure_dap.table_sync"

    def __init__(self, url: str):
        super().__init__(loads=BackgroundJob("dap-pg-load"))
        self._url = url
        try:
            self._conninfo = pg_conninfo(url)
            parts = urlsplit(url)
            self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        except ValueError:  # e.g. a non-numeric port; its text may quote part of the password
            raise ConfigError("sqlalchemy_url is not a valid PostgreSQL URL (host, port or "
                              "database cannot be read from it)") from None
        self.schemas = PgSchemaManager(lambda: self.conn, self._run_or_roll_back)
        self._temp_tables: dict[int, str] = {}
        #: Per layout in a snapshot: (COPY into staging, its types), or None to use the temp table.
        self._direct_copy: dict[int, tuple[sql.SQL, list[str]] | None] = {}
        self._utf8 = False

    # --- names ------------------------------------------------------------------------------

    def table_name(self, schema: str | None, table: str) -> str:
        return table

    def qualified_name(self, schema: str | None, table: str) -> str:
        return f"{quote(self.container_name(schema))}.{quote(table)}"

    def container_name(self, schema: str | None) -> str:
        return schema or "public"

    def staging_table(self, layout: TableLayout) -> str:
        # PostgreSQL cuts identifiers at 63 bytes: a long table's staging name would be cut
        # back to the live table's own name
        return shortened(layout.table + STAGING_SUFFIX, MAX_IDENTIFIER_BYTES, "__stg")

    def object_names(self, layout: TableLayout) -> set[str]:
        schema = pg_name(layout.schema or "public")
        names = {self.table_object_name(layout.schema, layout.table)}
        if layout.enum_native:
            names |= {f"{schema}.{pg_enum_type(layout, c)}" for c in layout.columns
                      if "enum" in (c.type.kind, c.type.element and c.type.element.kind)}
        return names

    def table_object_name(self, schema: str | None, table: str) -> str:
        return f"{pg_name(schema or 'public')}.{pg_name(table)}"

    # --- decoding ---------------------------------------------------------------------------

    def field_type(self, column: Column, layout: TableLayout) -> Any:
        return pg_codec.field_type(column, layout)

    def converters(self, layout: TableLayout) -> pg_codec.Converters:
        return pg_codec.converters(layout)

    def row_codec(self, layout: TableLayout) -> PgRowCodec | None:
        # The codec dumps text as UTF-8, what the connection sends only when its client
        # encoding is UTF-8 (the default for a UTF-8 database).
        return PgRowCodec(layout) if self._utf8 else None

    # --- connection -------------------------------------------------------------------------

    def connect(self) -> None:
        self._settle_loads()
        try:
            self._conn = psycopg.connect(self._conninfo, autocommit=False, connect_timeout=15,
                                         application_name="target-dap-sql")
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL at {self._where}: "
                                f"{self._failure_text(exc)}") from None
        self._conn.execute("SET TIME ZONE 'UTC'")
        self._conn.commit()
        self._utf8 = self._conn.info.encoding == "utf-8"

    def _close_connection(self, conn: psycopg.Connection) -> None:
        conn.rollback()
        conn.close()

    def _roll_back(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.rollback()

    def _new_lane(self) -> PostgresDialect:
        return PostgresDialect(self._url)

    def _without_durable_commit(self) -> None:
        self.conn.execute("SET LOCAL synchronous_commit TO OFF")

    def _failure_text(self, exc: Exception) -> str:
        # The first line only: psycopg adds DETAIL/HINT lines that may quote row values.
        text = str(exc).strip()
        return redact(text.splitlines()[0] if text else type(exc).__name__, self._url)

    # --- DDL --------------------------------------------------------------------------------

    def ensure_meta_tables(self) -> None:
        self._settle_loads()
        self.schemas.ensure_meta_tables()

    def prepare_table(self, layout: TableLayout, *, drop_removed_columns: bool) -> None:
        self._settle_loads()
        self.schemas.prepare_table(layout, layout.table, drop_removed_columns)
        self._forget_prepared(layout)

    def create_staging(self, layout: TableLayout) -> None:
        self._settle_loads()
        staging = self.staging_table(layout)
        self.schemas.create_staging(layout, staging)
        direct = self._run_or_roll_back(f"inspecting the staging table of '{layout.stream}'",
                                        self.schemas.accepts_binary_copy, layout, staging,
                                        _DIRECT_KINDS)
        self.conn.commit()
        self._direct_copy[layout.uid] = None
        if direct:
            table = f"{quote(layout.schema or 'public')}.{quote(staging)}"
            columns = ", ".join(quote(c.name) for c in layout.record_columns)
            self._direct_copy[layout.uid] = (
                sql.SQL(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"),  # type: ignore[arg-type]
                [copy_type(c.type) for c in layout.record_columns],
            )

    def read_meta_rows(self) -> list[MetaRow]:
        self._settle_loads()
        return self.schemas.read_meta_rows()

    # --- loading ----------------------------------------------------------------------------

    def _temp_table(self, layout: TableLayout) -> str:
        name = self._temp_tables.get(layout.uid)
        if name is None:
            name = f"_dap_load_{len(self._temp_tables) + 1}"
            cols = [f"{quote(c.name)} {copy_type(c.type)}" for c in layout.record_columns]
            cols.append('"_dap_deleted" bool')
            self._run_or_roll_back(
                f"creating the load table of {layout.stream}", self.conn.execute,
                f"CREATE TEMP TABLE {name} ({', '.join(cols)}) ON COMMIT DELETE ROWS")
            self._temp_tables[layout.uid] = name
        return name

    def _load_expression(self, column: Column, layout: TableLayout) -> str:
        ref, kind = f"s.{quote(column.name)}", column.type.kind
        if column.source == "batched_at":
            return "now()"
        json_value = f"NULLIF(convert_from({ref}, 'UTF8')::jsonb, 'null'::jsonb)"
        if kind == "json" and column.type.nested:
            # base.nested_object_text's rule on the server: no null members, {} is NULL
            stripped = f"jsonb_strip_nulls({json_value})"
            return f"NULLIF({stripped}, '{{}}'::jsonb)" if column.nullable else stripped
        if kind == "json":
            return json_value
        target = self.schemas.column_type_ddl(column, layout)
        if kind == "array":
            # JSON array → native array, element by element (order kept), [] → '{}'.
            element_type = target[:-2]
            return (f"(SELECT COALESCE(array_agg(e.v::{element_type} ORDER BY e.n), '{{}}') "
                    f"FROM jsonb_array_elements_text({json_value}) WITH ORDINALITY e(v, n) "
                    f"HAVING {ref} IS NOT NULL AND {json_value} IS NOT NULL)")
        if kind in ("enum", "timestamp", "timestamptz", "time", "interval", "inet"):
            return f"{ref}::{target}"
        return ref

    def _build_statements(self, layout: TableLayout, staging: bool) -> _Statements:
        temp = self._temp_table(layout)
        table = (f"{quote(layout.schema or 'public')}."
                 f"{quote(self.staging_table(layout) if staging else layout.table)}")
        names = [quote(c.name) for c in layout.columns]
        exprs = [self._load_expression(c, layout) for c in layout.columns]
        copy_cols = ", ".join([quote(c.name) for c in layout.record_columns] + ['"_dap_deleted"'])
        copy = f"COPY {temp} ({copy_cols}) FROM STDIN (FORMAT BINARY)"
        insert = (f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(exprs)} "
                  f"FROM {temp} s WHERE NOT s._dap_deleted")
        keys = [quote(k) for k in layout.key_columns]
        if keys:
            updates = [f"{quote(c.name)} = EXCLUDED.{quote(c.name)}"
                       for c in layout.value_columns]
            insert += f" ON CONFLICT ({', '.join(keys)}) DO " + (
                f"UPDATE SET {', '.join(updates)}" if updates else "NOTHING")
        match = " AND ".join(f"t.{k} = s.{k}" for k in keys) or "false"
        if layout.soft_delete:
            deleted_at = self._load_expression(layout.column(DELETED_AT), layout)
            delete = (f'UPDATE {table} t SET "_sdc_deleted_at" = COALESCE({deleted_at}, now()) '
                      f"FROM {temp} s WHERE s._dap_deleted AND {match}")
        else:
            delete = f"DELETE FROM {table} t USING {temp} s WHERE s._dap_deleted AND {match}"
        types = [copy_type(c.type) for c in layout.record_columns] + ["bool"]
        return sql.SQL(copy), sql.SQL(insert), sql.SQL(delete), types  # type: ignore[arg-type]

    def _apply(self, layout: TableLayout, batch: Batch, staging: bool) -> None:
        upserts = batch.upserts
        if staging and upserts and self._copy_into_staging(layout, upserts, batch.encoded):
            upserts = ()
        if not upserts and not batch.deletes:
            return
        copy_sql, insert_sql, delete_sql, types = self._statements_for(layout, staging)
        cur = self.conn.cursor()
        with cur.copy(copy_sql) as copy:
            if batch.encoded:  # binary tuples a row codec made (pg_codec.py)
                width = len(layout.record_columns)
                copy.write(b"".join([COPY_HEADER,
                                     *pg_codec.with_flags(upserts, width, deleted=False),
                                     *pg_codec.with_flags(batch.deletes, width, deleted=True),
                                     COPY_TRAILER]))
            else:
                copy.set_types(types)
                write = copy.write_row
                for row in upserts:
                    write((*row, False))
                for row in batch.deletes:
                    write((*row, True))
        if upserts:
            cur.execute(insert_sql)
        if batch.deletes:
            # The load table has no statistics, so the planner merge-joins it with the whole
            # primary key index of the table (~40 ms per 10k-row slice on 300k rows, growing with
            # the table); looking each deleted key up is ~5x faster and does not grow.
            cur.execute("SET LOCAL enable_mergejoin TO off")
            cur.execute("SET LOCAL enable_hashjoin TO off")
            cur.execute(delete_sql)

    def _copy_into_staging(self, layout: TableLayout, rows: Sequence[Any], encoded: bool) -> bool:
        """COPY a snapshot batch straight into staging; False if it must merge instead.

        A snapshot's keys are unique, so plain COPY is right and skips the temp table and the
        server-side INSERT … SELECT. Should a key come again in a later batch anyway, the COPY
        is undone to its savepoint and this batch (and the rest of the snapshot) merges by key.
        """
        direct = self._direct_copy.get(layout.uid)
        if direct is None:
            return False
        copy_sql, types = direct
        cur = self.conn.cursor()
        cur.execute("SAVEPOINT dap_direct_copy")
        try:
            with cur.copy(copy_sql) as copy:
                if encoded:
                    copy.write(b"".join([COPY_HEADER, *rows, COPY_TRAILER]))
                else:
                    copy.set_types(types)
                    write = copy.write_row
                    for row in rows:
                        write(row)
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT dap_direct_copy")
            self._direct_copy[layout.uid] = None
            logger.warning("Snapshot of '%s' repeats keys across batches; merging by key from "
                           "here on", layout.stream)
            return False
        cur.execute("RELEASE SAVEPOINT dap_direct_copy")
        return True

    def _upsert_meta(self, meta: MetaRow) -> None:
        self.schemas.upsert_meta_row(meta)

    def table_exists(self, layout: TableLayout) -> bool:
        live = self.schemas.qualified(layout, layout.table)
        return self._transaction(
            f"looking up the table of stream '{layout.stream}'",
            lambda: self.conn.execute("SELECT to_regclass(%s)", (live,)).fetchone()[0] is not None)

    def live_table_has_rows(self, layout: TableLayout) -> bool:
        live = self.schemas.qualified(layout, layout.table)
        return self._transaction(
            f"counting rows of stream '{layout.stream}'",
            lambda: self.conn.execute(f"SELECT 1 FROM {live} LIMIT 1").fetchone() is not None)

    def swap_staging(self, layout: TableLayout, batch: Batch, meta: MetaRow | None) -> None:
        self._swap_in_one_transaction(
            layout, batch, meta, lambda: self.schemas.swap(layout, self.staging_table(layout)))
        self._forget_prepared(layout)

    def _forget_prepared(self, layout: TableLayout) -> None:
        """Drop the statements built for a table whose shape may have changed."""
        self._forget_statements(layout)
        self._direct_copy.pop(layout.uid, None)

    # --- administration ---------------------------------------------------------------------

    def count_rows(self, schema: str | None, table: str) -> int | None:
        return self._read(f"counting rows of {self.qualified_name(schema, table)}",
                          lambda: self.schemas.count_rows(self.qualified_name(schema, table)))

    def drop_replica(self, meta: MetaRow) -> None:
        # One transaction: PostgreSQL DDL is transactional, so a failure changes nothing.
        self._transaction(f"dropping {meta.source_namespace}.{meta.source_table}",
                          lambda: self.schemas.drop(meta, self.container_name(meta.target_schema)))
