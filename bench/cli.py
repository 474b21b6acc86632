"""``python -m bench``: run the benchmark scenarios and write bench/results/."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench import shapes, venvs
from bench.errors import BenchError
from bench.estimate import describe, estimate
from bench.report import machine_info, render, update_readme, write_json
from bench.runner import Dataset, Runner, Tools
from bench.scenarios import SCENARIO_NAMES, TABLES_30, Sizes, scenarios
from bench.services import EmulatorSpec, Postgres
from bench.spec import Scenario, fields_of
from bench.stats import summarise

BENCH = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark tap-dap | target-dap-sql against the official dap CLI, "
        "tap-dap | target-postgres, raw COPY and gunzip+parse on the same emulator data.",
    )
    parser.add_argument("--rows", type=int, help="rows of the submissions table "
                        "(default 100,000; 1,000,000 with --full)")
    parser.add_argument("--full", action="store_true",
                        help="1M rows (4M for memory-4x), 250k for target-postgres, "
                        "10k rows × 30 tables")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per variant")
    parser.add_argument("--scenarios", default=",".join(SCENARIO_NAMES),
                        help=f"comma list of: {', '.join(SCENARIO_NAMES)}")
    parser.add_argument("--skip", default="",
                        help="comma list of variant names to leave out (names may hold commas)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    parser.add_argument("--work", type=Path, default=BENCH / "work")
    parser.add_argument("--profile", action="store_true",
                        help="after the timed runs, run our variants once more under cProfile "
                        "and add the top functions per process to the report")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-readme", action="store_true",
                        help="do not update the latest table in bench/README.md")
    return parser


def select(all_scenarios: tuple[Scenario, ...], names: str, skip: str) -> list[Scenario]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in SCENARIO_NAMES]
    if unknown:
        raise BenchError(f"--scenarios: unknown {', '.join(unknown)}; "
                         f"choose from {', '.join(SCENARIO_NAMES)}")
    skipped = skipped_variants(skip, {v.name for s in all_scenarios for v in s.variants})
    chosen = []
    for scenario in all_scenarios:
        if scenario.name in wanted:
            variants = tuple(v for v in scenario.variants if v.name not in skipped)
            chosen.append(Scenario(scenario.name, scenario.title, scenario.dataset, variants,
                                   scenario.seeds, scenario.changes))
    return chosen


def skipped_variants(skip: str, known: set[str]) -> set[str]:
    """The variant names of a comma list; a name may hold commas itself ("tap-dap, 3 properties
    deselected | …"), so the longest run of pieces that names a variant wins. An unknown name is
    an error: a typo would otherwise run the variant it meant to leave out."""
    pieces, names, start = skip.split(","), set(), 0
    while start < len(pieces):
        for end in range(len(pieces), start, -1):
            candidate = ",".join(pieces[start:end]).strip()
            if candidate in known:
                names.add(candidate)
                start = end
                break
        else:
            if pieces[start].strip():
                raise BenchError(f"--skip: no variant named {pieces[start].strip()!r}")
            start += 1
    return names


def _placeholders(chosen: list[Scenario]) -> set[str]:
    return {name for s in chosen for v in (*s.variants, *s.seeds) for step in v.steps
            for arg in step.argv for name in fields_of(arg)}


def tools_for(chosen: list[Scenario]) -> tuple[Tools, dict[str, str]]:
    used = _placeholders(chosen)
    bin_dir = Path(sys.executable).parent
    versions: dict[str, str] = {}
    dap = target_postgres = ""
    if "dap" in used:
        dap_path = venvs.dap()
        dap = str(dap_path)
        versions["instructure-dap-client"] = venvs.installed_version(dap_path,
                                                                     "instructure-dap-client")
    if "target_postgres" in used:
        tp_path = venvs.target_postgres()
        target_postgres = str(tp_path)
        versions["meltanolabs-target-postgres"] = venvs.installed_version(
            tp_path, "meltanolabs-target-postgres")
    from importlib.metadata import version

    versions["tap-dap"] = version("tap-dap")
    versions["singer-sdk"] = version("singer-sdk")
    tools = Tools(tap=str(bin_dir / "tap-dap"), target=str(bin_dir / "target-dap-sql"),
                  dap=dap, target_postgres=target_postgres, python=sys.executable,
                  emulator=str(bin_dir / "dap-emulator"))
    venvs.compile_bytecode([tools.tap, dap, target_postgres])
    return tools, versions


def datasets_for(sizes: Sizes) -> dict[str, Dataset]:
    return {
        "main": Dataset(EmulatorSpec("main", ("submissions",), sizes.rows)),
        # The same rows as "main", advanced by changes-sqlite alone (changes-pg advances "main").
        "main-sqlite": Dataset(EmulatorSpec("main-sqlite", ("submissions",), sizes.rows)),
        "small": Dataset(EmulatorSpec("small", ("submissions",), sizes.target_postgres_rows)),
        "big": Dataset(EmulatorSpec("big", ("submissions",), sizes.rows * sizes.memory_factor)),
        # canvas.submissions shaped like production rows: its 46 columns, mostly null, ~480 B
        "narrow": Dataset(EmulatorSpec("narrow", ("submissions",), sizes.rows, null_share=0.78)),
        # The same rows again, advanced by the MariaDB scenarios alone.
        "main-mariadb": Dataset(EmulatorSpec("main-mariadb", ("submissions",), sizes.rows)),
        "narrow-mariadb": Dataset(EmulatorSpec("narrow-mariadb", ("submissions",), sizes.rows,
                                               null_share=0.78)),
        "tables30": Dataset(EmulatorSpec("tables30", TABLES_30, sizes.tables30_rows,
                                         job_latency=3.0)),
    }


def make_plots(results_json: Path, prefix: Path) -> list[str]:
    python = venvs.plot_python()
    done = subprocess.run([str(python), str(BENCH / "plots.py"), str(results_json),
                           str(prefix)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"bench: plotting failed: {done.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr)
        return []
    return [Path(p).name for p in done.stdout.split()]


def run(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise BenchError("--repeat must be at least 1")
    if args.rows is not None and args.rows < 10:
        raise BenchError("--rows must be at least 10")
    sizes = Sizes.full(args.rows) if args.full else Sizes.default(args.rows)
    chosen = select(scenarios(sizes), args.scenarios, args.skip)
    args.work.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    datasets = datasets_for(sizes)
    print(describe(estimate(chosen, {n: d.spec for n, d in datasets.items()}, args.repeat)),
          file=sys.stderr, flush=True)
    tools, versions = tools_for(chosen)
    started = time.time()
    postgres = Postgres()
    runner = Runner(tools, datasets, args.work, postgres, args.timeout)
    failures = runner.failures
    profiles: dict[str, str] = {}
    try:
        for scenario in chosen:
            runner.log(f"bench: {scenario.name}: {scenario.title}")
            try:
                runner.run_scenario(scenario, args.repeat)
                if args.profile:
                    profiles.update(runner.profile(scenario))
            except BenchError as exc:
                failures.append(f"{scenario.name}: {exc}")
                runner.log(f"bench: {scenario.name} FAILED: {exc}")
        if runner.mariadb is not None:
            versions["mariadb"] = runner.mariadb.version()
        machine = machine_info(postgres.version(), versions)
    finally:
        runner.close()
        postgres.stop()
    stamp = time.strftime("%Y-%m-%d-%H%M", time.localtime(started))
    summaries = summarise(runner.records)
    settings = {**asdict(sizes), "repeat": args.repeat,
                "duration_s": round(time.time() - started)}
    command = "python -m bench " + shlex.join(sys.argv[1:])
    meta = {"stamp": stamp, "command": command, "machine": machine, "settings": settings,
            "failures": failures}
    results_json = args.results / f"{stamp}.json"
    write_json(results_json, meta, runner.records, summaries)
    plots = []
    if summaries and not args.no_plots:
        plots = make_plots(results_json, args.results / stamp)
    text = render(stamp, command, machine, settings, chosen, summaries, plots)
    text += "\n## Per row shape (the README's table)\n\n" + "\n".join(shapes.table(summaries)[0])
    text += "\n"
    if profiles:
        text += "\n## Profiles (cProfile, one untimed run, top functions by own time)\n"
        for name, top in profiles.items():
            text += f"\n### {name}\n\n```\n{top}\n```\n"
    if failures:
        text += "\n## Failures\n\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    for name in (f"{stamp}.md", "latest.md"):
        (args.results / name).write_text(text)
    if not args.no_readme and not failures:
        update_readme(BENCH / "README.md", f"{stamp}.md", machine, summaries, chosen)
        missing = shapes.update_readme(BENCH.parent / "README.md", f"{stamp}.md", summaries)
        if missing:
            print("bench: README.md's table left as it was; this run did not measure: "
                  + "; ".join(missing), file=sys.stderr)
    print(args.results / f"{stamp}.md")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(run(args))
    except BenchError as exc:
        sys.exit(f"bench: {exc}")
    except KeyboardInterrupt:
        sys.exit("bench: interrupted")
