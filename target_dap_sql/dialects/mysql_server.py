"""The MySQL/MariaDB server side of the dialect: connect() arguments from the URL, the server
versions and the database character set it needs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from target_dap_sql.errors import ConfigError, DatabaseError

MIN_MARIADB = (10, 5)
MIN_MYSQL = (8, 0)
#: Tables take the database's default character set; only utf8mb4 holds all DAP text (emoji…).
CHARSET = "utf8mb4"


def mysql_params(url: str) -> dict[str, Any]:
    """PyMySQL connect() arguments of `mysql://USER:PASSWORD@HOST:PORT/DB[?ssl=require]`."""
    parts = urlsplit(url)
    if parts.scheme.split("+", 1)[0].lower() not in ("mysql", "mariadb"):
        raise ConfigError(f"not a MySQL URL (scheme {parts.scheme!r})")
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError("sqlalchemy_url: a MySQL URL needs a database name "
                          "(mysql://USER@HOST:PORT/DATABASE)")
    try:
        port = parts.port or 3306
    except ValueError:  # its text may quote part of the password
        raise ConfigError("sqlalchemy_url is not a valid MySQL URL (its port is not a "
                          "number)") from None
    params: dict[str, Any] = {
        "host": parts.hostname or "localhost", "port": port,
        "user": unquote(parts.username or "root"), "password": unquote(parts.password or ""),
        "database": database, "charset": "utf8mb4", "autocommit": False,
        "connect_timeout": 15,
    }
    ssl = parse_qs(parts.query).get("ssl", [""])[0]
    if ssl in ("require", "verify-ca", "verify-full"):
        params["ssl"] = {"check_hostname": ssl == "verify-full"}
    return params


def server_version(text: str) -> tuple[str, tuple[int, int]]:
    """("MariaDB" | "MySQL", (major, minor)) of a `SELECT VERSION()` answer."""
    m = re.match(r"(\d+)\.(\d+)", text)
    numbers = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return ("MariaDB" if "mariadb" in text.lower() else "MySQL"), numbers


def check_server_version(text: str) -> None:
    """Refuse servers without atomic multi-table RENAME, JSON and CHECK semantics we rely on."""
    family, version = server_version(text)
    minimum = MIN_MARIADB if family == "MariaDB" else MIN_MYSQL
    if version < minimum:
        raise DatabaseError(
            f"{family} {text} is not supported: target-dap-sql needs MariaDB "
            f"{'.'.join(map(str, MIN_MARIADB))} or later, or MySQL "
            f"{'.'.join(map(str, MIN_MYSQL))} or later")


def charset_error(database: str, charset: str) -> DatabaseError:
    """The one line refusing a database whose default character set cannot hold DAP text."""
    name = "`" + database.replace("`", "``") + "`"
    return DatabaseError(
        f"MySQL database {database!r} has the default character set {charset}, which cannot "
        f"hold all DAP text; create it with CREATE DATABASE {name} CHARACTER SET {CHARSET} "
        f"COLLATE {CHARSET}_bin (or, while it has no tables, ALTER DATABASE {name} "
        f"CHARACTER SET {CHARSET} COLLATE {CHARSET}_bin)")
