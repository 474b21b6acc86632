"""Tables with a clock: a change log of record versions, snapshots, incrementals, reloads, windows.

A table is a range of lazily generated base rows (all committed at ``base_ts``) plus a change log of
commits. A commit holds record versions ``(index, action, gen, value)``: ``gen`` picks the synthetic
content of a generated row, ``value`` carries explicit content (fixtures). Only changed keys are
stored, so memory follows the number of changes, never the number of rows.

Semantics (docs/dap-wire.md, Endpoints; issue 3): a snapshot at ``at`` holds the latest live version
of every key committed before ``at``; an incremental [since, until) holds the latest version of
every key committed in that range, deletes included. ``canvas_logs`` tables keep a 30-day window.
"""

from __future__ import annotations

import bisect
import random
import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tap_dap.emulator.clock import MICROS, Clock, format_ts
from tap_dap.emulator.errors import DatasetError, OutOfRangeError, SnapshotRequiredError
from tap_dap.emulator.rows import RowGenerator
from tap_dap.emulator.schema import TableSchema

LOG_WINDOW = 30 * 86_400 * MICROS
LOG_NAMESPACES = ("canvas_logs",)


class Version(NamedTuple):
    ts: int
    action: str  # "U" or "D"
    index: int
    gen: int
    value: dict[str, Any] | None  # explicit content; None = generated from (index, gen)


@dataclass
class Plan:
    """What a job writes: base rows ``range(base_count)`` at ``base_ts`` unless overridden."""

    base_count: int
    base_ts: int
    overrides: dict[int, Version]
    duplicates: bool = False


@dataclass
class Table:
    namespace: str
    name: str
    schema: TableSchema
    generator: RowGenerator | None
    base_count: int = 0
    base_ts: int = 0
    explicit_keys: list[tuple[Any, ...]] = field(default_factory=list)
    key_index: dict[tuple[Any, ...], int] = field(default_factory=dict)
    commit_ts: list[int] = field(default_factory=list)
    commits: list[list[Version]] = field(default_factory=list)
    current: dict[int, Version] = field(default_factory=dict)
    reloaded_ts: int = 0
    next_index: int = 0
    live: int = 0
    advances: int = 0

    @property
    def is_log(self) -> bool:
        return self.namespace in LOG_NAMESPACES

    @property
    def size(self) -> int:
        return max(self.base_count, len(self.explicit_keys))

    def key(self, index: int) -> tuple[Any, ...]:
        if self.explicit_keys:
            return self.explicit_keys[index]
        assert self.generator is not None
        return self.generator.key(index)

    def index_of(self, key: tuple[Any, ...]) -> int:
        index = self.key_index.get(key)
        if index is None:
            index = len(self.explicit_keys)
            self.explicit_keys.append(key)
            self.key_index[key] = index
        return index

    def commit(self, ts: int, versions: list[Version]) -> None:
        if self.commit_ts and ts <= self.commit_ts[-1]:
            raise ValueError("commits must be in clock order")
        self.commit_ts.append(ts)
        self.commits.append(versions)
        for version in versions:
            before = self.current.get(version.index)
            was_live = before.action == "U" if before else version.index < self.base_count
            self.live += (version.action == "U") - was_live
            self.current[version.index] = version

    def is_live(self, index: int) -> bool:
        version = self.current.get(index)
        return version.action == "U" if version else index < self.base_count

    def latest_between(self, since: int, until: int) -> dict[int, Version]:
        lo = bisect.bisect_left(self.commit_ts, since)
        hi = bisect.bisect_left(self.commit_ts, until)
        out: dict[int, Version] = {}
        for versions in self.commits[lo:hi]:
            for version in versions:
                out[version.index] = version
        return out

    def snapshot_plan(self, at: int) -> Plan:
        floor = at - LOG_WINDOW if self.is_log else -1
        if self.commit_ts and self.commit_ts[-1] < at:
            overrides = dict(self.current)
        else:
            overrides = self.latest_between(-1, at)
        if floor >= 0:
            overrides = {i: v for i, v in overrides.items() if v.ts >= floor}
        base = self.base_count if floor < self.base_ts < at else 0
        return Plan(base, self.base_ts, overrides, duplicates=self.is_log)

    def incremental_plan(self, since: int, until: int, now: int) -> Plan:
        if self.is_log and since < now - LOG_WINDOW:
            raise OutOfRangeError(
                f"{self.namespace}.{self.name} keeps 30 days of data; 'since' is too old",
                since=format_ts(now - LOG_WINDOW), until=format_ts(now),
            )
        if since < self.reloaded_ts:
            raise SnapshotRequiredError(
                f"{self.namespace}.{self.name} was reloaded; run a snapshot query first",
                since=format_ts(self.reloaded_ts), until=format_ts(now),
            )
        base = self.base_count if since <= self.base_ts < until else 0
        return Plan(base, self.base_ts, self.latest_between(since, until))


class Store:
    """All tables plus the shared clock; one lock serialises changes against job planning."""

    def __init__(self, clock: Clock, seed: int = 0) -> None:
        self.clock = clock
        self.seed = seed
        self.tables: dict[str, dict[str, Table]] = {}
        self.lock = threading.RLock()

    def add(self, table: Table) -> None:
        self.tables.setdefault(table.namespace, {})[table.name] = table

    def get(self, namespace: str, name: str) -> Table:
        try:
            return self.tables[namespace][name]
        except KeyError:
            raise DatasetError(f"unknown table {namespace}.{name}") from None

    # ---- changes ----

    def advance(self, table: Table, inserts: int, updates: int, deletes: int) -> int:
        """Commit synthetic inserts/updates/deletes at one new clock tick; returns its timestamp."""
        for label, count in (("inserts", inserts), ("updates", updates), ("deletes", deletes)):
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise DatasetError(f"'{label}' must be a non-negative integer")
        with self.lock:
            if updates + deletes > table.live:
                raise DatasetError(
                    f"{table.namespace}.{table.name} has {table.live} live rows; cannot update "
                    f"{updates} and delete {deletes}"
                )
            if table.generator is None and (inserts or updates):
                raise DatasetError(f"{table.namespace}.{table.name} cannot synthesise rows")
            table.advances += 1
            rng = random.Random(f"{self.seed}:{table.namespace}.{table.name}:{table.advances}")
            chosen = _pick_live(table, rng, updates + deletes)
            ts = self.clock.tick()
            versions: list[Version] = []
            for position, index in enumerate(chosen):
                if position < updates:
                    versions.append(Version(ts, "U", index, _next_gen(table, index), None))
                else:
                    versions.append(Version(ts, "D", index, _next_gen(table, index), None))
            for _ in range(inserts):
                versions.append(Version(ts, "U", _new_index(table), 0, None))
            table.commit(ts, versions)
            return ts

    def reload(self, table: Table) -> int:
        with self.lock:
            table.reloaded_ts = self.clock.tick()
            return table.reloaded_ts


def _next_gen(table: Table, index: int) -> int:
    version = table.current.get(index)
    return version.gen + 1 if version else 1


def _new_index(table: Table) -> int:
    if table.explicit_keys:
        return _new_explicit_key(table)
    index = max(table.base_count, table.next_index)
    table.next_index = index + 1
    return index


def _new_explicit_key(table: Table) -> int:
    column = table.schema.key_columns[0]
    assert table.generator is not None
    if column.kind == "int" and len(table.schema.key_columns) == 1:
        top = max((k[0] for k in table.explicit_keys if isinstance(k[0], int)), default=0)
        return table.index_of((top + 1,))
    candidate = len(table.explicit_keys)
    while True:
        key = table.generator.key(candidate)
        if key not in table.key_index:
            return table.index_of(key)
        candidate += 1


def _pick_live(table: Table, rng: random.Random, count: int) -> list[int]:
    """``count`` distinct live row indices, drawn deterministically."""
    size = max(table.size, max(table.current, default=-1) + 1)
    picked: set[int] = set()
    ordered: list[int] = []
    attempts = 0
    while len(ordered) < count and attempts < count * 50 + 1000:
        attempts += 1
        index = rng.randrange(size)
        if index not in picked and table.is_live(index):
            picked.add(index)
            ordered.append(index)
    if len(ordered) < count:  # sparse table: fall back to a scan
        for index in range(size):
            if len(ordered) == count:
                break
            if index not in picked and table.is_live(index):
                picked.add(index)
                ordered.append(index)
    return ordered
