"""``--profile``: one extra run of each of our variants under cProfile, summarised for the report.

Profiled runs are never timed (cProfile slows pure-Python code several-fold); they show where the
time goes, per process.
"""

from __future__ import annotations

import io
import pstats
from pathlib import Path

TOP = 20


def python_script(executable: str) -> str | None:
    """The interpreter of a console script (``#!/…/python``), or None for anything else."""
    try:
        with open(executable, "rb") as handle:
            first = handle.readline(200)
    except OSError:
        return None
    if first.startswith(b"#!") and b"python" in first:
        return first[2:].decode().strip().split()[0]
    return None


def profiled_argv(argv: tuple[str, ...], output: Path) -> tuple[str, ...]:
    interpreter = python_script(argv[0]) if argv else None
    if interpreter is None:
        return argv
    return (interpreter, "-m", "cProfile", "-o", str(output), *argv)


def summary(profile: Path, top: int = TOP) -> str:
    """The ``top`` functions by own time, as pstats prints them."""
    buffer = io.StringIO()
    stats = pstats.Stats(str(profile), stream=buffer)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    lines = buffer.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "function calls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start:] if line.strip())
