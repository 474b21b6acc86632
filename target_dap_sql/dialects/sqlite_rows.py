"""A slice's rows, bound on the decoding thread while the previous slice loads.

`sqlite3` binds values under the GIL and SQLite writes rows without it, so the dialect splits a
background slice in two (docs/performance.md, "SQLite"): the caller's thread binds the rows into
an untyped table, and the load thread moves them into the real table with one
`INSERT … SELECT` (one `sqlite3_step`, no GIL). Bound on the loading connection itself, binding
had to wait for the load in flight: one connection runs one statement at a time, so the main
thread sat idle while the previous slice was moved and committed, and for changes the load
thread bound the rows itself (under the GIL, against the next slice's decoding).

So the rows are bound into a connection of their own (an in-memory database, `RowsBinder`),
at any time, and handed over as one image of that database (`serialize`, ~10 MB for 10,000
submissions rows): the load thread puts it in place of the loading connection's attached
`ROWS_DB` (`deserialize`: a copy, before its transaction begins) and moves the rows from there,
and after the commit puts an empty database there again (`EMPTY_IMAGE`), so a slice's rows are
held at most three times at once: bound, as the image, loading. Both rows databases are
`deserialize`d ones (SQLite's memdb): their image is their memory itself, so `serialize` copies
once, into the bytes (2 ms for 10 MB; a plain in-memory database was copied twice, 2-15 ms).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NoReturn

from target_dap_sql.dialects import sqlite_binding

#: The schema name the rows table lives in, on the binder and on the loading connection alike:
#: the same SQL text binds, moves and clears it on both.
ROWS_DB = "dap_rows"


def _empty_image() -> bytes:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA user_version = 0")  # written: one page (an empty image is refused)
        return conn.serialize()
    finally:
        conn.close()


#: An empty database: what `ROWS_DB` holds between slices.
EMPTY_IMAGE = _empty_image()


class BoundRows(Sequence[Any]):
    """Stands for a slice's upserts once they are bound: the load needs only their number, and
    the decoded rows (~20 MB for 10,000 submissions rows) are freed before the load ends."""

    def __init__(self, count: int) -> None:
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> NoReturn:
        raise TypeError("the rows were bound into the rows database")


class RowsBinder:
    """The rows connection: binds a slice's rows and returns them as a database image."""

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None
        #: The table the image holds (a new width starts a new database: no stale rows of
        #: another width are copied along).
        self._table: str | None = None

    def bind(self, create: str, insert: str, clear: str, rows: Sequence[tuple]) -> bytes:
        """Bind `rows` by `insert` into the table `create` makes; return the `ROWS_DB` image."""
        if self._table != create:
            self.close()
        conn = self._conn
        if conn is None:
            # No journal: the table is emptied before each slice, so a failed bind leaves
            # nothing the next one sees. check_same_thread: closed by whichever thread closes
            # the dialect.
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            conn.execute(f"ATTACH DATABASE ':memory:' AS {ROWS_DB}")
            conn.deserialize(EMPTY_IMAGE, name=ROWS_DB)
            conn.execute(f"PRAGMA {ROWS_DB}.journal_mode = OFF")
            conn.execute(create)
            self._conn, self._table = conn, create
        conn.execute("BEGIN")
        try:
            conn.execute(clear)
            with sqlite_binding.binding():  # None and bools by our adapters (sqlite_binding.py)
                conn.executemany(insert, sqlite_binding.bindable(rows))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return conn.serialize(name=ROWS_DB)

    def close(self) -> None:
        conn, self._conn, self._table = self._conn, None, None
        if conn is not None:
            conn.close()
