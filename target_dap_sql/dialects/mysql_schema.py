"""MySQL/MariaDB DDL: the official `<ns>__<table>` layout, inline ENUMs, meta tables, evolution.

The DDL mirrors what the official replicator creates on MySQL (docs/database-layout.md), so
the official `dap` CLI can `syncdb`/`listdb`/`dropdb` a database we created, and the other way
round. MySQL has no schemas: a table lives in the connection's database as `<schema>__<table>`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from target_dap_sql import meta as meta_tables
from target_dap_sql.dialects.base import (
    META_COLUMNS,
    ColumnNaming,
    evolution_clauses,
    logger,
    meta_row_sql,
    prefixed_table_name,
    primary_key_clause,
    quote,
    widened,
)
from target_dap_sql.dialects.mysql_enum import column_labels, plan_enum
from target_dap_sql.dialects.mysql_keys import (
    exact_collation,
    inexact_key_error,
    is_exact,
    is_key_text,
    no_exact_collation_error,
)
from target_dap_sql.dialects.mysql_names import check_statements_find, column_naming
from target_dap_sql.layout import Column, SqlType, TableLayout
from target_dap_sql.meta import DATABASE_VERSION, META_NAMESPACE, MetaRow

META_TABLE = f"{META_NAMESPACE}__table_sync"
VERSION_TABLE = f"{META_NAMESPACE}__database_version"
# By id: MySQL reports rows changed, not rows matched, so an UPDATE that changes nothing cannot
# tell "no row yet" from "row already up to date" (see upsert_meta_row).
_META_UPDATE, _META_INSERT = meta_row_sql(f'"{META_TABLE}"', "%s", '"id" = %s')
MAX_IDENTIFIER = 64
#: MySQL refuses longer column comments (the official generator fails on them; we cut them).
MAX_COLUMN_COMMENT = 1024
MAX_TABLE_COMMENT = 2048

_SIMPLE_DDL = {
    "smallint": "smallint", "integer": "integer", "bigint": "bigint",
    # `real` is what the official generator writes for float32; MySQL stores it as double.
    "real": "real", "double": "double",
    # A JSON number of another tap: decimal without precision would be decimal(10,0) in MySQL.
    "numeric": "double",
    "boolean": "tinyint", "text": "mediumtext",
    "timestamp": "datetime", "timestamptz": "datetime(6)", "date": "date", "time": "time",
    # MySQL has no interval/inet types (the official generator emits invalid DDL for them).
    "interval": "varchar(64)", "inet": "varchar(45)",
    "uuid": "binary(16)", "json": "json", "array": "json",
}
_ENUM_CHARSET = "CHARACTER SET ascii COLLATE ascii_bin"


class ExistingColumn(NamedTuple):
    # information_schema.columns.column_type as reported: ENUM labels keep their case
    column_type: str
    not_null: bool
    comment: str
    default: str | None
    charset: str | None = None
    collation: str | None = None

    @property
    def is_enum(self) -> bool:
        return self.column_type.lower().startswith("enum(")

    @property
    def case_blind(self) -> bool:
        """Whether the column compares text ignoring case (a *_ci collation)."""
        collation = (self.collation or "").lower()
        return bool(collation) and not (collation in ("binary", "ascii_bin")
                                        or collation.endswith(("_bin", "_cs")))

    def type_ddl(self) -> str:
        """The column's type as a MODIFY must restate it to keep it (MODIFY without a character
        set would move a text or ENUM column to the table's default one)."""
        if self.charset and self.collation:
            return f"{self.column_type} CHARACTER SET {self.charset} COLLATE {self.collation}"
        return self.column_type


def staging_name(live: str, suffix: str) -> str:
    """A staging table name within MySQL's 64-character identifier limit."""
    name = live + suffix
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(live.encode()).hexdigest()[:10]
    return f"{live[:MAX_IDENTIFIER - len(digest) - 7]}__stg_{digest}"


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


#: The longest utf8mb4 `varchar(n)` MySQL and MariaDB create (65535 bytes / 4).
MAX_VARCHAR_CHARS = 16383


def type_ddl(column: Column, layout: TableLayout) -> str:
    sql_type = column.type
    kind = sql_type.kind
    if kind == "enum":
        if not layout.enum_native:
            return "mediumtext"
        return enum_ddl(list(sql_type.labels))
    if kind == "varchar":
        length = sql_type.length or 0
        if length >= 2**24:
            return "longtext"
        # A row holds at most 65535 bytes and utf8mb4 reserves 4 per character: a longer
        # varchar is refused in strict mode, so it becomes a text type as over 65535.
        return f"varchar({length})" if length <= MAX_VARCHAR_CHARS else "mediumtext"
    if kind == "char":
        return f"char({sql_type.length})"
    if kind == "decimal":
        return decimal_ddl(sql_type)
    if kind == "text" and column.name in layout.key_columns:
        return "varchar(255)"  # MySQL cannot index a whole text column
    if kind == "time" and layout.dap is None:
        # Bare `time` drops a value's fraction silently; the DAP layout keeps the official `time`.
        return "time(6)"
    return _SIMPLE_DDL[kind]


def decimal_ddl(sql_type: SqlType) -> str:
    """MySQL's DECIMAL for a layout's `decimal(p, s)`. MySQL has no negative scale (a layout of
    `multipleOf: 10`; PostgreSQL 15 has) nor a scale above the precision (`exclusiveMaximum:
    0.01, multipleOf: 0.0001`), both a syntax error: such a column is the DECIMAL that holds
    the same values (decoding refuses larger ones and rounds to tens: mysql_literals)."""
    precision, scale = sql_type.precision or 0, sql_type.scale or 0
    if scale < 0:
        return f"decimal({precision - scale}, 0)"
    return f"decimal({max(precision, scale)}, {scale})"


def _parse_existing(column_type: str) -> SqlType:
    """The neutral type of an existing column (only as precise as widening needs)."""
    if m := re.fullmatch(r"(varchar|char)\((\d+)\)", column_type):
        return SqlType(m.group(1), length=int(m.group(2)))
    base = re.sub(r"\(\d+\)", "", column_type).strip()
    simple = {"smallint": "smallint", "int": "integer", "bigint": "bigint", "float": "real",
              "double": "double", "mediumtext": "text", "longtext": "text", "text": "text"}
    return SqlType(simple.get(base, "other:" + base))


def _canonical(ddl: str) -> str:
    """A type spelling comparable between our DDL and information_schema (MySQL or MariaDB)."""
    ddl = re.sub(r"^(tinyint|smallint|int|bigint)\(\d+\)", r"\1", ddl.lower().strip())
    # We write `decimal(5, 2)`, the server reports `decimal(5,2)`.
    ddl = re.sub(r"^decimal\((\d+),\s*(\d+)\)$", r"decimal(\1,\2)", ddl)
    # MariaDB reports json as longtext; `integer`/`real` are aliases.
    return {"integer": "int", "real": "double", "json": "longtext"}.get(ddl, ddl)


def enum_ddl(labels: list[str]) -> str:
    """An inline ENUM: ascii_bin as the official layout (DAP labels are ASCII), utf8mb4_bin
    where a label is not ASCII (an ascii ENUM would silently store it, and its values, as '?')."""
    charset = (_ENUM_CHARSET if all(v.isascii() for v in labels)
               else "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    return f"ENUM ({', '.join(literal(v) for v in labels)}) {charset}"


def _column_comment(text: str | None) -> str | None:
    if not text:
        return None
    return text.splitlines()[0][:MAX_COLUMN_COMMENT]


class MySqlSchemaManager:
    """DDL and meta-table statements; `execute(sql, params)` runs one statement."""

    def __init__(self, execute: Callable[..., Any], query: Callable[..., list[tuple]]):
        self._exec = execute
        self._query = query
        self._exact_collation: tuple[str | None] | None = None  # looked up once, on first use

    # --- meta tables ------------------------------------------------------------------------

    def table_exists(self, name: str) -> bool:
        return bool(self._query(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name = %s", (name,)))

    def ensure_meta_tables(self) -> None:
        # Checked first so an existing database sees no DDL (each DDL commits implicitly);
        # `IF NOT EXISTS` still, for a concurrent first run (two tables initialised at once)
        # that created the table between our check and our CREATE.
        if not self.table_exists(VERSION_TABLE):
            self._exec(
                f'CREATE TABLE IF NOT EXISTS "{VERSION_TABLE}" ('
                '"version" bigint NOT NULL AUTO_INCREMENT '
                f"COMMENT {literal(meta_tables.DATABASE_VERSION_COLUMN_COMMENT)}, "
                f'CONSTRAINT "pk_{VERSION_TABLE}" PRIMARY KEY ("version")) '
                f"COMMENT = {literal(meta_tables.DATABASE_VERSION_COMMENT)}")
        if not self.table_exists(META_TABLE):
            comments = {c: f" COMMENT {literal(t)}"
                        for c, t in meta_tables.TABLE_SYNC_COLUMN_COMMENTS.items()}
            self._exec(
                f'CREATE TABLE IF NOT EXISTS "{META_TABLE}" ("id" bigint NOT NULL AUTO_INCREMENT, '
                f'"source_namespace" varchar(64) NOT NULL{comments["source_namespace"]}, '
                f'"source_table" varchar(64) NOT NULL{comments["source_table"]}, '
                f'"timestamp" datetime NOT NULL{comments["timestamp"]}, '
                f'"schema_version" bigint NOT NULL{comments["schema_version"]}, '
                f'"target_schema" varchar(64){comments["target_schema"]}, '
                f'"target_table" varchar(64) NOT NULL{comments["target_table"]}, '
                f'"schema_description_format" varchar(64) NOT NULL'
                f'{comments["schema_description_format"]}, '
                f'"schema_description" mediumtext NOT NULL{comments["schema_description"]}, '
                f'CONSTRAINT "pk_{META_TABLE}" PRIMARY KEY ("id")) '
                f"COMMENT = {literal(meta_tables.TABLE_SYNC_COMMENT)}")
        # Without version 1 the official client truncates table_sync on its first run.
        self._exec(f'INSERT INTO "{VERSION_TABLE}" ("version") VALUES (%s) '
                   'ON DUPLICATE KEY UPDATE "version" = VALUES("version")', (DATABASE_VERSION,))

    def upsert_meta_row(self, meta: MetaRow) -> None:
        # `datetime` keeps whole seconds and MySQL would ROUND a fraction (possibly up, past
        # changes the next incremental query must still return): cut it off ourselves.
        values = [getattr(meta, c) for c in META_COLUMNS]
        values[2] = meta.timestamp.replace(microsecond=0)
        found = self._query(f'SELECT "id" FROM "{META_TABLE}" WHERE "source_namespace" = %s '
                            'AND "source_table" = %s', (meta.source_namespace, meta.source_table))
        if found:
            self._exec(_META_UPDATE, (*values, found[0][0]))
        else:
            self._exec(_META_INSERT, values)

    def delete_meta_row(self, meta: MetaRow) -> None:
        self._exec(f'DELETE FROM "{META_TABLE}" WHERE "source_namespace" = %s '
                   'AND "source_table" = %s', (meta.source_namespace, meta.source_table))

    def read_meta_rows(self) -> list[MetaRow]:
        if not self.table_exists(META_TABLE):
            return []
        rows = self._query(f"SELECT {', '.join(map(quote, META_COLUMNS))} FROM "
                           f'"{META_TABLE}" ORDER BY "id"')
        return [MetaRow(**dict(zip(META_COLUMNS, r, strict=True))) for r in rows]

    # --- tables -----------------------------------------------------------------------------

    def primary_key(self, table: str) -> list[str]:
        rows = self._query(
            "SELECT column_name FROM information_schema.statistics WHERE table_schema = "
            "DATABASE() AND table_name = %s AND index_name = 'PRIMARY' ORDER BY seq_in_index",
            (table,))
        return [r[0] for r in rows]

    def existing_columns(self, table: str) -> dict[str, ExistingColumn]:
        # column_type as it is: ENUM labels are case-sensitive (never LOWER() it).
        rows = self._query(
            "SELECT column_name, column_type, is_nullable = 'NO', column_comment, "
            "column_default, character_set_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position",
            (table,))
        return {r[0]: ExistingColumn(r[1], bool(r[2]), r[3] or "", r[4], r[5], r[6])
                for r in rows}

    def layout_columns(self, layout: TableLayout, table: str
                       ) -> tuple[dict[str, ExistingColumn], ColumnNaming]:
        """The table's columns under the layout's names (mysql_names.py), and the server's
        naming of them (its primary key's names are among them)."""
        existing = self.existing_columns(table)
        naming = column_naming(self._query, [*existing, *(c.name for c in layout.columns)])
        found = naming.existing_as_layout(layout, existing)
        for stored in existing.keys() - found.keys():
            check_statements_find(self._query, layout, table, naming, stored)
        return found, naming

    def exact_collation(self) -> str | None:
        """The binary NO PAD collation text keys get (mysql_keys.py), None if the server has
        none."""
        if self._exact_collation is None:
            self._exact_collation = (exact_collation(self._query),)
        return self._exact_collation[0]

    def check_key_collations(self, table: str, layout: TableLayout,
                             existing: dict[str, ExistingColumn]) -> None:
        """Refuse an existing table whose text key column merges distinct keys (a case- or
        accent-blind or PAD SPACE collation): loading into it would lose rows silently."""
        for name in layout.key_columns:
            current = existing.get(name)
            if current is not None and not current.is_enum and not is_exact(current.collation):
                raise inexact_key_error(table, name, current.column_type, current.not_null,
                                        str(current.collation), self.exact_collation())

    def column_ddl(self, column: Column, layout: TableLayout, *, not_null: bool | None = None,
                   ddl_type: str | None = None) -> str:
        sql_type = ddl_type or type_ddl(column, layout)
        if (column.name in layout.key_columns and is_key_text(sql_type)
                and "character set" not in sql_type.lower()):
            # A key compares with its column's collation: only a binary NO PAD one keeps every
            # two distinct keys apart (the database's default would merge `a`, `A` and `a `).
            collation = self.exact_collation()
            if collation is None:
                raise no_exact_collation_error(prefixed_table_name(layout), column.name)
            sql_type += f" CHARACTER SET utf8mb4 COLLATE {collation}"
        ddl = f"{quote(column.name)} {sql_type}"
        if not_null if not_null is not None else not column.nullable:
            ddl += " NOT NULL"
        if column.default is not None:
            ddl += f" DEFAULT {literal(column.default)}"
        comment = _column_comment(column.comment)
        if comment:
            ddl += f" COMMENT {literal(comment)}"
        return ddl

    def create_table(self, layout: TableLayout) -> None:
        name = prefixed_table_name(layout)
        parts = [self.column_ddl(c, layout) for c in layout.columns]
        if pk := primary_key_clause(layout, name):
            parts.append(pk)
        ddl = f"CREATE TABLE {quote(name)} ({', '.join(parts)})"
        if layout.dap and layout.dap.table_comment:
            # The official layout keeps only the first line (the title) on MySQL.
            first = layout.dap.table_comment.splitlines()[0][:MAX_TABLE_COMMENT]
            ddl += f" COMMENT = {literal(first)}"
        self._exec(ddl)
        logger.info("Created table %s", name)

    def evolve(self, layout: TableLayout, existing: dict[str, ExistingColumn],
               drop_removed: bool) -> None:
        name = prefixed_table_name(layout)
        if self._repair_enums(layout, name, existing):
            existing, _ = self.layout_columns(layout, name)
        changes = evolution_clauses(
            layout, existing, drop_removed,
            add=lambda c: f"ADD COLUMN {self.column_ddl(c, layout)}",
            alter=lambda c, current: self._modify_clauses(layout, name, c, current),
            relax=lambda column, current: (
                f"MODIFY COLUMN {quote(column)} {current.type_ddl()} NULL"
                + (f" COMMENT {literal(current.comment)}" if current.comment else "")))
        if changes:
            logger.info("Evolving %s: %s", name, "; ".join(changes))
            self._exec(f"ALTER TABLE {quote(name)} {', '.join(changes)}")

    def _repair_enums(self, layout: TableLayout, table: str,
                      existing: dict[str, ExistingColumn]) -> bool:
        """Move the rows of lower-cased ENUM label copies (left by versions that read the column
        type lower-cased, see mysql_enum.py) to the schema's labels; the evolution that follows
        then drops the copies. Every step is safe to repeat if the run stops in between (MySQL
        DDL commits on its own), and STRICT mode fails a MODIFY rather than lose a value."""
        repaired = False
        for column in layout.columns:
            current = existing.get(column.name)
            if current is None or column.type.kind != "enum" or not current.is_enum:
                continue
            labels = column_labels(current.column_type, column.type.labels)
            plan = plan_enum(labels, column.type.labels, case_blind=current.case_blind)
            if not plan.renames:
                continue
            logger.warning("Repairing the ENUM of %s.%s: merging the lower-cased copies %s "
                           "an earlier target-dap-sql added into the labels they copy",
                           table, column.name, sorted(plan.renames))
            missing = [t for t in plan.renames.values() if t not in labels]
            if missing or current.case_blind:
                # The rows need their real label in the ENUM (and a case-sensitive column)
                # before they can move to it.
                ddl = self.column_ddl(column, layout, not_null=current.not_null,
                                      ddl_type=enum_ddl(labels + missing))
                self._exec(f"ALTER TABLE {quote(table)} MODIFY COLUMN {ddl}")
            for copy, label in plan.renames.items():
                moved = self._exec(f"UPDATE {quote(table)} SET {quote(column.name)} = %s "
                                   f"WHERE CAST({quote(column.name)} AS BINARY) = %s",
                                   (label, copy))
                if moved:
                    logger.warning("Moved %s rows of %s.%s from %r to %r", moved, table,
                                   column.name, copy, label)
            repaired = True
        return repaired

    def _modify_clauses(self, layout: TableLayout, table: str, c: Column,
                        current: ExistingColumn) -> list[str]:
        """Widen the type of a kept column and drop a NOT NULL the schema no longer asks for."""
        new_type = self._evolved_type(c, layout, current, table)
        keep_not_null = current.not_null and (not c.nullable or c.name in layout.key_columns)
        if new_type is None and keep_not_null == current.not_null:
            return []
        # MODIFY restates the whole definition: keep what we do not mean to change.
        ddl = self.column_ddl(c, layout, not_null=keep_not_null,
                              ddl_type=new_type or current.type_ddl())
        return [f"MODIFY COLUMN {ddl}"]

    @staticmethod
    def _evolved_type(column: Column, layout: TableLayout, current: ExistingColumn,
                      table: str) -> str | None:
        wanted = type_ddl(column, layout)
        if column.type.kind == "enum" and current.is_enum:
            # Case-sensitive labels, order kept, new labels appended; labels the schema dropped
            # stay so no stored row breaks (mysql_enum.plan_enum). An ENUM column stays one
            # with `enum_type: text` too: its rows must still fit.
            labels = column_labels(current.column_type, column.type.labels)
            plan = plan_enum(labels, column.type.labels, case_blind=current.case_blind)
            if not plan.changes(labels):
                return None
            logger.info("ENUM of %s.%s: %s -> %s", table, column.name, labels, plan.labels)
            return enum_ddl(plan.labels)
        if current.is_enum or _canonical(wanted) == _canonical(current.column_type):
            return None
        column_type = current.column_type.lower()
        if wanted == "time(6)" and re.fullmatch(r"time(\([0-5]\))?", column_type):
            return wanted  # more fractional digits: every stored value fits
        new = widened(_parse_existing(column_type), column.type)
        if new is None:
            if _parse_existing(column_type) != column.type:
                logger.warning("Column %s.%s stays %s (schema says %s): not a widening",
                               table, column.name, current.column_type, wanted)
            return None
        return wanted
