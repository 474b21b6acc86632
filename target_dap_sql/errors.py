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


def undecodable(data: bytes | str | memoryview | object, exc: Exception, unit: str) -> str:
    """Why a JSON decoder refused ``data``, worded the same whatever the msgspec version.

    msgspec up to 0.22 raised UnicodeDecodeError for bytes that are not UTF-8; 0.23 raises a
    DecodeError ("Invalid UTF-8 encoded string") that names neither byte nor offset. Checking the
    bytes ourselves gives one message that names both (this only runs on the error path).
    ``unit`` says what the 1-based byte position counts in ("line", "record").
    """
    if not isinstance(data, str):
        try:
            bytes(memoryview(data)).decode("utf-8")  # type: ignore[arg-type]
        except UnicodeDecodeError as bad:
            return (f"not valid UTF-8 (byte 0x{bad.object[bad.start]:02x} at byte {bad.start + 1} "
                    f"of the {unit})")
        except TypeError:
            pass
    return f"not valid JSON: {exc}"
