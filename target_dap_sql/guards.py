"""Refusals that protect a replica from a configuration mistake (stream maps, mappers, names)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from target_dap_sql.dialects import Dialect
from target_dap_sql.errors import InputError, SchemaError
from target_dap_sql.layout import TableLayout
from target_dap_sql.meta import MetaRow
from target_dap_sql.reader import Envelope
from target_dap_sql.sinks import StreamSink


def refuse_shared_source(stream: str, layout: TableLayout, previous: StreamSink | None,
                         sinks: Iterable[StreamSink]) -> None:
    """One DAP table, one bookmark and one meta row: two streams claiming the same DAP
    table (a stream map splitting it, or two aliases) would overwrite each other's."""
    if layout.dap is None:
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
                            meta_table: str) -> None:
    """A DAP table whose name another (namespace, table) already replicates into."""
    assert layout.dap is not None
    for (namespace, table), row in meta_rows.items():
        same_target = ((row.target_schema or None) == (layout.schema or None)
                       and row.target_table == layout.table)
        if same_target and (namespace, table) != (layout.dap.namespace, layout.dap.table):
            raise SchemaError(
                f"table {row.target_table!r} already replicates {namespace}.{table} "
                f"({meta_table}); refusing to write "
                f"{layout.dap.namespace}.{layout.dap.table} into it", stream=layout.stream)
