"""The vocabulary of benchmark definitions: commands and configs as data, resolved at run time.

Strings may hold ``{placeholders}`` filled from the run context (executables, emulator URL,
database URL, run directory ...). In config-file templates a value that is exactly
``"{name}"`` takes the context value as is (a list, an int, or None = leave the key out).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bench.errors import BenchError


class Kind(StrEnum):
    OURS = "ours"  # tap-dap / target-dap-sql: what the targets are about
    ANCHOR = "anchor"  # what users run today, measured here on the same data
    PROXY = "proxy"  # a physical limit (raw COPY, gunzip+parse)


class Rows(StrEnum):
    LIVE = "live"  # rows/s over the live rows of the dataset (snapshots)
    CHANGES = "changes"  # rows/s over the changes applied by the scenario (incrementals)


@dataclass(frozen=True)
class Step:
    """One process of a pipeline; consecutive steps are joined by pipes."""

    role: str
    argv: tuple[str, ...]
    stdout: str | None = None  # file template; None = next step, or /dev/null when last
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Count:
    """Where the run's rows end up, to check it did the work it was timed for."""

    where: str  # "postgres" | "mariadb" | "sqlite" | "json"
    table: str = ""  # postgres/sqlite: template, e.g. "canvas.{table}"; summed over the tables
    file: str = ""  # json: template of the file holding the JSON line a process printed
    key: str = "rows"  # json: the key of the count
    at_least: bool = False  # json: more is fine (a tap writes SCHEMA, STATE ... lines too)


@dataclass(frozen=True)
class Window:
    """The streaming part of a run, timed by one of its processes (monotonic times in JSON).

    Wall time includes start-up and the server building the job; a window isolates the rate at
    which rows flow once they do (e.g. the tap's first RECORD to EOF of its output).
    """

    file: str  # template of the file holding the JSON line
    start: str  # key: when rows started to flow
    end: str  # key: when they stopped
    label: str  # how the report names it


@dataclass(frozen=True)
class Reference:
    """The anchor as measured elsewhere (docs/performance.md): a sanity check of the machine."""

    rows_per_second: float
    peak_rss_mb: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Variant:
    name: str
    kind: Kind
    steps: tuple[Step, ...]
    files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> JSON template
    dataset: str | None = None  # default: the scenario's dataset
    database: str = "none"  # "none" | "postgres" | "mariadb" | "sqlite"
    start_from: str | None = None  # template (database + state) the run starts from
    keep_as: str | None = None  # keep this run's database + state as a template
    state_from: str = "{run}/target.out"  # Singer STATE lines to keep with the template
    count: Count | None = None
    rows: Rows = Rows.LIVE
    reference: Reference | None = None
    window: Window | None = None


@dataclass(frozen=True)
class Changes:
    """Changes committed once on every table of a dataset before the scenario's runs."""

    per_table: int
    update_share: float = 0.8  # the rest are deletes

    @property
    def updates(self) -> int:
        return round(self.per_table * self.update_share)

    @property
    def deletes(self) -> int:
        return self.per_table - self.updates


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    dataset: str
    variants: tuple[Variant, ...]
    seeds: tuple[Variant, ...] = ()  # unmeasured runs that create missing templates
    changes: Changes | None = None

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(f"{self.name} has no variant {name!r}")


def fields_of(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def fill(template: str, context: Mapping[str, Any]) -> str:
    try:
        return template.format_map(context)
    except KeyError as exc:
        raise BenchError(f"unknown placeholder {exc} in {template!r}") from None


def fill_json(template: Any, context: Mapping[str, Any]) -> Any:
    """Resolve a JSON template; ``"{name}"`` alone keeps the context value's type."""
    if isinstance(template, str):
        names = fields_of(template)
        if len(names) == 1 and template == "{" + names[0] + "}":
            return context[names[0]]
        return fill(template, context)
    if isinstance(template, Mapping):
        resolved = {key: fill_json(value, context) for key, value in template.items()}
        return {key: value for key, value in resolved.items() if value is not None}
    if isinstance(template, list | tuple):
        return [fill_json(item, context) for item in template]
    return template
