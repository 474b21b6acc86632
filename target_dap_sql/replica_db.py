"""Database-specific bits of the admin commands: where a replicated table lives, counting, dropping.

Uses the open connection of a loading dialect (sqlite3, psycopg or PyMySQL) and the official
naming: PostgreSQL `"<schema>"."<table>"`, SQLite and MySQL `"<schema>__<table>"`.
"""

from __future__ import annotations

from typing import Any

from target_dap_sql.dialects import Dialect
from target_dap_sql.errors import DatabaseError
from target_dap_sql.meta import META_NAMESPACE, MetaRow


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ReplicaDatabase:
    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        self.kind = dialect.name
        self._meta: list[MetaRow] | None = None

    @property
    def _conn(self) -> Any:
        return self.dialect.conn  # type: ignore[attr-defined]

    def meta_rows(self) -> list[MetaRow]:
        if self._meta is None:
            self._meta = self.dialect.read_meta_rows()
        return self._meta

    # --- naming -----------------------------------------------------------------------------

    def identifier(self, row: MetaRow) -> str:
        """The table's name inside its schema (PostgreSQL) or database (SQLite, MySQL)."""
        if self.kind == "postgresql" or not row.target_schema:
            return row.target_table
        return f"{row.target_schema}__{row.target_table}"

    def qualified(self, row: MetaRow) -> str:
        if self.kind == "postgresql":
            return f"{_quote(row.target_schema or 'public')}.{_quote(row.target_table)}"
        return _quote(self.identifier(row))

    def dbt_schema(self, row: MetaRow) -> str:
        if self.kind == "postgresql":
            return row.target_schema or "public"
        if self.kind == "mysql":
            return str(self.dialect.database)  # type: ignore[attr-defined]
        return "main"

    def _meta_table(self) -> str:
        if self.kind == "postgresql":
            return f'{_quote(META_NAMESPACE)}."table_sync"'
        return _quote(f"{META_NAMESPACE}__table_sync")

    # --- queries ----------------------------------------------------------------------------

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.kind == "sqlite":
            return self._conn.execute(sql.replace("%s", "?"), params).fetchall()
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            rows = list(cur.fetchall())
        self._conn.commit()
        return rows

    def count(self, row: MetaRow) -> int | None:
        """Rows in the table, or None when the table is missing."""
        try:
            return int(self._fetch(f"SELECT COUNT(*) FROM {self.qualified(row)}")[0][0])
        except Exception as exc:  # the driver's "no such table", whatever the driver
            if self.kind != "sqlite":
                self._conn.rollback()
            if "exist" in str(exc) or "no such table" in str(exc):
                return None
            raise DatabaseError(f"counting rows of {self.qualified(row)}: {exc}") from None

    def drop(self, row: MetaRow) -> None:
        """Delete the meta row first (as the official dropdb does), then the table and enums.

        In that order a failure can leave an unregistered table, never a meta row claiming data
        that is gone (which would make the next run skip the snapshot).
        """
        where = '"source_namespace" = %s AND "source_table" = %s'
        params = (row.source_namespace, row.source_table)
        what = f"dropping {row.source_namespace}.{row.source_table}"
        try:
            if self.kind == "sqlite":
                self._drop_sqlite(row, where, params)
            elif self.kind == "postgresql":
                self._drop_postgres(row, where, params)
            else:
                with self._conn.cursor() as cur:
                    cur.execute(f"DELETE FROM {self._meta_table()} WHERE {where}", params)
                    self._conn.commit()
                    cur.execute(f"DROP TABLE IF EXISTS {self.qualified(row)}")
        except DatabaseError:
            raise
        except Exception as exc:
            if self.kind != "sqlite":
                self._conn.rollback()
            raise DatabaseError(f"{what}: {str(exc).strip().splitlines()[0]}") from None

    def _drop_sqlite(self, row: MetaRow, where: str, params: tuple) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"DELETE FROM {self._meta_table()} WHERE {where.replace('%s', '?')}",
                         params)
            conn.execute(f"DROP TABLE IF EXISTS {self.qualified(row)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise

    def _drop_postgres(self, row: MetaRow, where: str, params: tuple) -> None:
        # One transaction: PostgreSQL DDL is transactional, so a failure changes nothing.
        conn = self._conn
        schema = row.target_schema or "public"
        prefix = row.target_table + "__"
        enums = [r[0] for r in conn.execute(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = %s AND t.typtype = 'e' AND left(t.typname, %s) = %s "
            "ORDER BY 1", (schema, len(prefix), prefix)).fetchall()]
        conn.execute(f"DELETE FROM {self._meta_table()} WHERE {where}", params)
        conn.execute(f"DROP TABLE IF EXISTS {self.qualified(row)}")
        for name in enums:
            # Another table may still use the type (a hand-made one): keep it then.
            conn.execute("SAVEPOINT dap_drop_type")
            try:
                conn.execute(f"DROP TYPE {_quote(schema)}.{_quote(name)}")
            except Exception:
                conn.execute("ROLLBACK TO SAVEPOINT dap_drop_type")
        conn.commit()
