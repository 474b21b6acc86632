"""The target's settings (its config JSON schema, shown by `target-dap-sql --about`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from singer_sdk import typing as th

from target_dap_sql.errors import ConfigError

#: Record worker processes at most: more only adds interpreters competing for the same cores.
MAX_WORKERS = 64

CONFIG_JSONSCHEMA = th.PropertiesList(
    th.Property("sqlalchemy_url", th.StringType, secret=True, default="sqlite:///dap.db",
                title="Database URL",
                description="sqlite:///PATH (default: dap.db in the working directory) or "
                "postgresql://USER:PASSWORD@HOST:PORT/DB (postgresql+psycopg:// also works) or "
                "mysql://USER:PASSWORD@HOST:PORT/DB (MariaDB >= 10.5, MySQL >= 8.0)."),
    th.Property("default_target_schema", th.StringType,
                description="Schema (PostgreSQL) or table prefix (SQLite, MariaDB/MySQL) for "
                "every stream, instead of the DAP namespace / the stream name's prefix."),
    th.Property("enum_type", th.StringType, default="native", allowed_values=["native", "text"],
                description="DAP enums as native enum types (official layout) or as text."),
    th.Property("batch_size_rows", th.IntegerType, default=50_000,
                description="Commit a stream with its meta row (moving its bookmark) once "
                "it buffers this many distinct keys; rows load in slices of 10,000 in "
                "between, moving no bookmark."),
    # a number or a numeric string: see NUMBER_OR_NUMERIC_STRING in tap_dap/settings.py
    th.Property("batch_max_seconds", th.CustomType({
        "type": ["number", "string"], "pattern": r"^\s*[0-9]*\.?[0-9]+\s*$"}), default=60,
                description="Commit all streams and emit STATE at least this often."),
    th.Property("validate_records", th.BooleanType, default=True,
                description="Check enums, maxLength and integer ranges while decoding "
                "(cheap). Types and key properties are always checked."),
    th.Property("hard_delete", th.BooleanType, default=True,
                description="Delete rows on DAP deletes; false sets _sdc_deleted_at instead."),
    th.Property("drop_removed_columns", th.BooleanType, default=False,
                description="Drop columns that vanished from the schema (default: keep)."),
    th.Property("add_record_metadata", th.BooleanType, default=False,
                description="Add _sdc_deleted_at and _sdc_batched_at columns."),
    th.Property("allow_empty_snapshots", th.BooleanType, default=False,
                description="Let a snapshot with no records replace a table that has rows "
                "even when tap-dap did not report the DAP table as empty (e.g. a mapper "
                "dropped or filtered every record). Default: refuse, leaving the table as "
                "it was."),
    th.Property("sanitize_null_characters", th.BooleanType, default=False,
                description="PostgreSQL cannot store NUL (U+0000) in text or JSON: replace "
                "it with U+FFFD instead of stopping with an error naming the line, stream, "
                "column and key. SQLite and MySQL store NUL as it is."),
    th.Property("workers", th.IntegerType,
                description="Processes that decode and encode records in parallel, for "
                "streams of at least 30,000 records into PostgreSQL (default: the cores this "
                "process may use, or 1 with fewer than 3 cores; 1: decode in the target's own "
                "process; at most 64)."),
).to_dict()


@dataclass(frozen=True)
class BatchLimits:
    """When to commit, and how many record workers (None: the machine's default)."""

    rows: int
    seconds: float
    workers: int | None

    @classmethod
    def from_config(cls, config: Any) -> BatchLimits:
        # Settings that would mean "never commit" or "commit nothing" are refused, not clamped.
        # In this order: `workers` is read only once the batch settings passed.
        rows = config.get("batch_size_rows")
        seconds = config.get("batch_max_seconds")
        batch_rows = 50_000 if rows is None else int(rows)
        batch_seconds = float(60 if seconds is None else seconds)
        if batch_rows < 1:
            raise ConfigError(f"setting batch_size_rows must be at least 1, got {rows!r}")
        if batch_seconds < 0:
            raise ConfigError(f"setting batch_max_seconds must not be negative, got {seconds!r}")
        workers = config.get("workers")
        count = None if workers is None else int(workers)
        if count is not None and not 1 <= count <= MAX_WORKERS:
            raise ConfigError(f"setting workers must be from 1 to {MAX_WORKERS}, got {workers!r}")
        return cls(batch_rows, batch_seconds, count)
