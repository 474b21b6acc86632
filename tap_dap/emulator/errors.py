"""The emulator's exception hierarchy.

``EmulatorError`` is the root. ``ApiError`` subclasses carry the HTTP status and the exact DAP
error body the real API would send; the HTTP layer renders them verbatim, so every expected
failure is a JSON answer with the right status rather than a traceback. ``DatasetError`` reports
bad fixture input or bad CLI options (one line naming what and where).
"""

from __future__ import annotations

import uuid
from typing import Any


class EmulatorError(Exception):
    """Root of every error raised by the emulator."""


class DatasetError(EmulatorError):
    """A dataset, fixture directory or option is unusable."""


class ApiError(EmulatorError):
    """An error answered to an API client as ``{"error": {...}}`` with an HTTP status."""

    status = 500
    error_type = "ProcessingError"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.uuid = str(uuid.uuid4())
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        error = {"type": self.error_type, "uuid": self.uuid, "message": self.message}
        error.update(self.fields)
        return {"error": error}


class ValidationError(ApiError):
    status = 400
    error_type = "ValidationError"

    def __init__(self, message: str, character: int = 1) -> None:
        # The DAP body always carries a location; for non-JSON problems it points at the start.
        super().__init__(message, location={"line": 1, "column": character, "character": character})


class NotFoundError(ApiError):
    status = 404

    def __init__(self, kind: str, ident: str) -> None:
        self.error_type = "ObjectNotFound"
        super().__init__(f"{kind.capitalize()} does not exist: {ident}", id=ident, kind=kind)


class OutOfRangeError(ApiError):
    status = 400
    error_type = "OutOfRange"

    def __init__(self, message: str, since: str, until: str | None = None) -> None:
        super().__init__(message, since=since, until=until)


class SnapshotRequiredError(OutOfRangeError):
    error_type = "SnapshotRequired"


class AuthenticationError(ApiError):
    status = 401
    error_type = "AuthenticationError"


class AccountError(ApiError):
    """403 errors are told apart by ``type`` (AccountDisabled, AccountNotOnboarded, ...)."""

    status = 403

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        super().__init__(message)


class ServerFault(ApiError):
    """An injected 5xx (or 429) answer; ``retry_after`` becomes a Retry-After header."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        self.status = status
        self.error_type = "TooManyRequests" if status == 429 else "ProcessingError"
        super().__init__(message)
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


class ExpiredUrlError(ApiError):
    status = 403
    error_type = "AccessDenied"
