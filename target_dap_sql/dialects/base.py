"""The dialect interface (everything that differs between SQLite, PostgreSQL and MySQL) and the
helpers the dialects share.

A dialect owns one database connection. The loader (sinks.py) calls, per stream: `prepare_table`
once per SCHEMA (create or evolve the table — never per batch), then `write_batch` per batch, which
applies upserts, deletes and the optional meta-row update in ONE transaction. Snapshots load into
a staging table (`create_staging`) and `swap_staging` replaces the live table atomically.
connection.py implements the transaction and loading paths the dialects share.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec

from target_dap_sql.decoding import Converters, Decoded
from target_dap_sql.errors import SchemaError
from target_dap_sql.layout import BATCHED_AT, DELETED_AT, Column, SqlType, TableLayout
from target_dap_sql.meta import MetaRow

logger = logging.getLogger("target_dap_sql")

STAGING_SUFFIX = "__dap_staging"

#: Type widenings applied by schema evolution (old kind → kinds it may become without data loss).
WIDENINGS = {
    "smallint": {"integer", "bigint"},
    "integer": {"bigint"},
    "real": {"double"},
    "varchar": {"text"},
    "char": {"varchar", "text"},
}
#: Columns of the table_sync meta table that a meta row fills (`id` is generated), in order.
META_COLUMNS = ("source_namespace", "source_table", "timestamp", "schema_version",
                "target_schema", "target_table", "schema_description_format",
                "schema_description")

#: The columns the target adds itself (`_sdc_*` properties of those names are left out).
_TARGET_COLUMNS = frozenset({DELETED_AT, BATCHED_AT})

_JSON_DECODE = msgspec.json.Decoder().decode
_JSON_ENCODE = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Batch:
    """One deduplicated batch of a stream: the last action per key, split by kind."""

    upserts: Sequence[Any]
    deletes: Sequence[Any]  # full rows (key + `_sdc_deleted_at` matter) of deleted keys
    #: The rows are what the dialect's row codec encoded (bytes), not tuples of values.
    encoded: bool = False
    #: The keys of `upserts` and of `deletes`, in their order (encoded rows do not show them).
    keys: tuple[Sequence[Any], Sequence[Any]] | None = None

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes)


def quote(name: str) -> str:
    """Quote an identifier (the official layout always quotes, preserving case)."""
    return '"' + name.replace('"', '""') + '"'


def key_change_error(stream: str, old: Sequence[str], new: Sequence[str]) -> SchemaError:
    """Re-keying a replica in place could merge or split rows, so a key change is refused."""
    return SchemaError(f"key_properties changed from {list(old)} to {list(new)}: the table's "
                       "primary key cannot change; drop the table to reload it with the new key",
                       stream=stream)


def check_primary_key(layout: TableLayout, existing_key: Sequence[str]) -> None:
    """Refuse a layout whose key differs from the primary key of the table already there."""
    if sorted(existing_key) != sorted(layout.key_columns):
        raise key_change_error(layout.stream, existing_key, layout.key_columns)


ValueT = TypeVar("ValueT")


@dataclass(frozen=True)
class ColumnNaming:
    """How a database tells column names apart: `key` makes the names it takes for one column
    equal (SQLite and MySQL ignore case, PostgreSQL keeps a name's first 63 bytes); `rule`
    says so in an error."""

    key: Callable[[str], str]
    rule: str

    def existing_as_layout(self, layout: TableLayout,
                           existing: Mapping[str, ValueT]) -> dict[str, ValueT]:
        """The `existing` columns under the layout's names where the database takes them for
        the same column: read back as stored (`Name` for the layout's `name`, or cut short),
        such a column looked new (ADD COLUMN failed; with `drop_removed_columns` it was dropped
        and added again, empty, each run). Two layout columns it would take for one are
        refused."""
        names: dict[str, str] = {}
        for column in layout.columns:
            key = self.key(column.name)
            if key in names:
                raise SchemaError(f"properties '{names[key]}' and '{column.name}' would be one "
                                  f"column: {self.rule}; rename one (a stream map)",
                                  stream=layout.stream)
            names[key] = column.name
        found: dict[str, ValueT] = {}
        for name, stored in existing.items():
            as_layout = names.get(self.key(name), name)
            if as_layout in _TARGET_COLUMNS and as_layout != name:
                # A property's column (`_SDC_DELETED_AT`, data) must not become the target's
                # own: its values would read as deletion times, the rows as deleted.
                raise SchemaError(f"column '{name}' of the table would be the target's own "
                                  f"'{as_layout}': {self.rule}; rename or drop that column",
                                  stream=layout.stream)
            found[as_layout] = stored
        return found

    def key_as_layout(self, layout: TableLayout, stored_key: Sequence[str]) -> list[str]:
        """A stored primary key's column names under the layout's names."""
        names = {self.key(c.name): c.name for c in layout.columns}
        return [names.get(self.key(name), name) for name in stored_key]


def shortened(name: str, limit: int, tag: str = "") -> str:
    """``name`` if it fits ``limit`` bytes, else a deterministic shortening that stays unique:
    its head, ``tag`` and 10 hex digits of its SHA-1."""
    if len(name.encode()) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    head = name.encode()[:limit - len(tag.encode()) - len(digest) - 1].decode(errors="ignore")
    return f"{head}{tag}_{digest}"


def prefixed_name(schema: str | None, table: str) -> str:
    """`<schema>__<table>`: the official name where tables cannot be grouped in schemas."""
    return f"{schema}__{table}" if schema else table


def prefixed_table_name(layout: TableLayout, table: str | None = None) -> str:
    """The layout's table (or `table` of its schema) named `<schema>__<table>`."""
    return prefixed_name(layout.schema, table or layout.table)


def primary_key_clause(layout: TableLayout, table: str) -> str | None:
    """The `CONSTRAINT "pk_<table>" PRIMARY KEY (…)` clause of a CREATE TABLE, None if keyless."""
    if not layout.key_columns:
        return None
    keys = ", ".join(map(quote, layout.key_columns))
    return f"CONSTRAINT {quote('pk_' + table)} PRIMARY KEY ({keys})"


def compact_json_text(raw: msgspec.Raw) -> str | None:
    """JSON re-encoded compactly with non-ASCII kept, as the official replicator stores it.

    The stored text then does not depend on how the tap formatted it (MariaDB and SQLite keep
    JSON text verbatim).
    """
    value = _JSON_DECODE(raw)
    return None if value is None else _JSON_ENCODE(value).decode()


def strip_nulls(value: Any) -> Any:
    """JSON without null object members, at every depth (PostgreSQL's jsonb_strip_nulls)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def nested_object_text(nullable: bool) -> Callable[[msgspec.Raw], str | None]:
    """Converter of a DAP nested object (fixed-cardinality struct) column to stored JSON text.

    DAP's tabular output omits null members and sends an object without any member as NULL, so
    `dap initdb` stores NULL for `{}` (docs/dap-wire.md, Records); doing the same here keeps the two
    tools' rows identical. A NOT NULL column keeps `{}` (NULL could not be stored).
    """
    def convert(raw: msgspec.Raw) -> str | None:
        value = strip_nulls(_JSON_DECODE(raw))
        if value is None or (value == {} and nullable):
            return None
        return _JSON_ENCODE(value).decode()

    return convert


def meta_row_sql(table: str, placeholder: str, where: str) -> tuple[str, str]:
    """(UPDATE … WHERE `where`, INSERT …) of a table_sync row; both take META_COLUMNS values first.

    table_sync has no unique key on the source table to upsert on (the official layout), so a
    row is updated where it exists and inserted otherwise.
    """
    sets = ", ".join(f"{quote(c)} = {placeholder}" for c in META_COLUMNS)
    update = f"UPDATE {table} SET {sets} WHERE {where}"
    insert = (f"INSERT INTO {table} ({', '.join(map(quote, META_COLUMNS))}) "
              f"VALUES ({', '.join([placeholder] * len(META_COLUMNS))})")
    return update, insert


def keep_deleted_rows_sql(layout: TableLayout, live: str, staging: str,
                          live_columns: Iterable[str], staged_columns: Container[str],
                          now: str) -> str:
    """The INSERT that copies into a snapshot's staging table the live rows the snapshot no
    longer has, marked deleted (`hard_delete: false`): a soft-deleting replica keeps the rows
    its source deleted, and a snapshot must not throw them away. `live` and `staging` are
    quoted names; the columns copied are those both tables have (staging is made like the live
    table, so all of the live table's).

    A key the snapshot has is live: the snapshot's row wins. A row keeps the `_sdc_deleted_at`
    it has, else gets `now` (SQL: the time of the swap). A keyless table cannot tell which old
    rows the snapshot repeats: all of them are kept, marked deleted (as SDK targets mark every
    row of an older table version).
    """
    columns = [name for name in live_columns if name in staged_columns]
    exprs = [f"COALESCE(l.{quote(name)}, {now})" if name == "_sdc_deleted_at"
             else f"l.{quote(name)}" for name in columns]
    sql = (f"INSERT INTO {staging} ({', '.join(map(quote, columns))}) "
           f"SELECT {', '.join(exprs)} FROM {live} l")
    if layout.key_columns:
        match = " AND ".join(f"s.{quote(k)} = l.{quote(k)}" for k in layout.key_columns)
        sql += f" WHERE NOT EXISTS (SELECT 1 FROM {staging} s WHERE {match})"
    return sql


def widened(old: SqlType, new: SqlType) -> SqlType | None:
    """The type an existing column should change to, or None to keep it as it is.

    Only widenings are applied: a narrower or incompatible new type keeps the old column so no
    stored value is lost or rejected.
    """
    if old == new:
        return None
    if old.kind == new.kind == "varchar":
        return new if (new.length or 0) > (old.length or 0) else None
    if new.kind in WIDENINGS.get(old.kind, set()):
        return new
    return None


class RowCodec(Protocol):
    """Decodes a layout's RECORD runs and encodes the rows as its dialect will load them, in a
    record worker process (target_dap_sql/workers.py). Picklable: it is sent to the workers."""

    def decode_run(self, lines: list[bytes]) -> Any:
        """Like `RecordDecoder.decode_run` (None: take them line by line), with the rows
        encoded and packed in whatever picklable form crosses a pipe cheaply."""

    def unpack(self, run: Any) -> list[Decoded]:
        """The (key, encoded row, is_delete) records of what `decode_run` returned."""

    def encode(self, decoded: list[Decoded]) -> list[Decoded]:
        """Rows `RecordDecoder.decode` gave, encoded as `unpack` gives them."""


class StoredColumn(Protocol):
    """What schema evolution needs to know of a column already in the table."""

    @property
    def not_null(self) -> bool: ...


StoredT = TypeVar("StoredT", bound=StoredColumn)


def evolution_clauses(layout: TableLayout, existing: Mapping[str, StoredT], drop_removed: bool,
                      *, add: Callable[[Column], str],
                      alter: Callable[[Column, StoredT], list[str]],
                      relax: Callable[[str, StoredT], str]) -> list[str]:
    """The ALTER TABLE clauses that evolve a table with `existing` columns to `layout`.

    Columns new in the layout are added (`add`) and kept ones adapted (`alter`: widenings,
    dropped NOT NULL). A column the schema no longer has is dropped only when asked; otherwise
    it stays with its data but loses NOT NULL (`relax`), since new rows will not fill it.
    """
    clauses: list[str] = []
    for column in layout.columns:
        current = existing.get(column.name)
        if current is None:
            clauses.append(add(column))
        else:
            clauses.extend(alter(column, current))
    for name, current in existing.items():
        if name in layout._by_name:
            continue
        if drop_removed:
            clauses.append(f"DROP COLUMN {quote(name)}")
        elif current.not_null:
            clauses.append(relax(name, current))
    return clauses


class Dialect(ABC):
    """One database connection plus the SQL of one database family.

    Everything that differs between databases is a method here: naming, decoding types, DDL and
    evolution, bulk load, upsert/delete, snapshot swap, meta rows, and what the admin commands
    need (listing, counting, dropping). Nothing outside target_dap_sql/dialects branches on the
    database or touches a connection. tests/integration/test_dialect_contract.py holds every
    dialect to the same behaviour.
    """

    name: str
    #: The table_sync meta table as messages name it (`instructure_dap.table_sync`, …).
    meta_table_label: str
    #: False where text and JSON values cannot hold NUL (U+0000) (PostgreSQL).
    stores_nul_characters: bool = True

    @abstractmethod
    def field_type(self, column: Column, layout: TableLayout) -> Any:
        """msgspec decode type of a column's values (see decoding.RecordDecoder)."""

    def converters(self, layout: TableLayout) -> Converters:
        """Per-column Python conversions after decoding; keep empty on fast paths."""
        return []

    def row_codec(self, layout: TableLayout) -> RowCodec | None:
        """What record worker processes decode and encode this layout's rows with, or None to
        decode in the target's own process (when shipping decoded rows back would cost more
        than decoding them). Called once the table is prepared."""
        return None

    @abstractmethod
    def connect(self) -> None:
        """Open the connection (raise DatabaseError naming host/file, never the password)."""

    @abstractmethod
    def close(self) -> None: ...

    def interrupt(self) -> None:  # noqa: B027 - a hook most dialects need not fill
        """On SIGTERM, before `close`: end the statement in flight at once where waiting for
        it (a row lock: the whole lock wait) would keep a terminated target alive. The
        connection is unusable after; the server rolls its transaction back."""

    @abstractmethod
    def ensure_meta_tables(self) -> None:
        """Create the instructure_dap meta tables and the database_version=1 row if missing."""

    @abstractmethod
    def prepare_table(self, layout: TableLayout, *, drop_removed_columns: bool) -> None:
        """Create the table (and enum types) or evolve it to the layout; commits the DDL."""

    @abstractmethod
    def write_batch(self, layout: TableLayout, batch: Batch, *, staging: bool,
                    meta: MetaRow | None) -> None:
        """Apply a batch (upserts, then deletes) and the meta row in ONE transaction."""

    @abstractmethod
    def settle(self) -> None:
        """Return once every batch handed to write_batch is committed (raise its error if one
        failed): a STATE line may then cover them."""

    @abstractmethod
    def update_meta(self, meta: MetaRow) -> None:
        """Upsert a meta row on its own (its data is already committed)."""

    @abstractmethod
    def create_staging(self, layout: TableLayout) -> None:
        """(Re)create the empty staging table of a snapshot, shaped like the live table."""

    @abstractmethod
    def swap_staging(self, layout: TableLayout, batch: Batch, meta: MetaRow | None) -> None:
        """Load the last batch into staging and replace the live table with it, atomically."""

    @abstractmethod
    def live_table_has_rows(self, layout: TableLayout) -> bool:
        """Whether the stream's live table holds at least one row."""

    @abstractmethod
    def table_exists(self, layout: TableLayout) -> bool:
        """Whether the stream's live table exists (a meta row may outlive a dropped table)."""

    @abstractmethod
    def read_meta_rows(self) -> list[MetaRow]:
        """All rows of the table_sync meta table in id order (empty when it does not exist)."""

    # --- administration (target-dap-sql list / drop) -----------------------------------------

    @abstractmethod
    def count_rows(self, schema: str | None, table: str) -> int | None:
        """Rows in a replicated table, None when the table does not exist."""

    @abstractmethod
    def drop_replica(self, meta: MetaRow) -> None:
        """Drop a replicated table: its table_sync row first (as the official dropdb does), then
        the table and its enum types. In that order a failure can leave an unregistered table,
        never a meta row claiming data that is gone (the next run would skip the snapshot)."""

    # --- names ------------------------------------------------------------------------------

    @abstractmethod
    def table_name(self, schema: str | None, table: str) -> str:
        """A replicated table's name inside its database schema (PostgreSQL) or its database
        (SQLite, MySQL: `<schema>__<table>`), unquoted."""

    @abstractmethod
    def qualified_name(self, schema: str | None, table: str) -> str:
        """The table as SQL names it: quoted, with its database schema where there are any."""

    @abstractmethod
    def container_name(self, schema: str | None) -> str:
        """What holds the table, as dbt's `schema` names it (schema, database or `main`)."""

    def staging_table(self, layout: TableLayout) -> str:
        """The snapshot staging table's name as `table_name` gives the live one's (in the same
        schema or database)."""
        return layout.table + STAGING_SUFFIX

    def object_names(self, layout: TableLayout) -> set[str]:
        """The database objects a stream writes, as the database names them (case folded
        where it ignores case): two streams that share one would merge their rows."""
        return {self.table_object_name(layout.schema, layout.table)}

    def table_object_name(self, schema: str | None, table: str) -> str:
        """A live table as `object_names` names it: one name, one table."""
        return prefixed_name(schema, table).lower()
