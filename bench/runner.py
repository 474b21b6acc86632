"""Run scenarios: start datasets on demand, prepare templates and changes, repeat, verify."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.errors import BenchError, RunFailed
from bench.measure import ProcessSpec, ProcessStats, run_pipeline
from bench.profiling import profiled_argv, summary
from bench.services import CLIENT_ID, CLIENT_SECRET, Emulator, EmulatorSpec, MariaDB, Postgres
from bench.spec import Count, Kind, Rows, Scenario, Variant, Window, fill, fill_json

SERVERS = ("postgres", "mariadb")  # Variant.database kinds that live on a database server


@dataclass(frozen=True)
class Tools:
    """Executables the steps refer to as ``{tap}``, ``{target}``, ``{dap}`` ..."""

    tap: str
    target: str
    dap: str
    target_postgres: str
    python: str
    emulator: str


@dataclass
class RunRecord:
    scenario: str
    variant: str
    kind: str
    repeat: int  # -1 for unmeasured setup runs
    rows: int
    seconds: float
    processes: list[ProcessStats]
    # the variant's Window, if it has one: when rows started to flow (seconds after the first
    # process started) and for how long they flowed
    window_start: float | None = None
    window_seconds: float | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Dataset:
    spec: EmulatorSpec
    emulator: Emulator | None = None
    changes_total: int = 0


@dataclass(frozen=True)
class Template:
    database: str
    state: Path | None


@dataclass
class Runner:
    tools: Tools
    datasets: dict[str, Dataset]
    work: Path
    postgres: Postgres
    timeout: float = 3600.0
    mariadb: MariaDB | None = None  # started by the first variant that needs it
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    templates: dict[tuple[str, str], Template] = field(default_factory=dict)
    records: list[RunRecord] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    # ---- scenarios ----

    def run_scenario(self, scenario: Scenario, repeats: int) -> None:
        """Measure every variant ``repeats`` times; a failing variant is dropped, not the rest."""
        self._prepare(scenario)
        failed: set[str] = set()
        for repeat in range(repeats):
            # interleave variants so slow drift (caches, other load) hits all of them alike
            for variant in scenario.variants:
                if variant.name in failed:
                    continue
                try:
                    record = self.run_variant(scenario, variant, repeat)
                except BenchError as exc:
                    failed.add(variant.name)
                    self.failures.append(f"{scenario.name} / {variant.name}: {exc}")
                    self.log(f"  {scenario.name} #{repeat + 1} {variant.name}: FAILED: {exc}")
                    continue
                streaming = ""
                if record.window_seconds:
                    streaming = (f" (streaming {record.rows / record.window_seconds:,.0f} rows/s "
                                 f"over {record.window_seconds:.2f} s)")
                self.log(f"  {scenario.name} #{repeat + 1} {variant.name}: "
                         f"{record.seconds:.2f} s, {record.rows_per_second:,.0f} rows/s"
                         f"{streaming}, "
                         + ", ".join(f"{p.role} {p.peak_rss_bytes / 2**20:.0f} MB"
                                     for p in record.processes))
                self.records.append(record)

    def _prepare(self, scenario: Scenario) -> None:
        for seed in scenario.seeds:
            dataset = seed.dataset or scenario.dataset
            if seed.keep_as and (dataset, seed.keep_as) not in self.templates:
                self.log(f"  {scenario.name}: setup {seed.name}")
                self.run_variant(scenario, seed, repeat=-1)
        if scenario.changes is not None:
            data = self.dataset(scenario.dataset)
            if data.changes_total == 0:
                emulator = self.emulator(scenario.dataset)
                for table in emulator.tables():
                    emulator.advance(table["namespace"], table["table"],
                                     scenario.changes.updates, scenario.changes.deletes)
                    data.changes_total += scenario.changes.per_table

    # ---- one run ----

    def profile(self, scenario: Scenario) -> dict[str, str]:
        """Run each of our variants once under cProfile; ``{"variant / role": top functions}``."""
        results: dict[str, str] = {}
        for variant in scenario.variants:
            if variant.kind is not Kind.OURS:
                continue
            try:
                self.run_variant(scenario, variant, repeat=-1, profile=True)
            except BenchError as exc:
                self.failures.append(f"{scenario.name} / {variant.name} (profile): {exc}")
                continue
            run = self._run_dir(scenario, variant, -1, profile=True)
            for index, step in enumerate(variant.steps):
                output = run / f"{index}-{step.role}.prof"
                if output.exists():
                    results[f"{scenario.name} / {variant.name} / {step.role}"] = summary(output)
        return results

    def _run_dir(self, scenario: Scenario, variant: Variant, repeat: int,
                 profile: bool = False) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", variant.name.lower()).strip("-")
        name = "profile" if profile else (f"r{repeat + 1}" if repeat >= 0 else "setup")
        return self.work / "runs" / scenario.name / slug / name

    def run_variant(self, scenario: Scenario, variant: Variant, repeat: int,
                    profile: bool = False) -> RunRecord:
        dataset_name = variant.dataset or scenario.dataset
        emulator = self.emulator(dataset_name)
        run = self._run_dir(scenario, variant, repeat, profile)
        if run.exists():
            shutil.rmtree(run)
        run.mkdir(parents=True)
        context = self._context(dataset_name, emulator, run)
        database = self._database(variant, dataset_name, context)
        try:
            for name, template in variant.files.items():
                (run / name).write_text(json.dumps(fill_json(template, context), indent=1))
            specs = []
            for index, step in enumerate(variant.steps):
                argv = tuple(fill(a, context) for a in step.argv)
                if profile:
                    argv = profiled_argv(argv, run / f"{index}-{step.role}.prof")
                specs.append(ProcessSpec(
                    step.role, argv, Path(fill(step.stdout, context)) if step.stdout else None,
                    {**os.environ, **{k: fill(v, context) for k, v in step.env}}
                    if step.env else None))
            expected = emulator.live_rows()
            result = run_pipeline(specs, run / "logs", self.timeout)
            if variant.count is not None:
                self._verify(variant.count, context, run, expected, variant.name)
            window: tuple[float | None, float | None] = (None, None)
            if variant.window is not None:
                window = window_times(variant.window, context, result.started_at)
            if variant.keep_as:
                self._keep(variant, dataset_name, database, context)
                database = None
        finally:
            if database is not None:
                self.server(variant.database).drop(database)
        rows = expected if variant.rows is Rows.LIVE else self.dataset(dataset_name).changes_total
        return RunRecord(scenario.name, variant.name, variant.kind.value, repeat, rows,
                         result.seconds, list(result.processes), *window)

    def _database(self, variant: Variant, dataset: str, context: dict[str, Any]) -> str | None:
        run: Path = context["run_dir"]
        template = None
        if variant.start_from:
            template = self.templates.get((dataset, variant.start_from))
            if template is None:
                raise BenchError(f"{variant.name}: no template {variant.start_from!r} for "
                                 f"dataset {dataset} (its scenario has no seed for it)")
            if template.state is not None:
                shutil.copy(template.state, run / "state.json")
        context["state"] = str(run / "state.json")
        if variant.database == "sqlite" and template is not None:
            shutil.copy(template.database, run / "dap.db")  # a file template: its copy
        if variant.database not in SERVERS:
            context["db_url"] = ""
            return None
        server = self.server(variant.database)
        name = server.fresh("bench", template.database if template else None)
        url = server.url(name)
        parts = urlsplit(url)
        context.update(db_url=url, db_name=name, db_host=parts.hostname, db_port=parts.port,
                       db_user=parts.username)
        return name

    def _keep(self, variant: Variant, dataset: str, database: str | None,
              context: dict[str, Any]) -> None:
        key = (dataset, variant.keep_as or "")
        state = None
        state_source = Path(fill(variant.state_from, context))
        if state_source.exists():
            lines = [line for line in state_source.read_text().splitlines()
                     if line.strip().startswith("{")]
            if lines:
                message = json.loads(lines[-1])
                state = self.work / "templates" / f"{dataset}-{variant.keep_as}.state.json"
                state.parent.mkdir(parents=True, exist_ok=True)
                state.write_text(json.dumps(message.get("value", message)))
        if variant.database == "sqlite":
            kept = self.work / "templates" / f"{dataset}-{variant.keep_as}.db"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(context["run_dir"]) / "dap.db", kept)
            self.templates[key] = Template(str(kept), state)
            return
        if database is None:
            raise BenchError(f"{variant.name}: keep_as needs a database")
        template_name = f"tpl_{dataset}_{variant.keep_as}"
        self.server(variant.database).rename(database, template_name)
        self.templates[key] = Template(template_name, state)

    def _verify(self, count: Count, context: dict[str, Any], run: Path, expected: int,
                what: str) -> None:
        tables = [t["table"] for t in self.emulator(context["dataset"]).tables()]
        if count.where in SERVERS:
            names = [fill(count.table, {**context, "table": t}) for t in tables]
            found = self.server(count.where).count_rows(context["db_name"], names)
        elif count.where == "sqlite":
            with sqlite3.connect(run / "dap.db") as conn:
                found = sum(conn.execute(
                    f'SELECT count(*) FROM "{fill(count.table, {**context, "table": t})}"'
                ).fetchone()[0] for t in tables)
        else:
            path = Path(fill(count.file, context))
            found = read_json_line(path).get(count.key)
            if not isinstance(found, int):
                raise RunFailed(f"{what}: no count {count.key!r} in {path}")
            if count.at_least and found >= expected:
                return
        if found != expected:
            wanted = f"at least {expected:,}" if count.at_least else f"{expected:,}"
            raise RunFailed(f"{what}: expected {wanted} rows, found {found:,} ({run})")

    def server(self, kind: str) -> Postgres | MariaDB:
        if kind == "postgres":
            return self.postgres
        if kind != "mariadb":
            raise BenchError(f"unknown database server {kind!r}")
        if self.mariadb is None:
            self.log("bench: starting MariaDB")
            self.mariadb = MariaDB()
        return self.mariadb

    # ---- datasets ----

    def dataset(self, name: str) -> Dataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise BenchError(f"unknown dataset {name!r}") from None

    def emulator(self, name: str) -> Emulator:
        data = self.dataset(name)
        if data.emulator is None:
            self.log(f"bench: starting emulator {name} ({data.spec.rows:,} rows per table)")
            data.emulator = Emulator(data.spec, self.tools.emulator, self.work / "logs")
        return data.emulator

    def _context(self, dataset: str, emulator: Emulator, run: Path) -> dict[str, Any]:
        tables = list(emulator.spec.tables or ())
        return dict(
            {field: getattr(self.tools, field) for field in Tools.__dataclass_fields__},
            base_url=emulator.base_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
            run=str(run), run_dir=run, dataset=dataset,
            tap_tables=tables or None,
            dap_tables=",".join(tables) if len(tables) == 1 else "all",
            first_table=tables[0] if tables else "",
            other_tables=" ".join(tables[1:]),
        )

    def close(self) -> None:
        if self.mariadb is not None:
            self.mariadb.stop()
            self.mariadb = None
        for data in self.datasets.values():
            if data.emulator is not None:
                data.emulator.stop()
                data.emulator = None


def read_json_line(path: Path) -> dict[str, Any]:
    """The last line of a process's output, a JSON object (the probes and the line counter)."""
    try:
        lines = path.read_text().strip().splitlines()
        data = json.loads(lines[-1]) if lines else None
    except (OSError, ValueError) as exc:
        raise RunFailed(f"cannot read the result line of {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RunFailed(f"{path}: no JSON result line")
    return data


def window_times(window: Window, context: dict[str, Any], started_at: float) -> tuple[float, float]:
    """(start after the pipeline started, duration) of a run's streaming window."""
    path = Path(fill(window.file, context))
    data = read_json_line(path)
    start, end = data.get(window.start), data.get(window.end)
    if not isinstance(start, int | float) or not isinstance(end, int | float) or end < start:
        raise RunFailed(f"{path}: no {window.start} → {window.end} times in {data}")
    return start - started_at, end - start
