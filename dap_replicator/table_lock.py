"""One replication of a table at a time: a second call for a table that is being replicated is
refused (TableBusyError) instead of loading the same data twice.

Two calls for one table would otherwise share the snapshot's staging table (one swaps in while
the other still loads into it) or apply changes out of order (an older job's rows committed after
a newer one's). The guard has two levels:

* in this process, a lock per (database, table), so threads and ``asyncio.to_thread`` tasks
  never overlap;
* in the database, a lock other processes and machines see, held by a connection of its own for
  the whole call and released by the server if the process dies (kill -9 leaves nothing behind):
  a PostgreSQL session advisory lock, a MariaDB/MySQL ``GET_LOCK``, and for SQLite a POSIX
  record lock on one byte of a ``PATH.dap-replicator-lock`` file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dap_replicator.connection import redacted
from dap_replicator.errors import ReplicationFailedError, TableBusyError
from target_dap_sql.dialects.sqlite import sqlite_path
from target_dap_sql.errors import TargetDapSQLError

if TYPE_CHECKING:
    from dap_replicator.connection import DatabaseConnection

#: First half of the PostgreSQL two-key advisory lock ("DAPR"); the two-key space never meets the
#: one-key locks target-dap-sql takes for DDL.
PG_LOCK_CLASS = 0x44415052
SQLITE_LOCK_SUFFIX = ".dap-replicator-lock"

_local_guard = threading.Lock()
_local_held: set[tuple[str, str]] = set()
#: SQLite lock files stay open for the life of the process: closing any descriptor of a file
#: drops every POSIX lock this process holds on it, including other threads' tables.
_sqlite_files: dict[str, int] = {}


@contextlib.contextmanager
def table_lock(connection: DatabaseConnection, namespace: str, tables: list[str]) -> Iterator[None]:
    """Hold the locks of ``namespace``.``tables`` (all or none) for the ``with`` block."""
    database = redacted(connection.url)
    keys = [(database, f"{namespace}.{t}") for t in tables]
    with _local_guard:
        busy = [key for _, key in keys if (database, key) in _local_held]
        if busy:
            raise TableBusyError(_busy_text(busy, "in this process"))
        _local_held.update(keys)
    try:
        with _database_locks(connection, [key for _, key in keys]):
            yield
    finally:
        with _local_guard:
            _local_held.difference_update(keys)


def _busy_text(keys: list[str], where: str) -> str:
    return (f"{', '.join(keys)}: another replication of this table is running {where}; "
            "nothing was done (run one task per table at a time)")


@contextlib.contextmanager
def _database_locks(connection: DatabaseConnection, keys: list[str]) -> Iterator[None]:
    if connection.dialect == "sqlite":
        with _sqlite_locks(sqlite_path(connection.url), keys):
            yield
        return
    dialect = connection.open_dialect()
    try:
        try:
            got = [_try_server_lock(dialect.conn, connection.dialect, key) for key in keys]
        except TargetDapSQLError as exc:
            raise ReplicationFailedError(f"{', '.join(keys)}: taking the table lock: {exc}") \
                from None
        except Exception as exc:  # a driver error; its text never holds the password
            raise ReplicationFailedError(
                f"{', '.join(keys)}: taking the table lock: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        busy = [key for key, ok in zip(keys, got, strict=True) if not ok]
        if busy:
            raise TableBusyError(_busy_text(busy, "elsewhere (another process or machine)"))
        yield
    finally:
        dialect.close()  # ends the lock connection: the server releases its locks


def _try_server_lock(conn: object, dialect: str, key: str) -> bool:
    digest = hashlib.sha256(key.encode()).digest()
    cursor = conn.cursor()  # type: ignore[attr-defined]
    try:
        if dialect == "postgresql":
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)",
                           (PG_LOCK_CLASS, int.from_bytes(digest[:4], "big", signed=True)))
        else:  # MariaDB/MySQL lock names are at most 64 characters
            cursor.execute("SELECT GET_LOCK(%s, 0)", (f"dap_replicator:{digest.hex()[:40]}",))
        got = bool(cursor.fetchone()[0])
    finally:
        cursor.close()
    conn.commit()  # type: ignore[attr-defined]  # session locks outlive the transaction
    return got


@contextlib.contextmanager
def _sqlite_locks(path: str, keys: list[str]) -> Iterator[None]:
    fd = _sqlite_lock_file(path)
    offsets = [int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], "big") >> 1 for k in keys]
    taken: list[int] = []
    try:
        for key, offset in zip(keys, offsets, strict=True):
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError:
                raise TableBusyError(
                    _busy_text([key], "elsewhere (another process on this database)")) from None
            taken.append(offset)
        yield
    finally:
        for offset in taken:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)


def _sqlite_lock_file(path: str) -> int:
    real = os.path.realpath(path)
    with _local_guard:
        fd = _sqlite_files.get(real)
        if fd is None:
            try:
                fd = os.open(real + SQLITE_LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                             0o644)
            except OSError as exc:
                raise ReplicationFailedError(
                    f"cannot open the lock file {real}{SQLITE_LOCK_SUFFIX}: {exc.strerror}") \
                    from None
            _sqlite_files[real] = fd
        return fd
