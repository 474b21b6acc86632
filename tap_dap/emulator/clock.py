"""Timestamps as integer microseconds since the epoch, and a clock that never repeats or goes back.

Every commit, snapshot ``at`` and incremental ``until`` is one tick of the same clock, so
``snapshot(at)`` + ``incremental(since=at)`` + ``incremental(since=until)`` chain without gaps
or overlaps: a commit issued after a job gets a timestamp strictly greater than the job's
``at``/``until``.

By default the clock is the wall clock. ``start_at`` moves it to another time (``serve
--clock-start``: replaying a recorded timeline): it then runs at wall-clock speed from there, and
follows recorded changes stamped later than "now" (the clock jumps to them and runs on), so a
snapshot taken after a replayed change always includes it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _wall() -> int:
    return time.time_ns() // 1000


class Clock:
    """Monotonic microsecond clock: ``max(wall clock + offset, last + 1µs)``."""

    def __init__(self, not_before: int = 0) -> None:
        self._last = not_before
        self._offset = 0
        self._follows = False
        self._lock = threading.Lock()

    def tick(self) -> int:
        with self._lock:
            self._last = max(_wall() + self._offset, self._last + 1)
            return self._last

    def observe(self, ts: int) -> None:
        """Make sure later ticks are after ``ts`` (e.g. fixture timestamps from the future).

        A started clock also moves its running time to ``ts``, so it keeps running from there
        instead of creeping one microsecond per tick until the wall clock catches up.
        """
        with self._lock:
            self._last = max(self._last, ts)
            if self._follows:
                self._offset = max(self._offset, ts - _wall())

    def start_at(self, ts: int) -> None:
        """Run from ``ts`` (at wall-clock speed) instead of the wall clock; follow the data."""
        with self._lock:
            if ts <= self._last:
                raise ValueError(f"clock start {format_ts(ts)} is not after "
                                 f"{format_ts(self._last)}")
            self._offset = ts - _wall()
            self._last = ts - 1
            self._follows = True

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
