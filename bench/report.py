"""Markdown report, raw JSON, and the latest table in bench/README.md."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.runner import RunRecord
from bench.spec import Kind, Scenario, Variant
from bench.stats import CHECKS, MB, OURS_PG, Check, Summary, find

README_START = "<!-- bench:latest:start -->"
README_END = "<!-- bench:latest:end -->"


def machine_info(postgres_version: str, versions: dict[str, str]) -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True,
                           cwd=Path(__file__).parent).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_kb / 2**20:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "commit": commit + (" (uncommitted changes)" if dirty else ""),
        **versions,
    }


def _mb(value: float | None) -> str:
    return "—" if not value else f"{value / MB:.0f} MB"


def _cell(text: str) -> str:
    """Markdown table cells cannot hold a bare pipe (our variant names are pipelines)."""
    return text.replace("|", "\\|")


def _rate(value: float) -> str:
    return f"{value / 1000:,.1f}k" if value >= 1000 else f"{value:,.0f}"


def _ratio(ours: float, other: float, what: str = "") -> str:
    ratio = ours / other
    if ratio >= 1:
        return f"{what}ours {ratio:.1f}× faster"
    return f"{what}ours at {1 / ratio:.2f}× its time"


def _ratio_cell(scenario: Scenario, row: Summary, summaries: list[Summary]) -> str:
    ours = find(summaries, scenario.name, OURS_PG) or next(
        (s for s in summaries if s.scenario == scenario.name and s.kind == Kind.OURS.value), None)
    if ours is None or row is ours or row.kind == Kind.OURS.value or not row.rows_per_second:
        return ""
    cell = _ratio(ours.rows_per_second, row.rows_per_second)
    if ours.window_rows_per_second and row.window_rows_per_second:
        cell += "; " + _ratio(ours.window_rows_per_second, row.window_rows_per_second,
                              "streaming: ")
    return cell


def _window_cell(variant: Variant, row: Summary) -> str:
    if variant.window is None or not row.window_rows_per_second:
        return ""
    return (f"{_rate(row.window_rows_per_second)} ({variant.window.label}: "
            f"{row.window_seconds:.2f} s, from {row.window_start:.2f} s)")


def scenario_table(scenario: Scenario, summaries: list[Summary]) -> list[str]:
    streaming = any(v.window is not None for v in scenario.variants)
    extra_head, extra_rule = (" streaming rows/s (window) |", "---|") if streaming else ("", "")
    lines = [
        f"### {scenario.name}: {scenario.title}", "",
        f"| variant | kind | median time | rows | rows/s |{extra_head} vs ours "
        "| peak RSS per process | CPU s per process | reference (elsewhere) |",
        f"|---|---|---:|---:|---:|{extra_rule}---|---|---|---|",
    ]
    for variant in scenario.variants:
        row = find(summaries, scenario.name, variant.name)
        if row is None:
            continue
        rss = " · ".join(f"{role} {_mb(v)}" for role, v in row.peak_rss.items())
        cpu = " · ".join(f"{role} {v:.1f}" for role, v in row.cpu_seconds.items())
        ref = variant.reference
        reference = ""
        if ref is not None:
            reference = f"{_rate(ref.rows_per_second)} rows/s"
            if ref.peak_rss_mb:
                reference += f", {ref.peak_rss_mb:.0f} MB"
            reference += f" ({ref.note})"
        window = f" {_window_cell(variant, row)} |" if streaming else ""
        lines.append(
            f"| {_cell(variant.name)} | {row.kind} | {row.seconds:.2f} s | {row.rows:,} | "
            f"{_rate(row.rows_per_second)} |{window} {_ratio_cell(scenario, row, summaries)} | "
            f"{rss} | {cpu} | {reference} |"
        )
    return lines + [""]


def _check_detail(check: Check, summaries: list[Summary]) -> str:
    """What a target's number was computed from, so a ratio never stands alone."""
    ours = find(summaries, check.scenario, check.variant)
    other_scenario = check.other_scenario or check.scenario
    other = find(summaries, other_scenario, check.other) if check.other else None
    if ours is None or other is None:
        return ""
    if check.metric in ("speedup", "slowdown"):
        if ours.rows == other.rows:
            return (f" ({_rate(ours.rows_per_second)} vs {_rate(other.rows_per_second)} rows/s, "
                    f"{ours.rows:,} rows)")
        return (f" ({_rate(ours.rows_per_second)} rows/s on {ours.rows:,} rows vs "
                f"{_rate(other.rows_per_second)} on {other.rows:,})")
    if check.metric == "window_rows_per_second":
        parts = [f"wall {_rate(ours.rows_per_second)}"]
        if other.window_rows_per_second:
            parts.append(f"{_cell(other.variant)}: {_rate(other.window_rows_per_second)} "
                         "first byte parsed → end")
        return f" ({'; '.join(parts)})"
    return ""


def checks_table(summaries: list[Summary]) -> list[str]:
    lines = ["| target | measured | result |", "|---|---:|---|"]
    for check in CHECKS:
        value = check.measure(summaries)
        passed = check.passed(value)
        if value is None:
            shown = "not run"
        elif check.metric in ("speedup", "slowdown"):
            shown = f"{value:.2f}×"
        elif check.metric == "rss":
            shown = f"{value:.0f} MB"
        elif check.metric == "rss_growth":
            shown = f"{value * 100:+.1f}%"
        else:
            shown = f"{value:,.0f} rows/s"
        if value is not None:
            shown += _check_detail(check, summaries)
        verdict = {True: "met", False: "**not met**", None: "—"}[passed]
        lines.append(f"| {_cell(check.target)} | {shown} | {verdict} |")
    return lines + [""]


def render(stamp: str, command: str, machine: dict[str, str], settings: dict[str, Any],
           scenarios: list[Scenario], summaries: list[Summary], plots: list[str]) -> str:
    lines = [
        f"# tap-dap benchmark {stamp}", "",
        f"Command: `{command}`  ",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()) + "  ",
        "Sizes: " + ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}"
                              for k, v in settings.items()),
        "",
        "Medians of the repeats; rows/s = rows ÷ median wall time. Wall time runs from the "
        "first process's start to the last one's exit and includes start-up, the emulator "
        "building the snapshot job, and the download — for every variant, probes included. "
        "Streaming rows/s = rows ÷ the window a process of the run timed itself (tap-alone: "
        "first RECORD the tap wrote → EOF; parse probe: first byte parsed → last line parsed); "
        "\"from\" is when the window opened after the run started. "
        "Peak RSS and CPU are per process (`wait4` rusage).",
        "",
        "## Targets", "", *checks_table(summaries),
        "## Scenarios", "",
    ]
    for scenario in scenarios:
        lines += scenario_table(scenario, summaries)
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines).rstrip() + "\n"


def write_json(path: Path, meta: dict[str, Any], records: list[RunRecord],
               summaries: list[Summary]) -> None:
    path.write_text(json.dumps({
        **meta,
        "runs": [{**asdict(r), "processes": [asdict(p) for p in r.processes]} for r in records],
        "summaries": [asdict(s) for s in summaries],
    }, indent=1))


def update_readme(readme: Path, report_name: str, machine: dict[str, str],
                  summaries: list[Summary], scenarios: list[Scenario]) -> None:
    """Replace the block between the markers with this run's targets and scenario tables."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    block = [README_START, "",
             f"From [`results/{report_name}`](results/{report_name}) on "
             f"{machine['cpu']}, {machine['memory']} RAM, PostgreSQL {machine['postgresql']}, "
             f"commit {machine['commit']}.", "",
             *checks_table(summaries)]
    for scenario in scenarios:
        block += scenario_table(scenario, summaries)
    block.append(README_END)
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    readme.write_text(pattern.sub(lambda _: "\n".join(block), text))
