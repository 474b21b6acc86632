"""Refusals that protect a replica from a configuration mistake (stream maps, mappers, names)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from target_dap_sql.dialects import Dialect
from target_dap_sql.errors import InputError, SchemaError
from target_dap_sql.layout import TableLayout
from target_dap_sql.meta import Bookmark, MetaRow, bookmark_from_state, bookmark_of
from target_dap_sql.reader import Envelope
from target_dap_sql.sinks import StreamSink


def refuse_shared_source(stream: str, layout: TableLayout, previous: StreamSink | None,
                         sinks: Iterable[StreamSink]) -> None:
    """One DAP table, one bookmark and one meta row: two streams claiming the same DAP
    table (a stream map splitting it, or two aliases) would overwrite each other's."""
    if layout.dap is None:
        if previous is not None and previous.layout.dap is not None:
            raise InputError("the stream's SCHEMA lost its DAP provenance (no 'x-dap' "
                             "annotation): its rows would mix into the DAP replica of "
                             f"{previous.layout.dap.namespace}.{previous.layout.dap.table}",
                             stream=stream)
        return
    source = f"{layout.dap.namespace}.{layout.dap.table}"
    if previous is not None and previous.layout.dap is not None and (
            previous.layout.state_key != layout.state_key):
        raise InputError(f"the stream's DAP table changed from "
                         f"{previous.layout.dap.namespace}.{previous.layout.dap.table} to "
                         f"{source}", stream=stream)
    for other in sinks:
        if other.stream != stream and other.layout.dap is not None and (
                other.layout.state_key == layout.state_key):
            raise InputError(
                f"streams '{other.stream}' and '{stream}' both replicate DAP table {source}, "
                "whose bookmark and meta row can belong to one table only (send copies "
                "without the 'x-dap' annotation)", stream=stream)


def refuse_empty_swap(sink: StreamSink, envelope: Envelope, dialect: Dialect, allowed: bool
                      ) -> None:
    """A snapshot without records must not silently empty a table: only when the tap says
    the DAP table is empty (or the setting allows it) may it replace a table that has rows.
    Nor may it create one when the tap says it read rows: they were dropped on the way (a
    mapper), and the bookmark moving past them would lose them for good.
    """
    if sink.snapshot_records or envelope.source_rows == 0 or allowed:
        return
    dropped = envelope.source_rows is not None
    has_rows = dialect.live_table_has_rows(sink.layout)
    if not dropped and not has_rows:
        return
    said = (f"tap-dap read {envelope.source_rows:,} rows that never arrived here (a stream map "
            "or mapper dropped them)" if dropped else "nothing says the source table is empty")
    what = ("replace table '{}', which has rows," if has_rows else "create table '{}'").format(
        sink.layout.table)
    raise InputError(
        f"refusing to {what} by an empty snapshot (version {envelope.version}): {said}. The "
        "table is left as it was; set allow_empty_snapshots: true "
        "(TARGET_DAP_SQL_ALLOW_EMPTY_SNAPSHOTS) to allow it", stream=sink.stream)


def claim_names(dialect: Dialect, layout: TableLayout, owners: dict[str, str]) -> None:
    """Refuse, before anything is written, a stream whose table or enum type is already
    another stream's (`canvas-a__b` and `canvas__a-b` both make SQLite `canvas__a__b`;
    PostgreSQL cuts names at 63 bytes): their rows would merge silently. `owners` maps each
    database object name claimed so far to its stream."""
    for name in sorted(dialect.object_names(layout)):
        owner = owners.setdefault(name, layout.stream)
        if owner != layout.stream:
            raise SchemaError(
                f"streams '{owner}' and '{layout.stream}' would both write {name!r} in the "
                "database; rename one (stream maps `__alias__`) or give it its own "
                "default_target_schema", stream=layout.stream)


def refuse_foreign_meta_row(layout: TableLayout, meta_rows: Mapping[tuple[str, str], MetaRow],
                            dialect: Dialect) -> None:
    """A table another (namespace, table) already replicates into: a DAP table of another
    name, or a stream without DAP provenance (another tap's, or tap-dap's after flattening or a
    map changing its key), whose rows would mix into the replica its meta row vouches for.
    Compared as the database names tables (SQLite's `canvas__users` is schema `canvas`, table
    `users`, and also a stream `canvas__users`'s table)."""
    meta_table = dialect.meta_table_label
    for (namespace, table), row in meta_rows.items():
        if not writes_table_of(dialect, layout, row):
            continue
        if layout.dap is None:
            raise SchemaError(
                f"table {row.target_table!r} replicates DAP table {namespace}.{table} "
                f"({meta_table}); refusing to write this stream, which has no DAP provenance "
                "(no 'x-dap' annotation), into it: give it another name (stream maps "
                "`__alias__`) or its own default_target_schema", stream=layout.stream)
        if (namespace, table) != (layout.dap.namespace, layout.dap.table):
            raise SchemaError(
                f"table {row.target_table!r} already replicates {namespace}.{table} "
                f"({meta_table}); refusing to write "
                f"{layout.dap.namespace}.{layout.dap.table} into it", stream=layout.stream)


def writes_table_of(dialect: Dialect, layout: TableLayout, row: MetaRow) -> bool:
    """Whether the stream writes the table the meta row names."""
    return (dialect.table_object_name(row.target_schema or None, row.target_table)
            == dialect.table_object_name(layout.schema or None, layout.table))


def held_bookmark(dialect: Dialect, layout: TableLayout,
                  meta_rows: Mapping[tuple[str, str], MetaRow]) -> Bookmark | None:
    """How far the database holds the stream's DAP table in the stream's table (before the
    table is prepared): nothing when its meta row names another table (an alias or
    default_target_schema changed) or the table is gone (a meta row outlives a dropped table)."""
    if layout.dap is None:
        return None
    row = meta_rows.get((layout.dap.namespace, layout.dap.table))
    if row is None or not writes_table_of(dialect, layout, row) or not dialect.table_exists(
            layout):
        return None
    return bookmark_of(row)


#: MySQL keeps the meta row's timestamp to the second (`datetime`): a bookmark with fractions is
#: stored up to a second off.
_META_PRECISION = timedelta(seconds=1)


def refuse_chain_gap(sink: StreamSink, state: Any, meta_table: str) -> None:
    """Incremental changes continue a DAP table from the tap's bookmark (`state`, what the tap
    started from); the database must hold the table up to there. A state file used with
    another database (a new one, a restored backup, a deleted SQLite file) would otherwise leave
    a table of the changes alone, and a meta row vouching for all of it. Checked once per
    stream, before its first record or bookmark moves outside a snapshot."""
    sink.chain_checked = True
    layout = sink.layout
    since = bookmark_from_state(state, layout.state_key)
    if layout.dap is None or sink.in_snapshot or since is None:
        return
    held = sink.committed_bookmark
    if held is not None and held.timestamp + _META_PRECISION > since.timestamp:
        return
    position = (f"holds no replica of it in table '{layout.table}'" if held is None
                else f"holds it up to {held.timestamp.isoformat()}Z only")
    raise InputError(
        f"the input continues {layout.dap.namespace}.{layout.dap.table} from "
        f"{since.timestamp.isoformat()}Z (the tap's state), but this database {position} "
        f"({meta_table}): the changes in between would be missing. Continue from the "
        "database's own position (`target-dap-sql export-state` writes it as a state) or clear "
        "the stream's bookmark for a new snapshot", stream=sink.stream)
