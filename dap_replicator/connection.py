"""DatabaseConnection: which database to replicate into, by URL (the official class's name).

Accepts the URLs target-dap-sql does: ``sqlite:///PATH``, ``postgresql://USER:PASSWORD@HOST:PORT/DB``
and ``mysql://…`` (MariaDB/MySQL). Every operation opens its own connection from it, so one
DatabaseConnection may serve several threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

from dap_replicator.errors import DatabaseConnectionError
from target_dap_sql.dialects import Dialect, dialect_for_url, url_password
from target_dap_sql.dialects.sqlite import sqlite_path
from target_dap_sql.dialects.urls import QUERY_PASSWORD
from target_dap_sql.errors import TargetDapSQLError

#: Read when no connection string is given, as by the official client and the `dap` CLI.
CONNECTION_STRING_VARIABLE = "DAP_CONNECTION_STRING"


class DatabaseConnection:
    """``DatabaseConnection("postgresql://user:pass@host/db")``; no argument: the
    ``DAP_CONNECTION_STRING`` environment variable."""

    def __init__(self, connection_string: str | None = None) -> None:
        if connection_string is None:
            connection_string = os.environ.get(CONNECTION_STRING_VARIABLE)
            if not connection_string:
                raise DatabaseConnectionError(
                    "missing database connection string: pass one to DatabaseConnection() or "
                    f"set {CONNECTION_STRING_VARIABLE}"
                )
        self._url = connection_string
        dialect = self.open_dialect()  # checks the URL now; connects only on first use
        self.dialect: str = dialect.name
        dialect.close()
        if self.dialect == "sqlite" and sqlite_path(connection_string) == ":memory:":
            # Every call opens its own connection: what one wrote would vanish when it closes.
            raise DatabaseConnectionError(
                f"database connection string {connection_string!r}: an in-memory SQLite "
                "database cannot hold a replica (each call opens its own connection); "
                "use sqlite:///PATH")

    @classmethod
    def from_config(cls, config: DatabaseConnectionConfig) -> DatabaseConnection:
        return cls(config.connection_string())

    @property
    def url(self) -> str:
        """The connection string, password included (for target-dap-sql's settings only)."""
        return self._url

    def open_dialect(self) -> Dialect:
        """A new target-dap-sql dialect for this database (the caller closes it)."""
        try:
            return dialect_for_url(self._url)
        except TargetDapSQLError as exc:
            raise DatabaseConnectionError(f"database connection string: {exc}") from None

    def __repr__(self) -> str:
        return f"DatabaseConnection({redacted(self._url)!r})"


def redacted(url: str) -> str:
    """The URL with its passwords (userinfo, `password=` query parameters) replaced by ``***``."""
    password = url_password(url)
    if password:
        scheme, _, rest = url.partition("://")
        userinfo, _, hostpart = rest.rpartition("@")
        user = userinfo.split(":", 1)[0]
        url = f"{scheme}://{user}:***@{hostpart}"
    return QUERY_PASSWORD.sub(r"\1***", url)


@dataclass(frozen=True, repr=False)
class DatabaseConnectionConfig:
    """The official library's keyword form; missing parts come from ``DAP_DATABASE_*``
    variables (HOST, PORT, USERNAME, PASSWORD, NAME), as there."""

    dialect: str
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    database: str | None = None

    def connection_string(self) -> str:
        env = os.environ.get
        host = self.host or env("DAP_DATABASE_HOST") or "localhost"
        port = self.port or env("DAP_DATABASE_PORT")
        user = self.username or env("DAP_DATABASE_USERNAME") or ""
        password = self.password or env("DAP_DATABASE_PASSWORD")
        database = self.database or env("DAP_DATABASE_NAME") or ""
        userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
        return f"{self.dialect}://{netloc}/{quote(database, safe='')}"

    def __repr__(self) -> str:
        return (f"DatabaseConnectionConfig(dialect={self.dialect!r}, host={self.host!r}, "
                f"port={self.port!r}, username={self.username!r}, database={self.database!r})")
