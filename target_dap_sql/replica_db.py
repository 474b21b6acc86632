"""The replica as the admin commands see it: its table_sync rows (read once) and, per row, the
table's names, row count and drop — each asked of the dialect, which owns everything
database-specific (docs/database-layout.md has the names per database)."""

from __future__ import annotations

from target_dap_sql.dialects import Dialect
from target_dap_sql.meta import MetaRow


class ReplicaDatabase:
    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        self._meta: list[MetaRow] | None = None

    def meta_rows(self) -> list[MetaRow]:
        if self._meta is None:
            self._meta = self.dialect.read_meta_rows()
        return self._meta

    def identifier(self, row: MetaRow) -> str:
        """The table's name inside its schema (PostgreSQL) or database (SQLite, MySQL)."""
        return self.dialect.table_name(row.target_schema, row.target_table)

    def qualified(self, row: MetaRow) -> str:
        return self.dialect.qualified_name(row.target_schema, row.target_table)

    def dbt_schema(self, row: MetaRow) -> str:
        return self.dialect.container_name(row.target_schema)

    def count(self, row: MetaRow) -> int | None:
        """Rows in the table, or None when the table is missing."""
        return self.dialect.count_rows(row.target_schema, row.target_table)

    def drop(self, row: MetaRow) -> None:
        """The meta row first, then the table and its enum types (Dialect.drop_replica)."""
        self.dialect.drop_replica(row)
        self._meta = None
