"""Ground truth: the live rows of a table right now, sorted by key, as ``{"key", "value"}`` dicts.

Built from the same plan and value functions as a snapshot, so a correct replica equals it exactly.
"""

from __future__ import annotations

from typing import Any

from tap_dap.emulator.layout import Layout
from tap_dap.emulator.store import Store, Table
from tap_dap.emulator.values import stored_form
from tap_dap.emulator.writer import version_value


def truth_lines(store: Store, table: Table) -> list[dict[str, Any]]:
    with store.lock:
        plan = table.snapshot_plan(store.clock.tick())
        layout = Layout(table.schema, "jsonl", "condensed", incremental=False)
    key_names = [c.name for c in layout.key_columns]
    value_names = [c.name for c in layout.value_columns]
    required = {c.name for c in layout.value_columns if c.required}
    out: list[tuple[tuple, dict[str, Any]]] = []
    generator = table.generator
    base_epoch = table.schema.version_at(plan.base_ts)
    for index in range(plan.base_count):
        if index in plan.overrides:
            continue
        assert generator is not None
        value = generator.value(index, 0, base_epoch, layout.value_columns)
        out.append((table.key(index), value))
    for version in plan.overrides.values():
        if version.action == "U":
            value = version_value(table, version, layout)
            out.append((table.key(version.index), value))
    out.sort(key=lambda item: _sort_key(item[0]))
    return [
        {"key": dict(zip(key_names, key, strict=True)),
         "value": {name: stored_form(value.get(name), name in required) for name in value_names}}
        for key, value in out
    ]


def _sort_key(key: tuple) -> tuple:
    # Mixed key types (fixtures) still sort deterministically: by type name, then value.
    return tuple((type(part).__name__, part) for part in key)
