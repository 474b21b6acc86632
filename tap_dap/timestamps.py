"""Bookmark timestamps: always UTC, always written with microseconds and a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime

from tap_dap.errors import ConfigurationError


def parse_timestamp(text: str, *, what: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a time zone (``Z`` or an offset) into UTC."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what}: {text!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise ConfigurationError(f"{what}: {text!r} has no time zone (append Z for UTC)")
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """``2024-01-15T12:00:00.123456Z``: the form DAP accepts back as ``since``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
