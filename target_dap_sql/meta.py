"""The `instructure_dap` meta tables: what the official replicator keeps about each DAP table.

Row contents match the official client (docs/database-layout.md, Meta tables) so a database can move
between the `dap` CLI and this target in both directions: `timestamp` = the stream's bookmark as
naive UTC, `schema_version`, `target_schema`/`target_table` unprefixed, `schema_description` =
compact JSON of the DAP schema without `properties.meta`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from target_dap_sql.layout import TableLayout

META_NAMESPACE = "instructure_dap"
DATABASE_VERSION = 1

# Comment texts of the official meta tables, as they appear in a database it created.
TABLE_SYNC_COMMENT = (
    "Table for storing meta-information about tables managed by the client library."
)
DATABASE_VERSION_COMMENT = (
    "Table for storing meta-information about the database schema version."
)
DATABASE_VERSION_COLUMN_COMMENT = "The version of the database schema."
TABLE_SYNC_COLUMN_COMMENTS: dict[str, str] = {
    "source_namespace": "The namespace of the source table exposed by DAP API (e.g. `canvas`).",
    "source_table": "The name of the source table exposed by DAP API (e.g. `accounts`).",
    "timestamp": "The timestamp of the source table that can be used by the client library in "
    "incremental queries during subsequent `syncdb` command executions.",
    "schema_version": "The latest schema version of the source table at the time point when it "
    "was last initialized or synchronized with the DAP API.",
    "target_schema": "The name of the target schema in the local database if applicable (e.g. in "
    "case of a PostgreSQL database the tables can be grouped into schemas).",
    "target_table": "The name of the target table in the local database. In might differ from "
    "the name of the source table. For example in case of a MySQL database, the tables cannot be "
    "grouped in schemas. In this case, the implementor can use a prefix that reflects the "
    "namespace of the source table. For example, the qualified name `canvas.accounts` would "
    "become `canvas__accounts`.",
    "schema_description_format": "The format of the schema descriptor (e.g. `json`).",
    "schema_description": "The latest schema descriptor of the source table at the time point "
    "when it was initialized or last synchronized.",
}


@dataclass(frozen=True)
class Bookmark:
    """The part of a stream's Singer STATE bookmark that the meta row records."""

    timestamp: datetime  # naive UTC
    schema_version: int | None

    def as_state_entry(self) -> dict[str, Any]:
        """The Singer bookmark the tap would write for this point (`…Z`, DAP's format)."""
        entry: dict[str, Any] = {"timestamp": self.timestamp.isoformat() + "Z"}
        if self.schema_version is not None:
            entry["schema_version"] = self.schema_version
        return entry


@dataclass(frozen=True)
class MetaRow:
    source_namespace: str
    source_table: str
    timestamp: datetime  # naive UTC
    schema_version: int
    target_schema: str | None
    target_table: str
    schema_description: str
    schema_description_format: str = "json"


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp into naive UTC (an offset-less value is taken as UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def bookmark_from_state(state: Any, stream: str) -> Bookmark | None:
    """The DAP bookmark of a stream in a Singer state, or None if it has none (or is unusable)."""
    if not isinstance(state, dict):
        return None
    entry = (state.get("bookmarks") or {}).get(stream)
    if not isinstance(entry, dict) or not isinstance(entry.get("timestamp"), str):
        return None
    try:
        timestamp = parse_timestamp(entry["timestamp"])
    except ValueError:
        return None
    version = entry.get("schema_version")
    return Bookmark(timestamp, version if isinstance(version, int) else None)


def bookmark_of(row: MetaRow) -> Bookmark:
    return Bookmark(row.timestamp, row.schema_version)


def meta_row_for(layout: TableLayout, bookmark: Bookmark) -> MetaRow:
    """The meta row of a DAP table whose data is committed up to `bookmark`."""
    assert layout.dap is not None
    return MetaRow(
        source_namespace=layout.dap.namespace,
        source_table=layout.dap.table,
        timestamp=bookmark.timestamp,
        schema_version=bookmark.schema_version or layout.dap.version,
        target_schema=layout.schema,
        target_table=layout.table,
        schema_description=layout.dap.schema_description,
    )
