"""Retry policy for DAP API calls and object downloads, built on `backoff`.

Retried: 429 (after the server's Retry-After), 500/502/503/504, connection failures, resets and
deadlines hit, and ProcessingError whatever its HTTP status (a bounded number of times: the server
reports transient failures that way, even as a 400 with an empty message). Never retried: any
other 400/401/403/404 and every error that states a fact about the request or the account
(validation, not found, out of range, account disabled).

The budget is time, not attempts: an outage of a few minutes is ridden out whatever the call,
and an endless one ends in one error once the budget is spent. Every retry is a WARNING naming
the operation, the attempt and the time spent; a recovered failure is never an ERROR.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import backoff

from tap_dap.client.errors import (
    AccountDisabledError,
    AccountNotOnboardedError,
    AccountUnderMaintenanceError,
    AuthenticationError,
    ConfigurationError,
    DAPClientError,
    DownloadInterruptedError,
    JobFailedError,
    NetworkError,
    NotFoundError,
    OutOfRangeError,
    ProcessingError,
    RequestTypeForbiddenError,
    ValidationError,
    class_for_error_type,
)

logger = logging.getLogger("tap_dap.client")

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_PERMANENT_ERRORS = (
    AuthenticationError,
    AccountDisabledError,
    AccountNotOnboardedError,
    AccountUnderMaintenanceError,
    RequestTypeForbiddenError,
    ValidationError,
    NotFoundError,
    OutOfRangeError,
    JobFailedError,
    ConfigurationError,
)


#: Defaults of the tap's settings retry_budget_seconds and max_retry_after_seconds.
DEFAULT_RETRY_BUDGET = 300.0
DEFAULT_MAX_RETRY_AFTER = 600.0


@dataclass(frozen=True)
class RetryPolicy:
    """Limits of one retried operation. Waits grow exponentially with jitter up to `max_delay`.

    `max_time` is the retry budget: no new attempt starts once it has passed since the first one
    (waits are cut to what is left of it). `max_attempts` optionally caps the attempts as well.
    A Retry-After is obeyed up to `max_retry_after` seconds.
    """

    max_attempts: int | None = None
    max_time: float = DEFAULT_RETRY_BUDGET
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    processing_error_attempts: int = 3
    # False: a 429 is raised at once (with its retry_after) for the caller to schedule around,
    # instead of this call sleeping on it; e.g. a job scheduler that must lower its own rate.
    retry_throttled: bool = True

    def __post_init__(self) -> None:
        if (self.max_attempts is not None and self.max_attempts < 1) or (
                self.processing_error_attempts < 1):
            raise ConfigurationError("retry attempts must be at least 1")
        # `not x > 0` / `not x >= 0`: a NaN compares false to everything and would never end.
        if not self.max_time > 0 or not all(
                limit >= 0 for limit in (self.base_delay, self.max_delay, self.max_retry_after)):
            raise ConfigurationError("retry times must be positive")


def is_transient(exc: BaseException) -> bool:
    """Whether a fresh attempt of the same request may succeed."""
    if isinstance(exc, NetworkError | DownloadInterruptedError):
        return True
    if not isinstance(exc, DAPClientError) or isinstance(exc, _PERMANENT_ERRORS):
        return False
    if exc.status == 429:
        return True
    if isinstance(exc, ProcessingError):
        # DAP reports transient server trouble as ProcessingError, even as HTTP 400 with an empty
        # message (docs/dap-wire.md): retried whatever the status when the server names that
        # type. An unknown error type merely classified as ProcessingError is retried on 5xx only.
        return exc.status in RETRYABLE_STATUSES or class_for_error_type(exc.type) is ProcessingError
    return exc.status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _wait_times(base: float, cap: float, retry_after_cap: float) -> Generator[float, Any, None]:
    # backoff primes the generator with send(None), then sends each failure's exception.
    exc = yield 0.0
    failures = 0
    while True:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            delay = min(retry_after, retry_after_cap)  # the server knows best, up to the cap
        else:
            ceiling = min(cap, base * 2**failures)
            delay = random.uniform(ceiling / 2, ceiling)  # "equal jitter": spread, never ~0
        failures += 1
        exc = yield delay


def retrying(
    policy: RetryPolicy,
    *,
    stop_if: Callable[[BaseException], bool] | None = None,
) -> Iterator[backoff.Attempt]:
    """`for attempt in retrying(p): with attempt: ...` — retries transient DAPClientErrors.

    `stop_if` lets a caller refuse a retry that would otherwise be allowed (e.g. once a stream
    has already handed out data).
    """
    processing_failures = 0

    def give_up(exc: BaseException) -> bool:
        nonlocal processing_failures
        if not is_transient(exc) or (stop_if is not None and stop_if(exc)):
            return True
        if getattr(exc, "status", None) == 429 and not policy.retry_throttled:
            return True
        # A ProcessingError that came as a 4xx may state a fact about the request: a few tries
        # only. As a 5xx/429 it is server trouble like any other and gets the whole budget.
        if isinstance(exc, ProcessingError) and exc.status not in RETRYABLE_STATUSES:
            processing_failures += 1
            return processing_failures >= policy.processing_error_attempts
        return False

    def on_backoff(details: Any) -> None:
        exc, wait = details["exception"], details["wait"]
        progress = (f"attempt {details['tries'] + 1}, {details['elapsed']:.1f} s of the "
                    f"{policy.max_time:g} s retry budget spent")
        asked = getattr(exc, "retry_after", None)
        if asked is None:
            logger.warning("%s; retrying in %.1f s (%s)", exc, wait, progress)
        elif asked > policy.max_retry_after:
            logger.warning("%s; the server asked to wait %.0f s (Retry-After), more than "
                           "max_retry_after_seconds allows: waiting %.0f s before retrying (%s)",
                           exc, asked, wait, progress)
        else:
            logger.warning("%s; waiting %.0f s as the server asked (Retry-After) before "
                           "retrying (%s)", exc, wait, progress)

    def on_giveup(details: Any) -> None:
        exc = details["exception"]
        if isinstance(exc, DAPClientError) and details["tries"] > 1:
            exc.attempts = details["tries"]
            exc.elapsed = details["elapsed"]
            if details["elapsed"] >= policy.max_time:
                exc.budget = policy.max_time
        if getattr(exc, "status", None) == 429 and not policy.retry_throttled:
            return  # handed back for the caller to schedule around: not a failure
        if isinstance(exc, ProcessingError):
            # Support needs the uuid even when the caller swallows the exception.
            logger.error("%s", exc)

    return backoff.retry_context(
        DAPClientError,
        _wait_times,
        max_tries=policy.max_attempts,
        max_time=policy.max_time,
        jitter=None,
        giveup=give_up,
        on_backoff=on_backoff,
        on_giveup=on_giveup,
        logger=None,
        base=policy.base_delay,
        cap=policy.max_delay,
        retry_after_cap=policy.max_retry_after,
    )


def call_with_retries(func: Callable[[], T], policy: RetryPolicy) -> T:
    """Call `func` until it succeeds, fails permanently, or the policy's limits are reached."""
    result: T
    for attempt in retrying(policy):
        with attempt:
            result = func()
    return result
