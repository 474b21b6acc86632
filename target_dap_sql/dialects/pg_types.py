"""PostgreSQL type names: the DDL of each neutral column type (the official mapping, see
docs/database-layout.md), how pg_catalog spells it back, and the names PostgreSQL would cut."""

from __future__ import annotations

import re
from typing import Any

from target_dap_sql.dialects.base import ColumnNaming, quote, shortened
from target_dap_sql.layout import Column, SqlType, TableLayout

_DDL_NAMES = {
    "double": "double precision", "json": "jsonb", "timestamptz": "timestamptz",
}
_CATALOG_NAMES = {
    "double": "double precision", "json": "jsonb", "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone", "time": "time without time zone",
}
#: PostgreSQL's NAMEDATALEN - 1: longer identifiers are silently cut to this many bytes.
MAX_IDENTIFIER_BYTES = 63
#: The longest `varchar(n)` PostgreSQL accepts; a longer maxLength (other taps send 2^24 - 1 for
#: MySQL mediumtext) is stored as `text`, as MySQL stores it as mediumtext/longtext.
MAX_VARCHAR_LENGTH = 10_485_760


def pg_name(name: str) -> str:
    """The name PostgreSQL makes of an identifier: its first 63 bytes (whole characters)."""
    return name.encode()[:MAX_IDENTIFIER_BYTES].decode(errors="ignore")


#: PostgreSQL keeps an identifier's first 63 bytes: longer names are one column if those agree.
PG_COLUMNS = ColumnNaming(pg_name, f"PostgreSQL keeps the first {MAX_IDENTIFIER_BYTES} bytes "
                                   "of a name")


def pg_enum_type(layout: TableLayout, column: Column) -> str:
    """The official `<table>__<column>`, shortened uniquely where PostgreSQL would cut it (a cut
    name could be another column's type, or the table's own row type)."""
    return shortened(layout.enum_type_name(column), MAX_IDENTIFIER_BYTES, "__enum")


def _storable(sql_type: SqlType) -> SqlType:
    """The type PostgreSQL can create for the layout's type."""
    if sql_type.kind == "varchar" and (sql_type.length or 0) > MAX_VARCHAR_LENGTH:
        return SqlType("text")
    return sql_type


def catalog_name(sql_type: SqlType) -> str:
    """The type as format_type() in pg_catalog spells it (to compare with a column's)."""
    sql_type = _storable(sql_type)
    if sql_type.kind == "array":
        assert sql_type.element is not None
        return catalog_name(sql_type.element) + "[]"
    if sql_type.kind == "varchar":
        return f"character varying({sql_type.length})"
    if sql_type.kind == "char":
        return f"character({sql_type.length})"
    if sql_type.kind == "decimal":
        return f"numeric({sql_type.precision},{sql_type.scale})"
    return _CATALOG_NAMES.get(sql_type.kind, sql_type.kind)


def parse_catalog(name: str) -> SqlType:
    """The neutral type of an existing column (only as precise as widening needs)."""
    if m := re.fullmatch(r"character varying\((\d+)\)", name):
        return SqlType("varchar", length=int(m.group(1)))
    if m := re.fullmatch(r"character\((\d+)\)", name):
        return SqlType("char", length=int(m.group(1)))
    simple = {"smallint": "smallint", "integer": "integer", "bigint": "bigint", "real": "real",
              "double precision": "double", "text": "text", "character varying": "text"}
    return SqlType(simple.get(name, "other:" + name))


def literal(value: Any) -> str:
    """A DDL literal (a column default, an enum label)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def column_type_ddl(column: Column, layout: TableLayout) -> str:
    """The column's type in CREATE/ALTER TABLE (enums as the layout's schema-qualified type)."""
    return _type_ddl(column.type, column, layout)


def _type_ddl(sql_type: SqlType, column: Column, layout: TableLayout) -> str:
    sql_type = _storable(sql_type)
    kind = sql_type.kind
    if kind == "array":
        assert sql_type.element is not None
        return _type_ddl(sql_type.element, column, layout) + "[]"
    if kind == "enum":
        if not layout.enum_native:
            return "text"
        return f"{quote(layout.schema or 'public')}.{quote(pg_enum_type(layout, column))}"
    if kind in ("varchar", "char"):
        return f"{kind}({sql_type.length})"
    if kind == "decimal":
        return f"decimal({sql_type.precision}, {sql_type.scale})"
    return _DDL_NAMES.get(kind, kind)
