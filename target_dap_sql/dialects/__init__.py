"""Database dialects. `dialect_for_url` picks one from the `sqlalchemy_url` setting."""

from __future__ import annotations

from urllib.parse import urlsplit

from target_dap_sql.dialects.base import Batch, Dialect
from target_dap_sql.errors import ConfigError

__all__ = ["Batch", "Dialect", "dialect_for_url"]


def dialect_for_url(url: str) -> Dialect:
    """The dialect for a SQLAlchemy-style URL (the URL itself never appears in errors)."""
    try:
        scheme = urlsplit(url).scheme.split("+", 1)[0].lower()
    except ValueError:
        scheme = ""
    if scheme == "sqlite":
        from target_dap_sql.dialects.sqlite import SqliteDialect

        return SqliteDialect(url)
    if scheme in ("postgresql", "postgres"):
        from target_dap_sql.dialects.postgresql import PostgresDialect

        try:
            return PostgresDialect(url)
        except ValueError as exc:  # e.g. a non-numeric port
            raise ConfigError(f"sqlalchemy_url is not a valid PostgreSQL URL: {exc}") from None
    if scheme in ("mysql", "mariadb"):
        from target_dap_sql.dialects.mysql import MySqlDialect

        return MySqlDialect(url)
    shown = f"scheme {scheme!r}" if scheme else "no scheme"
    raise ConfigError(f"sqlalchemy_url has {shown}; expected sqlite:///PATH or "
                      "postgresql://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB")
