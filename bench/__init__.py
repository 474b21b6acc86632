"""Benchmark harness: tap-dap | target-dap-sql against the official dap CLI, tap-dap |
target-postgres, raw COPY and gunzip+parse, on the same emulator data in one run.

Run ``.venv/bin/python -m bench --help``; see bench/README.md.
"""

from bench.errors import BenchError, RunFailed, SetupError

__all__ = ["BenchError", "RunFailed", "SetupError"]
