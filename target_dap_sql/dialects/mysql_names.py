"""Column names as MySQL tells them apart (`ColumnNaming`, dialects/base.py).

The server lower-cases identifiers with its system character set's own case table, which is
not Python's `str.lower`: `İd` is `id` to MariaDB, `ΟΔΟΣ` is `οδοσ` (not `οδος`) and `ẞ` stays
`ẞ`. Only the server's LOWER in that collation agrees with it on every name, so the names are
folded by the server, in one statement per table.
"""

from __future__ import annotations

from collections.abc import Callable

import pymysql

from target_dap_sql.dialects.base import ColumnNaming, quote
from target_dap_sql.errors import SchemaError
from target_dap_sql.layout import TableLayout

#: What MySQL says when two names are one column (`column_naming` gives the fold).
MYSQL_NAMING_RULE = "MySQL compares column names without regard to case"
#: ER_BAD_FIELD_ERROR: "Unknown column".
_UNKNOWN_COLUMN = 1054
_FOLD = "LOWER(CONVERT(%s USING utf8mb3) COLLATE utf8mb3_general_ci)"


def column_naming(query: Callable[..., list[tuple]], names: list[str]) -> ColumnNaming:
    """How the server tells `names` apart: each folded by the server itself (`_FOLD`). A name
    beyond the BMP cannot be a MySQL identifier (utf8mb3): it stays as it is, for the server
    to refuse."""
    bmp = sorted({n for n in names if all(ord(ch) <= 0xFFFF for ch in n)})
    folded: dict[str, str] = {}
    for start in range(0, len(bmp), 500):  # a few hundred per statement keeps it small
        part = bmp[start:start + 500]
        row = query("SELECT " + ", ".join([_FOLD] * len(part)), part)[0]
        folded.update(zip(part, map(str, row), strict=True))
    return ColumnNaming(lambda name: folded.get(name, name), MYSQL_NAMING_RULE)


def check_statements_find(query: Callable[..., list[tuple]], layout: TableLayout, table: str,
                          naming: ColumnNaming, stored: str) -> None:
    """Refuse a column the server's DDL takes for the layout's but its statements do not
    (MariaDB: `İd` is `id` to ADD COLUMN, not to INSERT): the column could neither be added
    nor written, and with `drop_removed_columns` it was dropped and added again, empty, losing
    its values."""
    name = next(c.name for c in layout.columns if naming.key(c.name) == naming.key(stored))
    try:
        query(f"SELECT {quote(name)} FROM {quote(table)} LIMIT 0")
    except pymysql.MySQLError as exc:
        if exc.args[0] != _UNKNOWN_COLUMN:
            raise
        raise SchemaError(f"column '{stored}' of table {table} is property '{name}' to "
                          "MySQL's ALTER TABLE but not to its INSERT; rename the column to the "
                          "property's name", stream=layout.stream) from None
