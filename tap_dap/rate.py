"""The job-creation rate: a sliding one-minute window with a cap that adapts to HTTP 429.

DAP publishes 5 job creations per minute but enforces less strictly (docs/dap-wire.md, Rate limits),
so the tap starts uncapped (or at ``max_jobs_per_minute``) and learns the real limit from the
server: a 429 pauses creation for the server's Retry-After and sets the cap to what the last minute
sustained (lowered by a quarter when 429s continue: multiplicative decrease, never below the
published 5/min); every quiet period without a 429 raises the cap by one job/minute again (additive
increase). A single 429 — often caused by another client sharing the account — thus costs a pause,
not the run.
"""

from __future__ import annotations

import logging
import math
from collections import deque

from tap_dap.client.retry import DEFAULT_MAX_RETRY_AFTER

logger = logging.getLogger("tap-dap.jobs")

#: DAP's documented job-creation limit; the adaptive cap never goes below it (unless configured).
PUBLISHED_JOBS_PER_MINUTE = 5
#: Without a 429 for this long, the adaptive cap rises by one job/minute (repeatedly).
QUIET_PERIOD = 15.0
#: Pause after a 429 without Retry-After, as DAP's own client does.
DEFAULT_PAUSE = 30.0
WINDOW = 60.0


class CreationRate:
    """Sliding one-minute window of accepted job creations under an adaptive cap (AIMD)."""

    def __init__(self, per_minute: int | None, max_pause: float = DEFAULT_MAX_RETRY_AFTER) -> None:
        #: The longest Retry-After obeyed (max_retry_after_seconds); a longer one is cut to it.
        self.max_pause = max_pause
        # The user's hard cap: never exceeded, never raised.
        self.configured = None if per_minute is None else max(1, per_minute)
        self._floor = min(PUBLISHED_JOBS_PER_MINUTE, self.configured or PUBLISHED_JOBS_PER_MINUTE)
        self._learned: int | None = None  # the cap set by the last 429; None: none seen yet
        self._last_throttled = 0.0
        self._created: deque[float] = deque()
        self._paused_until = 0.0

    def cap(self, now: float) -> int | None:
        """Jobs per minute allowed at `now` (None: no cap)."""
        learned = self._learned
        if learned is not None:
            learned += math.floor((now - self._last_throttled) / QUIET_PERIOD)
        if self.configured is None:
            return learned
        return self.configured if learned is None else min(self.configured, learned)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next creation is allowed."""
        while self._created and now - self._created[0] >= WINDOW:
            self._created.popleft()
        wait = max(0.0, self._paused_until - now)
        cap = self.cap(now)
        if cap is not None and len(self._created) >= cap:
            # A slot frees when the cap-th newest creation ages out of the window...
            blocked = WINDOW - (now - self._created[-cap])
            if self._learned is not None and cap != self.configured:
                # ...or sooner, when the next quiet period raises the learned cap.
                quiet = now - self._last_throttled
                blocked = min(blocked, QUIET_PERIOD - quiet % QUIET_PERIOD)
            wait = max(wait, blocked)
        return wait

    def record(self, now: float) -> None:
        """A creation is being attempted at `now` (taken back by `throttled` if refused)."""
        self._created.append(now)

    def throttled(self, now: float, retry_after: float | None) -> None:
        """The server refused the latest creation with 429: pause as told, then cap the rate.

        The refused attempt leaves the window. The first 429 caps the rate at what the last minute
        sustained — the server just showed that much is fine; 429s that continue lower it by a
        quarter each, down to the published 5/min.
        """
        if self._created:
            self._created.pop()
        self.delay(now)  # drops creations older than the window
        sustained = len(self._created)
        # First 429: the server just accepted `sustained`, so cap there and no harder.
        first = self._learned is None
        lowered = sustained if first else (self.cap(now) or sustained) * 3 // 4
        self._learned = max(self._floor, lowered)
        if self.configured is not None:
            self._learned = min(self._learned, self.configured)
        self._last_throttled = now
        pause = retry_after if retry_after is not None else DEFAULT_PAUSE
        asked = ""
        if retry_after is not None and pause > self.max_pause:
            asked = (f" (the server asked for {pause:.0f} s with Retry-After, more than "
                     "max_retry_after_seconds allows)")
            pause = self.max_pause
        self._paused_until = max(self._paused_until, now + pause)
        logger.warning(
            "DAP rate limit hit while creating jobs: pausing %.0f s%s, then at most %d "
            "jobs/minute (rising by one every %.0f s without another limit hit)",
            pause,
            asked,
            self._learned,
            QUIET_PERIOD,
        )
