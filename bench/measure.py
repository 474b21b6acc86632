"""Run a pipeline of processes (``a | b | c``) and measure each process separately.

Each process runs under ``rusage_exec.py``, which forks it, ``wait4``s it and writes the
kernel-accounted peak RSS and CPU times: no sampling, nothing missed between polls. Linux folds into
``ru_maxrss`` the peak of any descendants the process itself waited for, so a process tree reports
its largest member, never a sum. Wall time per process is taken here, at the wrapper's exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import RunFailed

STDERR_TAIL_LINES = 6
WRAPPER = Path(__file__).with_name("rusage_exec.py")


@dataclass(frozen=True)
class ProcessSpec:
    """One process of a pipeline, fully resolved (no placeholders left)."""

    role: str  # "tap", "target", "dap", ... — the label the report uses
    argv: tuple[str, ...]
    stdout: Path | None = None  # None: into the next process, or /dev/null for the last one
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ProcessStats:
    role: str
    seconds: float
    user_seconds: float
    system_seconds: float
    peak_rss_bytes: int
    exit_code: int


@dataclass(frozen=True)
class PipelineResult:
    seconds: float
    processes: tuple[ProcessStats, ...]
    # time.monotonic() when the first process was started: processes that print monotonic
    # times (the line counter, the probes) are placed on the run's time line with it
    started_at: float = 0.0


def _stats(role: str, seconds: float, status: int, report: Path) -> ProcessStats:
    """Read the wrapper's report; without one (wrapper killed) only the exit status is known."""
    try:
        code, rss_kib, user, system = report.read_text().split()
        return ProcessStats(role, seconds, float(user), float(system), int(rss_kib) * 1024,
                            int(code))
    except (OSError, ValueError):
        return ProcessStats(role, seconds, 0.0, 0.0, 0, os.waitstatus_to_exitcode(status) or -1)


def wrapped(argv: tuple[str, ...], report: Path) -> list[str]:
    return [sys.executable, "-I", "-S", str(WRAPPER), str(report), "--", *argv]


def run_pipeline(specs: Sequence[ProcessSpec], log_dir: Path, timeout: float) -> PipelineResult:
    """Start ``specs`` connected by pipes, wait for all, and raise RunFailed if any failed.

    stderr of each process goes to ``log_dir/<n>-<role>.stderr`` so a failure can be shown.
    """
    if not specs:
        raise ValueError("a pipeline needs at least one process")
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    stderr_paths: list[Path] = []
    results: dict[int, ProcessStats] = {}
    started_at = time.monotonic()
    started = time.perf_counter()
    try:
        upstream = None
        for index, spec in enumerate(specs):
            last = index == len(specs) - 1
            stderr_path = log_dir / f"{index}-{spec.role}.stderr"
            stderr_paths.append(stderr_path)
            with stderr_path.open("wb") as stderr, _stdout_for(spec, last) as stdout:
                report = log_dir / f"{index}-{spec.role}.rusage"
                report.unlink(missing_ok=True)
                proc = subprocess.Popen(
                    wrapped(spec.argv, report),
                    stdin=upstream if upstream is not None else subprocess.DEVNULL,
                    stdout=stdout, stderr=stderr, env=dict(spec.env) if spec.env else None,
                    start_new_session=True,  # a timeout can kill the whole process group
                )
            if upstream is not None:
                upstream.close()  # only the reader keeps the pipe open: EOF/SIGPIPE work
            upstream = proc.stdout if stdout == subprocess.PIPE else None
            procs.append(proc)
        results = _wait_all(procs, specs, started, timeout, log_dir)
    finally:
        for proc in procs:
            if proc.returncode is None:
                _kill_group(proc)
    seconds = time.perf_counter() - started
    ordered = tuple(results[i] for i in range(len(specs)))
    failed = [i for i, stats in enumerate(ordered) if stats.exit_code != 0]
    if failed:
        # When a reader dies its writers fail on the broken pipe: the last failure is the cause.
        index = failed[-1]
        text = stderr_paths[index].read_bytes().decode("utf-8", "replace")
        tail = "\n    ".join(text.rstrip().splitlines()[-STDERR_TAIL_LINES:])
        raise RunFailed(
            f"{ordered[index].role} exited with {ordered[index].exit_code} "
            f"(log {stderr_paths[index]}):\n    {tail}"
        )
    return PipelineResult(seconds, ordered, started_at)


class _stdout_for:
    """Context manager yielding the stdout argument for Popen (file, pipe or /dev/null)."""

    def __init__(self, spec: ProcessSpec, last: bool) -> None:
        self._spec, self._last = spec, last
        self._file = None

    def __enter__(self) -> object:
        if self._spec.stdout is not None:
            self._file = self._spec.stdout.open("wb")
            return self._file
        return subprocess.DEVNULL if self._last else subprocess.PIPE

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()


def _wait_all(procs: list[subprocess.Popen[bytes]], specs: Sequence[ProcessSpec],
              started: float, timeout: float, log_dir: Path) -> dict[int, ProcessStats]:
    """Wait for every process in its own thread, so each exit time is exact."""
    results: dict[int, ProcessStats] = {}

    def wait(index: int) -> None:
        proc = procs[index]
        _, status = os.waitpid(proc.pid, 0)
        report = log_dir / f"{index}-{specs[index].role}.rusage"
        stats = _stats(specs[index].role, time.perf_counter() - started, status, report)
        proc.returncode = stats.exit_code  # we reaped it; tell Popen so it never waits again
        results[index] = stats

    threads = [threading.Thread(target=wait, args=(i,), daemon=True) for i in range(len(procs))]
    for thread in threads:
        thread.start()
    deadline = started + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    if len(results) < len(procs):
        hung = [specs[i].role for i in range(len(procs)) if i not in results]
        for proc in procs:
            if proc.returncode is None:
                _kill_group(proc)
        for thread in threads:
            thread.join(10)
        raise RunFailed(f"timed out after {timeout:.0f} s: {', '.join(hung)} still running")
    return results


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
