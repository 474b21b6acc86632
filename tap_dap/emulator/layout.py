"""Output layouts: which fields a job writes, in which order, and how one record becomes one line.

A layout is fixed when a job is created (current schema, format, mode, snapshot or incremental), so
every object of a job has the same header even if the schema changes while it is being built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tap_dap.emulator.schema import Column, TableSchema
from tap_dap.emulator.values import CELL_RENDERERS, json_text

FORMATS = ("jsonl", "tsv", "csv")
MODES = ("expanded", "condensed")


@dataclass(frozen=True)
class Field:
    """One output column: ``value.<column>`` or, expanded, ``value.<column>.<sub>``."""

    label: str
    column: str
    sub: str | None = None

    def pick(self, value: dict[str, Any]) -> Any:
        cell = value.get(self.column)
        if self.sub is None or cell is None:
            return cell
        return cell.get(self.sub)


class Layout:
    def __init__(self, schema: TableSchema, fmt: str, mode: str, incremental: bool) -> None:
        self.format = fmt
        self.mode = mode
        self.incremental = incremental
        self.schema_version = schema.current.version
        self.key_columns: list[Column] = list(schema.key_columns)
        self.value_columns: list[Column] = list(schema.value_columns)
        self.value_fields = self._fields()
        self._cell: Callable[[Any], str] | None = CELL_RENDERERS.get(fmt)
        self.sep = "\t" if fmt == "tsv" else ","

    def _fields(self) -> list[Field]:
        fields: list[Field] = []
        for column in self.value_columns:
            node = column.node
            # Expanded output splits object columns into sub-columns in TSV/CSV only; a JSONL
            # line carries each object once.
            if self.mode == "expanded" and self.format != "jsonl" and node["type"] == "object":
                fields += [Field(f"value.{column.name}.{sub}", column.name, sub)
                           for sub in node["properties"]]
            else:
                fields.append(Field(f"value.{column.name}", column.name))
        return fields

    def header(self) -> str:
        if self.format == "jsonl":
            return ""
        labels = ["meta.ts"] + (["meta.action"] if self.incremental else [])
        labels += [f"key.{c.name}" for c in self.key_columns]
        labels += [f.label for f in self.value_fields]
        return self.sep.join(labels) + "\n"

    # ---- pieces shared by the slow (per record) and fast (pre-rendered) paths ----

    def value_text(self, value: dict[str, Any], fields: list[Field] | None = None) -> str:
        """The value part: ``<sep>cell...`` for tsv/csv, ``,"name":json...`` for jsonl."""
        fields = self.value_fields if fields is None else fields
        if self._cell is None:
            parts = []
            for field in fields:
                cell = value.get(field.column)
                if cell is not None:
                    if isinstance(cell, dict):
                        cell = {k: v for k, v in cell.items() if v is not None}
                    parts.append(f",{json_text(field.column)}:{json_text(cell)}")
            return "".join(parts)
        cell_text = self._cell
        return "".join(self.sep + cell_text(field.pick(value)) for field in fields)

    def key_text(self, key: tuple[Any, ...]) -> str:
        if self._cell is None:
            return ",".join(f"{json_text(c.name)}:{json_text(v)}"
                            for c, v in zip(self.key_columns, key, strict=True))
        return self.sep.join(self._cell(v) for v in key)

    def prefix(self, ts_text: str, action: str | None) -> str:
        """Everything before the key for one record."""
        if self._cell is None:
            act = f',"action":"{action}"' if action else ""
            return f'{{"meta":{{"ts":"{ts_text}"{act}}},"key":{{'
        return ts_text + (self.sep + action if action else "") + self.sep

    def join(self, prefix: str, key_text: str, value_text: str | None) -> str:
        """Assemble one line; ``value_text`` None means a delete."""
        if self._cell is None:
            if value_text is None:
                return f"{prefix}{key_text}}}}}\n"
            return f'{prefix}{key_text}}},"value":{{{value_text[1:]}}}}}\n'
        if value_text is None:
            blank = "\\N" if self.format == "tsv" else ""
            return prefix + key_text + (self.sep + blank) * len(self.value_fields) + "\n"
        return prefix + key_text + value_text + "\n"

    def line(self, ts_text: str, action: str | None, key: tuple[Any, ...],
             value: dict[str, Any] | None) -> str:
        value_text = None if value is None else self.value_text(value)
        return self.join(self.prefix(ts_text, action), self.key_text(key), value_text)

