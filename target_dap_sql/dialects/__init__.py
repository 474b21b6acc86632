"""Database dialects. `dialect_for_url` picks one from the `sqlalchemy_url` setting."""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from target_dap_sql.dialects.base import Batch, Dialect
from target_dap_sql.dialects.urls import ENCODING_HINT, url_password, url_refusal
from target_dap_sql.errors import ConfigError

__all__ = ["Batch", "Dialect", "dialect_for_url", "url_password"]

#: URL scheme (before any `+driver`) → (module, class) of its dialect. Adding a database means
#: a module with a Dialect subclass, a line here and its entry in the contract test's cases,
#: tests/integration/dialect_cases.py (see CONTRIBUTING.md).
DIALECTS: dict[str, tuple[str, str]] = {
    "sqlite": ("target_dap_sql.dialects.sqlite", "SqliteDialect"),
    "postgresql": ("target_dap_sql.dialects.postgresql", "PostgresDialect"),
    "postgres": ("target_dap_sql.dialects.postgresql", "PostgresDialect"),
    "mysql": ("target_dap_sql.dialects.mysql", "MySqlDialect"),
    "mariadb": ("target_dap_sql.dialects.mysql", "MySqlDialect"),
}


def _hint(url: str) -> str:
    password = url_password(url) or ""
    return ENCODING_HINT if any(c in password for c in "#/?@") else ""


def dialect_for_url(url: str) -> Dialect:
    """The dialect for a SQLAlchemy-style URL (the URL itself never appears in errors)."""
    refusal = url_refusal(url)
    if refusal:  # errors (and connection attempts) would show pieces of the password
        raise ConfigError(refusal)
    try:
        scheme = urlsplit(url).scheme.split("+", 1)[0].lower()
    except ValueError:
        scheme = ""
    if scheme not in DIALECTS:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise ConfigError(f"sqlalchemy_url has {shown}; expected sqlite:///PATH or "
                          "postgresql://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB")
    module, class_name = DIALECTS[scheme]
    # Imported on use: a run loads only its own database's driver.
    dialect_class = getattr(importlib.import_module(module), class_name)
    try:
        return dialect_class(url)
    except ConfigError as exc:
        raise ConfigError(f"{exc}{_hint(url)}") from None
