"""The benchmark harness's one exception hierarchy: every expected failure is a BenchError."""

from __future__ import annotations


class BenchError(Exception):
    """Base class: a one-line message that names what failed and where."""


class SetupError(BenchError):
    """A bench venv, the database server or the emulator could not be prepared."""


class RunFailed(BenchError):
    """A measured process exited non-zero, timed out, or left the wrong data behind."""
