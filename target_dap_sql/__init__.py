"""target-dap-sql: a Singer target that replicates DAP tables into SQLite, PostgreSQL and
MariaDB/MySQL."""

from target_dap_sql.errors import (
    ConfigError,
    DatabaseError,
    InputError,
    MissingKeyPropertyError,
    RecordBeforeSchemaError,
    SchemaError,
    TargetDapSQLError,
)
from target_dap_sql.layout import SqlType, TableLayout, build_layout
from target_dap_sql.meta import MetaRow

__all__ = [
    "ConfigError",
    "DatabaseError",
    "InputError",
    "MetaRow",
    "MissingKeyPropertyError",
    "RecordBeforeSchemaError",
    "SchemaError",
    "SqlType",
    "TableLayout",
    "TargetDapSQL",
    "TargetDapSQLError",
    "build_layout",
]


def __getattr__(name: str) -> object:
    # Lazy: importing the SDK target class is slow and not needed by the layout helpers.
    if name == "TargetDapSQL":
        from target_dap_sql.target import TargetDapSQL

        return TargetDapSQL
    raise AttributeError(name)
