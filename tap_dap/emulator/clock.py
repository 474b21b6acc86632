"""Timestamps as integer microseconds since the epoch, and a clock that never repeats or goes back.

Every commit, snapshot ``at`` and incremental ``until`` is one tick of the same clock, so
``snapshot(at)`` + ``incremental(since=at)`` + ``incremental(since=until)`` chain without gaps
or overlaps: a commit issued after a job gets a timestamp strictly greater than the job's
``at``/``until``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock:
    """Monotonic microsecond clock: ``max(wall clock, last + 1µs)``."""

    def __init__(self, not_before: int = 0) -> None:
        self._last = not_before
        self._lock = threading.Lock()

    def tick(self) -> int:
        with self._lock:
            self._last = max(time.time_ns() // 1000, self._last + 1)
            return self._last

    def observe(self, ts: int) -> None:
        """Make sure later ticks are after ``ts`` (e.g. fixture timestamps from the future)."""
        with self._lock:
            self._last = max(self._last, ts)

    @property
    def last(self) -> int:
        return self._last


def format_ts(micros: int) -> str:
    """``2024-01-15T12:00:00.123456Z``: always 6 fraction digits (valid TSV and fromisoformat)."""
    seconds, fraction = divmod(micros, MICROS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


def parse_ts(text: str) -> int:
    """Parse an ISO 8601 timestamp with an offset (``Z`` or ``±hh:mm``) into epoch microseconds.

    Raises ``ValueError`` for naive or malformed input.
    """
    if not isinstance(text, str):
        raise ValueError("timestamp must be a string")
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds
