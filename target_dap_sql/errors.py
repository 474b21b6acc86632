"""The target's exception hierarchy.

Every error the target expects (bad input, bad configuration, unreachable database) is a
`TargetDapSQLError`; the CLI prints its message as one line and exits non-zero. The input errors
also subclass the SDK's own exception types so that the SDK's standard target tests recognise them.
"""

from __future__ import annotations

from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException


class TargetDapSQLError(Exception):
    """Base class of every error target-dap-sql raises on purpose."""


class ConfigError(TargetDapSQLError):
    """The configuration is unusable (for example a malformed `sqlalchemy_url`)."""


class DatabaseError(TargetDapSQLError):
    """The database refused an operation or cannot be reached."""


class InputError(TargetDapSQLError):
    """A Singer message is malformed or does not match its stream's schema.

    `line` is the 1-based input line number; the reader fills it in when the raiser did not know it.
    """

    def __init__(self, message: str, *, stream: str | None = None, line: int | None = None):
        super().__init__(message)
        self.detail = message
        self.stream = stream
        self.line = line

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.stream is not None:
            where.append(f"stream '{self.stream}'")
        return f"{', '.join(where)}: {self.detail}" if where else self.detail


class RecordBeforeSchemaError(InputError, RecordsWithoutSchemaException):
    """A RECORD (or ACTIVATE_VERSION) arrived for a stream that has had no SCHEMA yet."""


class MissingKeyPropertyError(InputError, MissingKeyPropertiesError):
    """A RECORD lacks one of its stream's key properties (or carries null in it)."""


class SchemaError(InputError):
    """A SCHEMA message cannot be mapped to a table."""
