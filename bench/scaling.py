"""``python -m bench.scaling``: how `tap-dap | target-dap-sql` into PostgreSQL scales with cores.

Every process of the run — the emulator, the PostgreSQL server (postmaster, its background
processes and every backend it forks), the tap and the target with its record workers — is pinned
to the first ``--cpus`` cores (``sched_setaffinity`` / ``taskset``), and the target runs with each
``--workers`` count. Per configuration: a snapshot of ``--rows`` submissions rows into a fresh
database, then (after the emulator applied ``--changes`` changes, 80% updates / 20% deletes, once
for all configurations) the incremental run onto it. Wall time, and CPU seconds per process
(target = its own process plus its workers; PostgreSQL = the server and all its processes).
Each run's row count is checked against the emulator's live rows.

    .venv/bin/python -m bench.scaling --rows 300000 --changes 100000 --cpus 1,2 --workers 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import venvs
from bench.measure import ProcessSpec, run_pipeline
from bench.services import CLIENT_ID, CLIENT_SECRET, Emulator, EmulatorSpec, Postgres

BIN = Path(sys.executable).parent
WORK = Path(__file__).resolve().parent / "work" / "scaling"


def _pin_tree(root: int, cpus: set[int]) -> None:
    """Pin ``root`` and every process below it (a PostgreSQL server forks from its postmaster:
    backends started later inherit the postmaster's affinity)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():  # every thread
                os.sched_setaffinity(int(task.name), cpus)
        except (FileNotFoundError, ProcessLookupError):  # a backend that just ended
            continue
        todo += children.get(pid, [])


def _tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and of its children, reaped ones included."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root:  # utime, stime, cutime, cstime
            total += sum(int(f) for f in fields[11:15]) / ticks
        elif ppid == root:  # live children: their own time
            total += sum(int(f) for f in fields[11:13]) / ticks
    return total


def _postmaster(postgres: Postgres) -> int:
    datadir = postgres._server._datadir  # noqa: SLF001 (the bench's own server)
    assert datadir is not None
    return int((datadir / "data" / "postmaster.pid").read_text().split()[0])


def run_once(kind: str, cpus: int, workers: int, emulator: Emulator, postgres: Postgres,
             database: str, state: Path | None, run_dir: Path) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "tap.json").write_text(json.dumps({
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "base_url": emulator.base_url,
        "namespaces": ["canvas"], "tables": ["submissions"]}))
    (run_dir / "target.json").write_text(json.dumps({
        "sqlalchemy_url": postgres.url(database), "workers": workers}))
    pin = ("taskset", "-c", ",".join(map(str, range(cpus))))
    state_args = ("--state", str(state)) if state else ()
    specs = [
        ProcessSpec("tap", (*pin, str(BIN / "tap-dap"), "--config", str(run_dir / "tap.json"),
                            *state_args), env={**os.environ, "DAP_TRACKING": "false"}),
        ProcessSpec("target", (*pin, str(BIN / "target-dap-sql"), "--config",
                               str(run_dir / "target.json")), stdout=run_dir / "target.out"),
    ]
    postmaster = _postmaster(postgres)
    pg_before = _tree_cpu(postmaster)
    result = run_pipeline(specs, run_dir / "logs", 3600)
    pg_cpu = _tree_cpu(postmaster) - pg_before
    table = postgres.count_rows(database, ["canvas.submissions"])
    if table != emulator.live_rows():
        raise SystemExit(f"{kind} cpus={cpus} workers={workers}: {table} rows in the database, "
                         f"the emulator has {emulator.live_rows()}")
    cpu = {p.role: round(p.user_seconds + p.system_seconds, 2) for p in result.processes}
    rss = {p.role: p.peak_rss_bytes // 2**20 for p in result.processes}
    return {"kind": kind, "cpus": cpus, "workers": workers, "seconds": round(result.seconds, 2),
            "cpu": {**cpu, "postgres": round(pg_cpu, 2)}, "rss_mb": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--cpus", default="1,2", help="comma list: pin everything to this many "
                        "cores (the first ones)")
    parser.add_argument("--workers", default="1,2", help="comma list of the target's workers")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=WORK / "results.json")
    args = parser.parse_args(argv)
    configs = [(int(c), int(w)) for c in args.cpus.split(",") for w in args.workers.split(",")]
    if max(c for c, _ in configs) > len(os.sched_getaffinity(0)):
        parser.error("--cpus: more cores than this process may use")
    # stopped by a signal: still stop the servers below (the finally clause)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    WORK.mkdir(parents=True, exist_ok=True)
    venvs.compile_bytecode([str(BIN / "tap-dap")])
    emulator = Emulator(EmulatorSpec("scaling", ("submissions",), args.rows), str(
        BIN / "dap-emulator"), WORK)
    postgres = Postgres()
    records: list[dict[str, Any]] = []
    try:
        for repeat in range(args.repeat):
            databases: dict[tuple[int, int], str] = {}
            for cpus, workers in configs:
                _pin_tree(_postmaster(postgres), set(range(cpus)))
                os.sched_setaffinity(emulator._proc.pid, set(range(cpus)))  # noqa: SLF001
                databases[cpus, workers] = postgres.fresh("scaling")
                run_dir = WORK / f"r{repeat}-snapshot-c{cpus}-w{workers}"
                records.append(run_once("snapshot", cpus, workers, emulator, postgres,
                                        databases[cpus, workers], None, run_dir))
                print(json.dumps(records[-1]), flush=True)
            updates = args.changes * 8 // 10
            emulator.advance("canvas", "submissions", updates, args.changes - updates)
            time.sleep(1)  # the change's timestamp lies after every snapshot's
            for cpus, workers in configs:
                _pin_tree(_postmaster(postgres), set(range(cpus)))
                os.sched_setaffinity(emulator._proc.pid, set(range(cpus)))  # noqa: SLF001
                snapshot_dir = WORK / f"r{repeat}-snapshot-c{cpus}-w{workers}"
                last_state = (snapshot_dir / "target.out").read_text().splitlines()[-1]
                (snapshot_dir / "state.json").write_text(last_state)
                records.append(run_once("changes", cpus, workers, emulator, postgres,
                                        databases[cpus, workers], snapshot_dir / "state.json",
                                        WORK / f"r{repeat}-changes-c{cpus}-w{workers}"))
                print(json.dumps(records[-1]), flush=True)
                postgres.drop(databases[cpus, workers])
    finally:
        postgres.stop()
        emulator.stop()
    args.out.write_text(json.dumps(records, indent=1))
    print(summary(records))
    return 0


def summary(records: list[dict[str, Any]]) -> str:
    """A Markdown table: medians per (run, cores, workers)."""
    lines = ["| run | cores | workers | wall s (median) | target CPU s | tap CPU s | "
             "PostgreSQL CPU s | target peak RSS MB |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    keys = sorted({(r["kind"], r["cpus"], r["workers"]) for r in records},
                  key=lambda k: (k[0] != "snapshot", k[1], k[2]))
    for kind, cpus, workers in keys:
        runs = [r for r in records if (r["kind"], r["cpus"], r["workers"]) == (kind, cpus, workers)]

        def median(pick: Any, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(pick(r) for r in runs)

        cpu = [median(lambda r, role=role: r["cpu"][role])
               for role in ("target", "tap", "postgres")]
        lines.append(f"| {kind} | {cpus} | {workers} | {median(lambda r: r['seconds']):.2f} | "
                     + " | ".join(f"{c:.2f}" for c in cpu)
                     + f" | {max(r['rss_mb']['target'] for r in runs)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
