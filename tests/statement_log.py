"""Run `target-dap-sql` with every SQL statement it sends to the database written to a file.

    python tests/statement_log.py LOGFILE [target-dap-sql arguments …]

Tests use it to check claims like "a run whose schema did not change issues no DDL": the hooks sit
in the database drivers (PyMySQL's `Connection.query`, psycopg's cursor methods, SQLite's trace
callback), below everything the target does, so every SQL text the target writes passes them.
Not logged: what PyMySQL sends as protocol commands rather than SQL (COMMIT, ROLLBACK,
autocommit), none of which changes the schema. One statement per line, newlines folded.
"""

from __future__ import annotations

import re
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Statements that change the schema. `CREATE TEMP TABLE` is the PostgreSQL dialect's per-session
#: load table: it dies with the connection and changes nothing anyone else sees.
DDL = re.compile(r"^\s*(?:/\*.*?\*/\s*|--[^\n]*\n\s*)*"
                 r"(CREATE|ALTER|DROP|RENAME|TRUNCATE|COMMENT\s+ON|GRANT|REVOKE|DO)\b", re.I | re.S)
TEMP_TABLE = re.compile(r"^\s*CREATE\s+TEMP(ORARY)?\s+TABLE\b", re.I)


def ddl_statements(lines: list[str]) -> list[str]:
    """The schema-changing statements of a statement log."""
    return [line for line in lines if DDL.match(line) and not TEMP_TABLE.match(line)]


def read_log(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class _Log:
    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed at exit)
        self._lock = threading.Lock()

    def write(self, statement: Any, context: Any = None) -> None:
        if isinstance(statement, bytes | bytearray | memoryview):
            text = bytes(statement).decode("utf-8", "replace")
        elif isinstance(statement, str):
            text = statement
        else:  # a psycopg sql.Composable
            text = statement.as_string(context)
        with self._lock:
            self._file.write(" ".join(text.split()) + "\n")
            self._file.flush()


def _wrap(owner: type, name: str, log: _Log, context: Callable[[Any], Any]) -> None:
    original = getattr(owner, name)

    def recorded(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        log.write(query, context(self))
        return original(self, query, *args, **kwargs)

    setattr(owner, name, recorded)


def install(path: str) -> None:
    """Record every statement the drivers send from now on."""
    import psycopg
    import pymysql.connections

    log = _Log(path)
    _wrap(pymysql.connections.Connection, "query", log, lambda conn: conn)
    for method in ("execute", "executemany", "copy"):
        _wrap(psycopg.Cursor, method, log, lambda cursor: cursor.connection)
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(log.write)
        return conn

    sqlite3.connect = traced_connect  # type: ignore[assignment]


def main() -> None:
    log_path, *args = sys.argv[1:]
    install(log_path)
    from target_dap_sql.target import cli

    sys.argv = ["target-dap-sql", *args]
    cli()


if __name__ == "__main__":
    main()
