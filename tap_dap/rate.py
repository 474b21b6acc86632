"""The job-creation rate: a sliding one-minute window with a cap that adapts to HTTP 429."""

from __future__ import annotations

import logging
from collections import deque

logger = logging.getLogger("tap-dap.jobs")

#: DAP's documented job-creation limit; the adaptive cap never goes below it.
PUBLISHED_JOBS_PER_MINUTE = 5


class CreationRate:
    """Sliding one-minute window of job creations, with a cap lowered on 429s."""

    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self._created: deque[float] = deque()
        self._paused_until = 0.0

    def delay(self, now: float) -> float:
        """Seconds to wait before the next creation is allowed."""
        while self._created and now - self._created[0] >= 60.0:
            self._created.popleft()
        wait = max(0.0, self._paused_until - now)
        if self.per_minute is not None and len(self._created) >= self.per_minute:
            wait = max(wait, 60.0 - (now - self._created[0]))
        return wait

    def record(self, now: float) -> None:
        self._created.append(now)

    def throttled(self, now: float, retry_after: float | None) -> None:
        """The server refused a creation with 429: pause as told, then go slower.

        The new cap is three quarters of what the last minute sustained, but never below DAP's
        published 5/min (unless configured lower): a 429 can also come from another client
        sharing the account, and the Retry-After pause already covers the moment itself.
        """
        self.delay(now)
        lowered = max(PUBLISHED_JOBS_PER_MINUTE, len(self._created) * 3 // 4)
        self.per_minute = lowered if self.per_minute is None else min(self.per_minute, lowered)
        self._paused_until = now + (retry_after if retry_after is not None else 30.0)
        logger.warning(
            "DAP rate limit hit while creating jobs: pausing %.0f s, then at most %d jobs/minute",
            self._paused_until - now,
            self.per_minute,
        )
