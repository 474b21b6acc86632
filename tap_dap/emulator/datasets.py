"""Datasets: ``empty``, ``canvas`` (packaged schemas derived from the Canvas ERD, synthetic rows)
and fixture directories (``DIR/<ns>/<table>/schema.json`` + ``changes.jsonl``)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tap_dap.emulator.changes import LATEST_TS, ChangeLine, commit_lines, parse_lines
from tap_dap.emulator.clock import Clock, format_ts, parse_ts
from tap_dap.emulator.errors import DatasetError
from tap_dap.emulator.rows import RowGenerator
from tap_dap.emulator.schema import TableSchema
from tap_dap.emulator.store import Store, Table
from tap_dap.emulator.values import NULL_SHARE

DATASETS = ("canvas", "empty")


@dataclass(frozen=True)
class DatasetOptions:
    dataset: str = "canvas"
    data_dir: Path | None = None
    rows: int = 100
    seed: int = 0
    tables: tuple[str, ...] = ()
    #: None: the wall clock; "data": just after the latest recorded change; else an ISO timestamp
    clock_start: str | None = None
    #: Share of NULLs in nullable columns of generated rows (DAP leaves them out of its JSON)
    null_share: float = NULL_SHARE


def canvas_schemas() -> dict[str, dict[str, Any]]:
    raw = resources.files("tap_dap.emulator").joinpath("data/canvas_schemas.json.gz").read_bytes()
    return json.loads(gzip.decompress(raw))


def build_store(options: DatasetOptions, clock: Clock | None = None) -> Store:
    clock = clock or Clock()
    store = Store(clock, options.seed)
    if options.dataset not in DATASETS:
        raise DatasetError(
            f"--dataset must be one of {', '.join(DATASETS)}, got {options.dataset!r}"
        )
    if options.rows < 0:
        raise DatasetError("--rows must be >= 0")
    if not 0.0 <= options.null_share <= 1.0:
        raise DatasetError(f"--null-share must be between 0 and 1, got {options.null_share}")
    if options.data_dir is not None:
        _load_fixtures(store, options)
    if options.clock_start is not None:
        _start_clock(clock, options.clock_start)
    base_ts = clock.tick()
    if options.dataset == "canvas":
        for namespace, tables in canvas_schemas().items():
            for name, document in tables.items():
                if namespace in store.tables and name in store.tables[namespace]:
                    continue  # a fixture of the same name wins
                where = f"{namespace}.{name}"
                schema = TableSchema(where, document, ts=0)
                generator = RowGenerator(options.seed, where, schema, options.rows,
                                         options.null_share)
                table = Table(namespace, name, schema, generator, options.rows, base_ts)
                table.live = options.rows
                store.add(table)
    _restrict(store, options.tables)
    return store


def _restrict(store: Store, wanted: tuple[str, ...]) -> None:
    if not wanted:
        return
    keep: set[tuple[str, str]] = set()
    for item in wanted:
        namespace, _, name = item.rpartition(".")
        matches = [
            (ns, t) for ns, tables in store.tables.items() for t in tables
            if t == name and (not namespace or ns == namespace)
        ]
        if not matches:
            raise DatasetError(f"--tables: no table named {item!r} in this dataset")
        keep.update(matches)
    for namespace in list(store.tables):
        for name in list(store.tables[namespace]):
            if (namespace, name) not in keep:
                del store.tables[namespace][name]
        if not store.tables[namespace]:
            del store.tables[namespace]


def _load_fixtures(store: Store, options: DatasetOptions) -> None:
    root = options.data_dir
    assert root is not None
    if not root.is_dir():
        raise DatasetError(f"--data {root}: not a directory")
    found = 0
    for schema_path in sorted(root.glob("*/*/schema.json")):
        namespace, name = schema_path.parent.parent.name, schema_path.parent.name
        store.add(_load_table(store, namespace, name, schema_path, options))
        found += 1
    if not found:
        raise DatasetError(f"--data {root}: no <namespace>/<table>/schema.json found")


def _load_table(store: Store, namespace: str, name: str, schema_path: Path,
                options: DatasetOptions) -> Table:
    try:
        versioned = json.loads(schema_path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{schema_path}: not readable JSON ({exc})") from None
    if not isinstance(versioned, dict) or set(versioned) != {"schema", "version"} \
            or not isinstance(versioned["version"], int):
        raise DatasetError(f"{schema_path}: expected a VersionedSchema {{\"schema\", \"version\"}}")
    where = f"{namespace}.{name}"
    schema = TableSchema(str(schema_path), versioned["schema"], versioned["version"], ts=0)
    schema.where = where
    generator = RowGenerator(options.seed, where, schema, options.rows, options.null_share)
    table = Table(namespace, name, schema, generator)
    changes_path = schema_path.parent / "changes.jsonl"
    if changes_path.exists():
        for ts in commit_lines(table, _read_changes(table, changes_path)):
            store.clock.observe(ts)
    return table


def _start_clock(clock: Clock, start: str) -> None:
    if start == "data":
        if clock.last:  # no recorded change: the wall clock is as good a start as any
            clock.start_at(clock.last + 1)
        return
    try:
        ts = parse_ts(start)
    except ValueError as exc:
        raise DatasetError(f"--clock-start must be 'data' or an ISO 8601 timestamp with a time "
                           f"zone ({exc})") from None
    if ts >= LATEST_TS:
        raise DatasetError(f"--clock-start must be before {format_ts(LATEST_TS)}")
    if ts <= clock.last:
        raise DatasetError(f"--clock-start {start} is not after the latest recorded change "
                           f"({format_ts(clock.last)}); a replay cannot start before its data")
    clock.start_at(ts)


def _read_changes(table: Table, path: Path) -> list[ChangeLine]:
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_lines(table, ((f"{path}:{n}", text) for n, text in enumerate(handle, 1)),
                               require_ts=True)
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8") from None
