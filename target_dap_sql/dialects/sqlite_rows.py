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
and after the commit attaches an empty in-memory database there again. The binder's own rows
database is emptied right after its image is taken, so a slice's rows are held at most three
times at once (the image, the copy loading, and briefly the binder's), never a page of an
earlier slice. The binder's database is a `deserialize`d one (SQLite's memdb): its image is
its memory itself, so `serialize` copies once, into the bytes (2 ms for 10 MB; a plain
in-memory database was copied twice, 2-15 ms).

Held three times, a slice of wide rows would cost far more memory than binding it in place
(4 KB rows: 222 MB peak against 139 MB): a slice whose rows outgrow `IMAGE_BYTES` (checked
every `CHUNK_ROWS` rows while binding; ~10 MB is 10,000 rows of the emulator's ~1.2 KB) is
bound on the loading connection instead, as before, and so are the stream's later slices; so
is every slice where Python's sqlite3 has no `serialize` (an SQLite built without it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NoReturn

from target_dap_sql.dialects import sqlite_binding

#: The most bytes a slice's rows database may hold to be handed over as an image.
IMAGE_BYTES = 16 * 1024 * 1024
CHUNK_ROWS = 1_000

#: The schema name the rows table lives in, on the binder and on the loading connection alike:
#: the same SQL text binds, moves and clears it on both.
ROWS_DB = "dap_rows"


def _empty_image() -> bytes | None:
    conn = sqlite3.connect(":memory:")
    try:
        if not hasattr(conn, "serialize"):  # sqlite3 offers it only when SQLite has it
            return None
        conn.execute("PRAGMA user_version = 0")  # written: one page (an empty image is refused)
        return conn.serialize()
    finally:
        conn.close()


#: An empty database: what the binder's `ROWS_DB` holds between slices (None: no images here).
EMPTY_IMAGE = _empty_image()
IMAGES = EMPTY_IMAGE is not None


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

    def bind(self, create: str, insert: str, rows: Sequence[tuple]) -> bytes | None:
        """Bind `rows` by `insert` into the table `create` makes; return the `ROWS_DB` image,
        or None when they outgrow `IMAGE_BYTES`."""
        conn = self._conn
        if conn is None:
            # check_same_thread: closed by whichever thread closes the dialect.
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            conn.execute(f"ATTACH DATABASE ':memory:' AS {ROWS_DB}")
            self._conn = conn
        self._empty(conn)
        conn.execute(create)
        pages = IMAGE_BYTES // conn.execute(f"PRAGMA {ROWS_DB}.page_size").fetchone()[0]
        conn.execute("BEGIN")
        try:
            with sqlite_binding.binding():  # None and bools by our adapters (sqlite_binding.py)
                for start in range(0, len(rows), CHUNK_ROWS):
                    conn.executemany(insert, sqlite_binding.bindable(
                        rows[start:start + CHUNK_ROWS]))
                    if conn.execute(f"PRAGMA {ROWS_DB}.page_count").fetchone()[0] > pages:
                        conn.execute("ROLLBACK")
                        self._empty(conn)
                        return None
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:  # SQLite rolls back by itself on some errors (a full db)
                conn.execute("ROLLBACK")
            self._empty(conn)
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                return None  # a few rows past SQLite's 1 GiB cap of such a database
            raise
        try:
            return conn.serialize(name=ROWS_DB)
        finally:
            self._empty(conn)  # the slice's pages are in the image now

    @staticmethod
    def _empty(conn: sqlite3.Connection) -> None:
        # No journal: a failed bind leaves nothing the next one sees (each starts empty).
        conn.deserialize(EMPTY_IMAGE or b"", name=ROWS_DB)
        conn.execute(f"PRAGMA {ROWS_DB}.journal_mode = OFF")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
