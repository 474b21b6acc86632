"""PostgreSQL DDL: official table layout, enum types, meta tables, evolution and snapshot swap.

The DDL mirrors what the official replicator creates (DAP_PROTOCOL.md §3), so the official `dap`
CLI can `syncdb`/`listdb`/`dropdb` a database we created without changing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from target_dap_sql import meta as meta_tables
from target_dap_sql.dialects.base import (
    META_COLUMNS,
    check_primary_key,
    evolution_clauses,
    logger,
    meta_row_sql,
    primary_key_clause,
    quote,
    shortened,
    widened,
)
from target_dap_sql.layout import Column, SqlType, TableLayout
from target_dap_sql.meta import DATABASE_VERSION, META_NAMESPACE, MetaRow

_DDL_NAMES = {
    "double": "double precision", "json": "jsonb", "timestamptz": "timestamptz",
}
_CATALOG_NAMES = {
    "double": "double precision", "json": "jsonb", "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone", "time": "time without time zone",
}
_META_TABLE = f"{quote(META_NAMESPACE)}.{quote('table_sync')}"
_META_UPDATE, _META_INSERT = meta_row_sql(_META_TABLE, "%s",
                                          '"source_namespace" = %s AND "source_table" = %s')


#: PostgreSQL's NAMEDATALEN - 1: longer identifiers are silently cut to this many bytes.
MAX_IDENTIFIER_BYTES = 63


def pg_enum_type(layout: TableLayout, column: Column) -> str:
    """The official `<table>__<column>`, shortened uniquely where PostgreSQL would cut it (a cut
    name could be another column's type, or the table's own row type)."""
    return shortened(layout.enum_type_name(column), MAX_IDENTIFIER_BYTES, "__enum")


class ExistingColumn(NamedTuple):
    catalog_type: str  # format_type() output
    not_null: bool
    is_enum: bool
    #: An array column whose pg_attribute.attndims is 0 (made by `CREATE TABLE … (LIKE …)`).
    flat_array: bool = False


def _catalog_name(sql_type: SqlType) -> str:
    if sql_type.kind == "array":
        assert sql_type.element is not None
        return _catalog_name(sql_type.element) + "[]"
    if sql_type.kind == "varchar":
        return f"character varying({sql_type.length})"
    if sql_type.kind == "char":
        return f"character({sql_type.length})"
    if sql_type.kind == "decimal":
        return f"numeric({sql_type.precision},{sql_type.scale})"
    return _CATALOG_NAMES.get(sql_type.kind, sql_type.kind)


def _parse_catalog(name: str) -> SqlType:
    """The neutral type of an existing column (only as precise as widening needs)."""
    if m := re.fullmatch(r"character varying\((\d+)\)", name):
        return SqlType("varchar", length=int(m.group(1)))
    if m := re.fullmatch(r"character\((\d+)\)", name):
        return SqlType("char", length=int(m.group(1)))
    simple = {"smallint": "smallint", "integer": "integer", "bigint": "bigint", "real": "real",
              "double precision": "double", "text": "text", "character varying": "text"}
    return SqlType(simple.get(name, "other:" + name))


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"

#: Advisory lock key for DDL by target-dap-sql ("dapsql" in ASCII; any constant works).
DDL_LOCK_KEY = 0x646170_73716C


class PgSchemaManager:
    """DDL and meta-table statements on the dialect's connection (opened on first use).

    `run(what, fn, *args)` runs fn, rolling back and raising one DatabaseError on failure.
    """

    def __init__(self, connection: Callable[[], psycopg.Connection], run: Callable[..., Any]):
        self._connection = connection
        self._run = run

    @property
    def conn(self) -> psycopg.Connection:
        return self._connection()

    def _exec(self, statement: str | sql.Composable, params: Any = None) -> psycopg.Cursor:
        return self.conn.execute(statement, params)  # type: ignore[arg-type]

    @staticmethod
    def qualified(layout: TableLayout, table: str) -> str:
        return f"{quote(layout.schema or 'public')}.{quote(table)}"

    def column_type_ddl(self, column: Column, layout: TableLayout) -> str:
        return self._type_ddl(column.type, column, layout)

    def _type_ddl(self, sql_type: SqlType, column: Column, layout: TableLayout) -> str:
        kind = sql_type.kind
        if kind == "array":
            assert sql_type.element is not None
            return self._type_ddl(sql_type.element, column, layout) + "[]"
        if kind == "enum":
            if not layout.enum_native:
                return "text"
            return f"{quote(layout.schema or 'public')}.{quote(pg_enum_type(layout, column))}"
        if kind in ("varchar", "char"):
            return f"{kind}({sql_type.length})"
        if kind == "decimal":
            return f"decimal({sql_type.precision}, {sql_type.scale})"
        return _DDL_NAMES.get(kind, kind)

    # --- meta tables ------------------------------------------------------------------------

    def ensure_meta_tables(self) -> None:
        self._run("creating the instructure_dap meta tables", self._ensure_meta_tables)

    def _lock_ddl(self) -> None:
        """Serialise our DDL across concurrent targets (parallel pipelines into one database).

        `CREATE ... IF NOT EXISTS` and our check-then-create are not safe against a concurrent
        creator in PostgreSQL (unique violation in pg_namespace/pg_type); the transaction-scoped
        advisory lock is released by the commit that ends each DDL step.
        """
        self._exec("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))

    def _ensure_meta_tables(self) -> None:
        self._lock_ddl()
        exists = self._exec("SELECT to_regclass(%s), to_regclass(%s)",
                            (f"{META_NAMESPACE}.database_version", _META_TABLE)).fetchone()
        assert exists is not None
        self._ensure_schema(META_NAMESPACE)
        if exists[0] is None:
            self._exec(
                f'CREATE TABLE {quote(META_NAMESPACE)}."database_version" ('
                '"version" bigint GENERATED BY DEFAULT AS IDENTITY, '
                'CONSTRAINT "pk_database_version" PRIMARY KEY ("version"))')
            self._comment("TABLE", f'{quote(META_NAMESPACE)}."database_version"',
                          meta_tables.DATABASE_VERSION_COMMENT)
            self._comment("COLUMN", f'{quote(META_NAMESPACE)}."database_version"."version"',
                          meta_tables.DATABASE_VERSION_COLUMN_COMMENT)
        if exists[1] is None:
            self._exec(
                f"CREATE TABLE {_META_TABLE} ("
                '"id" bigint GENERATED BY DEFAULT AS IDENTITY, '
                '"source_namespace" varchar(64) NOT NULL, "source_table" varchar(64) NOT NULL, '
                '"timestamp" timestamp NOT NULL, "schema_version" bigint NOT NULL, '
                '"target_schema" varchar(64), "target_table" varchar(64) NOT NULL, '
                '"schema_description_format" varchar(64) NOT NULL, '
                '"schema_description" text NOT NULL, '
                'CONSTRAINT "pk_table_sync" PRIMARY KEY ("id"))')
            self._comment("TABLE", _META_TABLE, meta_tables.TABLE_SYNC_COMMENT)
            for column, text in meta_tables.TABLE_SYNC_COLUMN_COMMENTS.items():
                self._comment("COLUMN", f"{_META_TABLE}.{quote(column)}", text)
        # Without version 1 the official client truncates table_sync on its first run.
        self._exec(f'INSERT INTO {quote(META_NAMESPACE)}."database_version" ("version") '
                   'VALUES (%s) ON CONFLICT ("version") DO NOTHING', (DATABASE_VERSION,))
        self.conn.commit()

    def _ensure_schema(self, name: str) -> None:
        """Create a schema that is missing. Checked first (under the DDL lock), not `CREATE
        SCHEMA IF NOT EXISTS`: that needs the CREATE privilege on the database even when the
        schema exists, and a run whose schema did not change should issue no DDL at all."""
        found = self._exec("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
        if found is None:
            self._exec(f"CREATE SCHEMA {quote(name)}")

    def _comment(self, kind: str, target: str, text: str | None) -> None:
        self._exec(sql.SQL(f"COMMENT ON {kind} {target} IS {{}}").format(sql.Literal(text)))

    def upsert_meta_row(self, meta: MetaRow) -> None:
        values = [getattr(meta, c) for c in META_COLUMNS]
        cur = self._exec(_META_UPDATE, (*values, meta.source_namespace, meta.source_table))
        if cur.rowcount == 0:
            self._exec(_META_INSERT, values)

    def read_meta_rows(self) -> list[MetaRow]:
        def read() -> list[MetaRow]:
            row = self._exec("SELECT to_regclass(%s)", (_META_TABLE,)).fetchone()
            if row is None or row[0] is None:
                return []
            rows = self._exec(f"SELECT {', '.join(map(quote, META_COLUMNS))} FROM "
                              f"{_META_TABLE} ORDER BY id").fetchall()
            self.conn.commit()
            return [MetaRow(**dict(zip(META_COLUMNS, r, strict=True))) for r in rows]

        return self._run("reading instructure_dap.table_sync", read)

    # --- tables -----------------------------------------------------------------------------

    def _existing_columns(self, qualified: str) -> dict[str, ExistingColumn]:
        rows = self._exec(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "COALESCE(et.typtype, t.typtype) = 'e', t.typcategory = 'A' AND a.attndims = 0 "
            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum", (qualified,)).fetchall()
        return {r[0]: ExistingColumn(r[1], r[2], r[3], r[4]) for r in rows}

    def _restore_array_dimensions(self, qualified: str,
                                  existing: dict[str, ExistingColumn]) -> None:
        """Give array columns their dimension back (attndims 1, as `dap initdb` creates them).

        `CREATE TABLE … (LIKE …)` copies array types but not attndims, and the official client
        reads a 0 as "not an array" and rewrites the whole table with ALTER … SET DATA TYPE on its
        next syncdb. Re-declaring the same type without USING changes only the catalog (no
        rewrite, same relfilenode), so this is cheap on any table size.
        """
        flat = [name for name, column in existing.items() if column.flat_array]
        if not flat:
            return
        clauses = [f"ALTER COLUMN {quote(name)} SET DATA TYPE {existing[name].catalog_type}"
                   for name in flat]
        logger.info("Restoring the array dimension of %s: %s", qualified, ", ".join(flat))
        self._exec("SAVEPOINT dap_array_dims")
        try:
            self._exec(f"ALTER TABLE {qualified} {', '.join(clauses)}")
        except psycopg.errors.FeatureNotSupported as exc:
            # A view on the column forbids even this catalog-only change; the data is fine, only
            # `dap syncdb` will want to rewrite the table. Not worth failing the run for.
            self._exec("ROLLBACK TO SAVEPOINT dap_array_dims")
            logger.warning("Cannot restore the array dimension of %s (%s); `dap syncdb` would "
                           "rewrite the table", qualified, str(exc).splitlines()[0])
        self._exec("RELEASE SAVEPOINT dap_array_dims")

    def _primary_key(self, qualified: str) -> list[str]:
        rows = self._exec(
            "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) "
            "WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = k.attnum WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
            "ORDER BY k.n", (qualified,)).fetchall()
        return [r[0] for r in rows]

    def _ensure_enum(self, layout: TableLayout, column: Column) -> None:
        sql_type = column.type.element if column.type.kind == "array" else column.type
        if sql_type is None or sql_type.kind != "enum" or not layout.enum_native:
            return
        name = f"{quote(layout.schema or 'public')}.{quote(pg_enum_type(layout, column))}"
        existing = [r[0] for r in self._exec(
            "SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = to_regtype(%s) "
            "ORDER BY e.enumsortorder", (name,)).fetchall()]
        if not existing:
            labels = ", ".join(_literal(v) for v in sql_type.labels)
            self._exec(f"CREATE TYPE {name} AS ENUM ({labels})")
            return
        for label in sql_type.labels:
            if label not in existing:
                logger.info("Adding value %r to enum type %s", label, name)
                self._exec(f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS {_literal(label)}")

    def prepare_table(self, layout: TableLayout, table: str, drop_removed: bool) -> None:
        def run() -> None:
            self._lock_ddl()
            self._ensure_schema(layout.schema or "public")
            for column in layout.columns:
                self._ensure_enum(layout, column)
            qualified = self.qualified(layout, table)
            existing = self._existing_columns(qualified)
            if not existing:
                self._create_table(layout, table)
            else:
                check_primary_key(layout, self._primary_key(qualified))
                self._restore_array_dimensions(qualified, existing)
                self._evolve(layout, qualified, existing, drop_removed)
            self.conn.commit()

        self._run(f"preparing table for stream '{layout.stream}'", run)

    def _create_table(self, layout: TableLayout, table: str) -> None:
        qualified = self.qualified(layout, table)
        parts = []
        for c in layout.columns:
            ddl = f"{quote(c.name)} {self.column_type_ddl(c, layout)}"
            if not c.nullable:
                ddl += " NOT NULL"
            if c.default is not None:
                ddl += f" DEFAULT {_literal(c.default)}"
            parts.append(ddl)
        if pk := primary_key_clause(layout, table):
            parts.append(pk)
        self._exec(f"CREATE TABLE {qualified} ({', '.join(parts)})")
        if layout.dap and layout.dap.table_comment:
            self._comment("TABLE", qualified, layout.dap.table_comment)
        for c in layout.columns:
            if c.comment:
                self._comment("COLUMN", f"{qualified}.{quote(c.name)}", c.comment)
        logger.info("Created table %s", qualified)

    def _evolve(self, layout: TableLayout, qualified: str, existing: dict[str, ExistingColumn],
                drop_removed: bool) -> None:
        changes = evolution_clauses(
            layout, existing, drop_removed,
            add=lambda c: f"ADD COLUMN {quote(c.name)} {self.column_type_ddl(c, layout)}",
            alter=lambda c, current: self._alter_clauses(layout, qualified, c, current),
            relax=lambda name, _: f"ALTER COLUMN {quote(name)} DROP NOT NULL")
        if changes:
            logger.info("Evolving %s: %s", qualified, "; ".join(changes))
            self._exec(f"ALTER TABLE {qualified} {', '.join(changes)}")
        for c in layout.columns:
            if c.comment and c.name not in existing:
                self._comment("COLUMN", f"{qualified}.{quote(c.name)}", c.comment)

    def _alter_clauses(self, layout: TableLayout, qualified: str, c: Column,
                       current: ExistingColumn) -> list[str]:
        """Widen the type of a kept column and drop a NOT NULL the schema no longer asks for."""
        clauses = []
        ddl_type = self.column_type_ddl(c, layout)
        is_enum = c.type.kind == "enum" or (c.type.element and c.type.element.kind == "enum")
        if is_enum and layout.enum_native and current.is_enum:
            pass
        elif _catalog_name(c.type) != current.catalog_type and not current.is_enum:
            new = widened(_parse_catalog(current.catalog_type), c.type)
            if new is not None:
                clauses.append(f"ALTER COLUMN {quote(c.name)} SET DATA TYPE {ddl_type} "
                               f"USING {quote(c.name)}::{ddl_type}")
            else:
                logger.warning("Column %s.%s stays %s (schema says %s): not a widening",
                               qualified, c.name, current.catalog_type, ddl_type)
        if current.not_null and c.nullable and c.name not in layout.key_columns:
            clauses.append(f"ALTER COLUMN {quote(c.name)} DROP NOT NULL")
        return clauses

    # --- snapshots --------------------------------------------------------------------------

    def create_staging(self, layout: TableLayout, staging: str) -> None:
        live, stage = self.qualified(layout, layout.table), self.qualified(layout, staging)

        def run() -> None:
            self._exec(f"DROP TABLE IF EXISTS {stage}")
            # LIKE keeps columns kept from older schema versions, defaults, comments and the PK.
            self._exec(f"CREATE TABLE {stage} (LIKE {live} INCLUDING ALL)")
            self._restore_array_dimensions(stage, self._existing_columns(stage))
            self.conn.commit()

        self._run(f"creating the snapshot staging table of '{layout.stream}'", run)

    def accepts_binary_copy(self, layout: TableLayout, table: str, kinds: frozenset[str]) -> bool:
        """Whether the table's columns take the loader's binary COPY values as they are.

        True when every record column exists with exactly the type the layout asks for (or is an
        enum where the layout has one) and is of one of ``kinds``, and nothing is computed on the
        server (``_sdc_batched_at``). A column kept from an older schema with another type, or a
        kind the server must cast from text, needs the temp table and INSERT … SELECT instead.
        """
        if any(c.source != "record" for c in layout.columns):
            return False
        existing = self._existing_columns(self.qualified(layout, table))
        for column in layout.record_columns:
            found = existing.get(column.name)
            if found is None or column.type.kind not in kinds:
                return False
            if column.type.kind == "enum":
                if not (found.is_enum if layout.enum_native else found.catalog_type == "text"):
                    return False
            elif found.catalog_type != _catalog_name(column.type):
                return False
        return True

    def swap(self, layout: TableLayout, staging: str) -> None:
        """Replace live by staging inside the caller's transaction (the caller commits)."""
        live, stage = self.qualified(layout, layout.table), self.qualified(layout, staging)
        grants = self._exec(
            "SELECT a.grantee::regrole::text, a.privilege_type FROM pg_class c, "
            "aclexplode(c.relacl) a WHERE c.oid = to_regclass(%s) AND a.grantee <> 0 "
            "AND a.grantee <> c.relowner", (live,)).fetchall()
        self._exec("SAVEPOINT dap_swap")
        try:
            self._exec(f"DROP TABLE {live}")
        except psycopg.errors.DependentObjectsStillExist:
            # Views on the table: keep the table object and replace its rows instead.
            self._exec("ROLLBACK TO SAVEPOINT dap_swap")
            logger.info("%s has dependent views; replacing its rows instead of renaming", live)
            self._exec(f"TRUNCATE {live}")
            self._exec(f"INSERT INTO {live} SELECT * FROM {stage}")
            self._exec(f"DROP TABLE {stage}")
            return
        self._exec(f"ALTER TABLE {stage} RENAME TO {quote(layout.table)}")
        pk = self._exec("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) "
                        "AND contype = 'p'", (live,)).fetchone()
        if pk is not None and pk[0] != f"pk_{layout.table}":
            self._exec(f"ALTER TABLE {live} RENAME CONSTRAINT {quote(pk[0])} "
                       f"TO {quote('pk_' + layout.table)}")
        for grantee, privilege in grants:
            self._exec(f"GRANT {privilege} ON {live} TO {grantee}")
        if layout.dap and layout.dap.table_comment:  # LIKE copies column comments only
            self._comment("TABLE", live, layout.dap.table_comment)

    # --- administration ---------------------------------------------------------------------

    def count_rows(self, qualified: str) -> int | None:
        """Rows in the table, None if it does not exist (inside the caller's transaction)."""
        found = self._exec("SELECT to_regclass(%s)", (qualified,)).fetchone()
        if found is None or found[0] is None:
            return None
        row = self._exec(f"SELECT COUNT(*) FROM {qualified}").fetchone()
        assert row is not None
        return int(row[0])

    def drop(self, meta: MetaRow, schema: str) -> None:
        """The meta row, the table, then the enum types named after the table (inside the
        caller's transaction)."""
        prefix = meta.target_table + "__"
        enums = [r[0] for r in self._exec(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = %s AND t.typtype = 'e' AND left(t.typname, %s) = %s "
            "ORDER BY 1", (schema, len(prefix), prefix)).fetchall()]
        self._exec(f'DELETE FROM {_META_TABLE} WHERE "source_namespace" = %s '
                   'AND "source_table" = %s', (meta.source_namespace, meta.source_table))
        self._exec(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(meta.target_table)}")
        for name in enums:
            # Another table may still use the type (a hand-made one): keep it then.
            self._exec("SAVEPOINT dap_drop_type")
            try:
                self._exec(f"DROP TYPE {quote(schema)}.{quote(name)}")
            except psycopg.Error:
                self._exec("ROLLBACK TO SAVEPOINT dap_drop_type")
