"""Injected faults, published rate limits and per-endpoint request counters."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tap_dap.emulator.errors import DatasetError

ENDPOINTS = ("auth", "tables", "schema", "query", "job", "object_url", "object")
KINDS = ("429", "500", "503", "504", "reset", "truncate", "expired", "failed", "processing",
         "401", "403", "drip")
KINDS_ONLY_FOR = {"failed": ("query", "job")}
ACCOUNT_ERRORS = ("AccountDisabled", "AccountNotOnboarded", "AccountUnderMaintenance",
                  "RequestTypeForbidden")
# Published DAP limits per minute (docs/dap-wire.md, Rate limits); auth and object downloads
# are not limited.
PUBLISHED_LIMITS = {"query": 5, "tables": 5, "job": 500, "schema": 500, "object_url": 200}


@dataclass
class Fault:
    endpoint: str
    kind: str
    count: int
    retry_after: int | None = None
    error_type: str = "AccountDisabled"
    # kind "drip": the answer's headers at once, then its body one byte every `interval` seconds
    interval: float = 1.0


def parse_faults(body: Any) -> list[Fault]:
    if not isinstance(body, list):
        raise DatasetError("faults: body must be a JSON array of fault objects")
    faults = []
    for position, item in enumerate(body):
        where = f"faults[{position}]"
        if not isinstance(item, dict):
            raise DatasetError(f"{where}: must be an object")
        if extra := set(item) - {"endpoint", "kind", "count", "retry_after", "error_type",
                                 "interval"}:
            raise DatasetError(f"{where}: unknown field(s) {sorted(extra)}")
        endpoint, kind = item.get("endpoint"), str(item.get("kind"))
        if endpoint not in ENDPOINTS:
            raise DatasetError(f"{where}: endpoint must be one of {', '.join(ENDPOINTS)}")
        if kind not in KINDS:
            raise DatasetError(f"{where}: kind must be one of {', '.join(KINDS)}")
        if kind in KINDS_ONLY_FOR and endpoint not in KINDS_ONLY_FOR[kind]:
            raise DatasetError(f"{where}: kind {kind!r} applies only to {KINDS_ONLY_FOR[kind]}")
        count = item.get("count", 1)
        retry_after = item.get("retry_after")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise DatasetError(f"{where}: count must be a positive integer")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise DatasetError(f"{where}: retry_after must be a non-negative integer")
        error_type = item.get("error_type", "AccountDisabled")
        if error_type not in ACCOUNT_ERRORS:
            raise DatasetError(f"{where}: error_type must be one of {', '.join(ACCOUNT_ERRORS)}")
        interval = item.get("interval", 1.0)
        if not isinstance(interval, int | float) or isinstance(interval, bool) or not (
                0 < interval <= 60):
            raise DatasetError(f"{where}: interval must be a number of seconds in (0, 60]")
        faults.append(Fault(endpoint, kind, count, retry_after, error_type, float(interval)))
    return faults


class FaultBook:
    """Queued faults (first match wins), sliding-window rate limits and request counters."""

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        self._faults: list[Fault] = []
        self._limits = dict(limits or {})
        self._windows: dict[str, deque[float]] = {e: deque() for e in ENDPOINTS}
        self._counts = {e: {"total": 0, "throttled": 0, "faulted": 0} for e in ENDPOINTS}
        self._lock = threading.Lock()

    def add(self, faults: list[Fault]) -> int:
        with self._lock:
            self._faults.extend(faults)
            return sum(f.count for f in self._faults)

    def clear(self) -> int:
        with self._lock:
            cleared = sum(f.count for f in self._faults)
            self._faults.clear()
            return cleared

    def admit(self, endpoint: str) -> tuple[Fault | None, int | None]:
        """Count a request; return (fault to apply, seconds to wait if rate limited)."""
        with self._lock:
            self._counts[endpoint]["total"] += 1
            for fault in self._faults:
                if fault.endpoint == endpoint:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    self._counts[endpoint]["faulted"] += 1
                    return fault, None
            limit = self._limits.get(endpoint)
            if limit is None:
                return None, None
            now = time.monotonic()
            window = self._windows[endpoint]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                self._counts[endpoint]["throttled"] += 1
                return None, max(1, math.ceil(window[0] + 60 - now))
            window.append(now)
            return None, None

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {e: dict(c) for e, c in self._counts.items()}

    def reset_counts(self) -> None:
        with self._lock:
            for counters in self._counts.values():
                counters.update(total=0, throttled=0, faulted=0)


def parse_limits(text: str) -> dict[str, int]:
    """``published`` or ``query=5,tables=5,...`` (requests per minute) for ``--rate-limits``."""
    if text == "published":
        return dict(PUBLISHED_LIMITS)
    limits: dict[str, int] = {}
    for item in text.split(","):
        name, _, number = item.partition("=")
        if name.strip() not in ENDPOINTS or not number.strip().isdigit() or int(number) < 1:
            raise DatasetError(f"--rate-limits: expected ENDPOINT=PER_MINUTE, got {item!r}")
        limits[name.strip()] = int(number)
    return limits
