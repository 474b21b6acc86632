"""Text key columns on MySQL/MariaDB: compared byte for byte, or refused.

A primary key compares values with its column's collation. The server's defaults (`*_general_ci`,
`*_0900_ai_ci`) take `a`/`A` and `é`/`e` for one key, and even `utf8mb4_bin` pads with spaces
(`a` = `a `): an upsert of one key then overwrites the row of another, silently. So a text key
column is created with a binary NO PAD collation, and a table whose key column compares text
any other way (made by an earlier target-dap-sql or another tool) is refused with the ALTER that
fixes it, rather than loaded into.

DAP tables have no text key (canvas_logs.web_logs' uuid key is binary(16)), so the official
layout is unchanged; a `varchar` key with a collation is still a `varchar` to the `dap` CLI.
"""

from __future__ import annotations

from collections.abc import Callable

from target_dap_sql.errors import DatabaseError

#: Binary NO PAD collations of utf8mb4, best first: MariaDB (10.2+), MySQL (8.0.17+).
EXACT_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")
#: What may differ between keys an inexact collation merges, for the error lines.
_MERGES = "keys that differ only in case, accents or trailing spaces"


def is_exact(collation: str | None) -> bool:
    """Whether a column with this collation (None: not text) tells every two strings apart."""
    name = (collation or "binary").lower()
    return name == "binary" or name.endswith("_nopad_bin") or name == "utf8mb4_0900_bin"


def is_key_text(type_ddl: str) -> bool:
    """Whether a key column of this type compares text with a collation."""
    return type_ddl.lower().startswith(("varchar", "char", "tinytext", "text", "mediumtext"))


def exact_collation(query: Callable[..., list[tuple]]) -> str | None:
    """The server's binary NO PAD utf8mb4 collation, or None (MySQL before 8.0.17)."""
    rows = query("SELECT collation_name FROM information_schema.collations "
                 "WHERE collation_name IN (%s, %s)", EXACT_COLLATIONS)
    found = {str(r[0]).lower() for r in rows}
    return next((c for c in EXACT_COLLATIONS if c in found), None)


def _name(identifier: str) -> str:
    """An identifier as the user's own MySQL client takes it (no ANSI_QUOTES there)."""
    return "`" + identifier.replace("`", "``") + "`"


def no_exact_collation_error(table: str, column: str) -> DatabaseError:
    return DatabaseError(
        f"table {table}: text key column {column!r} needs a binary NO PAD collation to keep "
        f"{_MERGES} apart, and this server has none (utf8mb4_nopad_bin on MariaDB, "
        "utf8mb4_0900_bin on MySQL 8.0.17 and later); upgrade the server")


def inexact_key_error(table: str, column: str, type_ddl: str, not_null: bool,
                      collation: str, exact: str | None) -> DatabaseError:
    """The one line refusing an existing table whose key column merges distinct keys."""
    fix = (f"; convert it with ALTER TABLE {_name(table)} MODIFY COLUMN {_name(column)} "
           f"{type_ddl} CHARACTER SET utf8mb4 COLLATE {exact}{' NOT NULL' if not_null else ''}"
           if exact else "")
    # A binary PAD SPACE collation (`utf8mb4_bin`, the one this README used to recommend) only
    # ignores trailing spaces; the others ignore case or accents too.
    blind = "trailing spaces" if collation.lower().endswith("_bin") else (
        "case, accents or trailing spaces")
    return DatabaseError(
        f"table {table}: key column {column!r} has the collation {collation}, which takes keys "
        f"that differ only in {blind} for one key (their rows would overwrite each other){fix}")
