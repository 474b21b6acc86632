"""The exception hierarchy of tap_dap.client, rooted at DAPClientError.

Names and meanings follow the official `instructure-dap-client` so its users feel at home, with two
deliberate differences: every class derives from DAPClientError (one `except` catches them all), and
`str()` of every error says what failed, the server's `type` and `uuid`, and the HTTP status.

    DAPClientError
    ├── ConfigurationError          bad base URL, missing credentials (also a ValueError)
    ├── NetworkError                host unreachable, connection reset, timeouts (after retries)
    ├── UnexpectedResponseError     a success response we cannot understand
    ├── JobTimeoutError             await_job gave up waiting
    ├── DownloadError               object download failed / corrupt gzip / bad file name
    │   └── DownloadInterruptedError   the connection broke mid-body (retryable)
    │       └── TruncatedObjectError    a complete answer whose gzip stream ends early
    ├── ServerError                 an error response not reported as a DAP operation error
    │   └── GatewayTimeoutError
    └── OperationError              an error the DAP server reported with type/uuid/message
        ├── AuthenticationError, AccountNotOnboardedError, AccountDisabledError,
        │   AccountUnderMaintenanceError, RequestTypeForbiddenError
        ├── ValidationError, NotFoundError, ProcessingError, JobFailedError
        └── OutOfRangeError
            └── SnapshotRequiredError
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tap_dap.client.redaction import excerpt, redact_text


class DAPClientError(RuntimeError):
    """Root of every error raised by tap_dap.client."""

    def __init__(self, message: str = "", *, operation: str | None = None) -> None:
        # Redacted before it is stored: `args` feeds repr() and tracebacks, which bypass __str__.
        message = redact_text(message)
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.status: int | None = None
        # Seconds the server asked us to wait (Retry-After), if any.
        self.retry_after: float | None = None
        # Filled in by the retry machinery when it gives up after several attempts.
        self.attempts = 1
        self.elapsed = 0.0
        # The retry budget (seconds) when it ran out; None when the retries ended otherwise.
        self.budget: float | None = None

    def _describe(self) -> str:
        prefix = f"{self.operation}: " if self.operation else ""
        return prefix + (self.message or type(self).__name__)

    def __str__(self) -> str:
        text = self._describe()
        if self.attempts > 1:
            text += f" (gave up after {self.attempts} attempts in {self.elapsed:.1f} s"
            if self.budget is not None:
                text += f": the retry budget of {self.budget:g} s is spent"
            text += ")"
        # Server-provided text may echo a token or a signed URL back at us.
        return redact_text(text)


class ConfigurationError(DAPClientError, ValueError):
    """The client was configured with a missing or malformed setting."""


class NetworkError(DAPClientError):
    """The DAP API or object storage could not be reached, or the connection broke."""


class UnexpectedResponseError(DAPClientError):
    """A response had a success status but a body this client cannot interpret."""


class JobTimeoutError(DAPClientError):
    """A query job did not finish within the configured time."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class DownloadError(DAPClientError):
    """Downloading, decompressing or saving an object failed.

    Messages name the object id (or the redacted URL), never the pre-signed URL itself.
    """

    def __init__(self, message: str, *, object_id: str | None = None) -> None:
        super().__init__(message)
        self.object_id = object_id


class DownloadInterruptedError(DownloadError):
    """The connection broke while the object body was being read; a fresh attempt may succeed.

    `lines_delivered` is how many lines a line stream had handed out before the break (0 for
    byte and block streams): a reader that restarts the object skips that many.
    """

    def __init__(
        self, message: str, *, object_id: str | None = None, lines_delivered: int = 0
    ) -> None:
        super().__init__(message, object_id=object_id)
        self.lines_delivered = lines_delivered


class TruncatedObjectError(DownloadInterruptedError):
    """A complete HTTP answer held a gzip stream that ends early (Content-Length agreed).

    Retryable like a broken connection: a cache or proxy may have stored a cut-off copy, so a
    fresh attempt also asks for a fresh pre-signed URL.
    """


class ServerError(DAPClientError):
    """An error response that is not a DAP operation error (unknown shape, non-JSON body, 5xx).

    :param body: The (parsed JSON, or excerpted text) body returned by the server.
    """

    def __init__(
        self,
        body: Any,
        *,
        status: int | None = None,
        operation: str | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(message or "", operation=operation)
        self.body = body
        self.status = status

    def _describe(self) -> str:
        prefix = f"{self.operation}: " if self.operation else ""
        text = self.message
        if not text:
            shown = self.body if isinstance(self.body, str) else json.dumps(self.body, default=str)
            text = f"unexpected error response: {excerpt(shown)}"
        if self.status is not None:
            text = f"HTTP {self.status}: {text}"
        return prefix + text


class GatewayTimeoutError(ServerError):
    """The API gateway timed out (HTTP 504) and retrying did not help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 504,
        body: Any = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(body, status=status, operation=operation, message=message)


class OperationError(DAPClientError):
    """An error reported by a DAP endpoint operation.

    :param type: Machine-processable identifier of the error (as sent by the server).
    :param uuid: Identifies the error in the server's logs; quote it when contacting support.
    :param message: Human-readable description (may be empty).
    """

    def __init__(
        self,
        type: str,
        uuid: str,
        message: str,
        *,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, operation=operation)
        self.type = type
        self.uuid = uuid
        self.status = status

    def _details(self) -> list[str]:
        return []

    def _describe(self) -> str:
        prefix = f"{self.operation}: " if self.operation else ""
        text = self.message or "the server gave no message"
        details = self._details()
        if self.type:
            details.append(f"type={self.type}")
        if self.uuid:
            details.append(f"uuid={self.uuid}")
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        return f"{prefix}{text} [{', '.join(details)}]" if details else prefix + text


class AuthenticationError(OperationError):
    """The client credentials or the access token were rejected."""


class AccountNotOnboardedError(OperationError):
    """The account has not been onboarded to DAP."""


class AccountDisabledError(OperationError):
    """The account is onboarded but its access is disabled."""


class AccountUnderMaintenanceError(OperationError):
    """The account is temporarily disabled for maintenance."""


class RequestTypeForbiddenError(OperationError):
    """This kind of request (e.g. snapshot or incremental) is forbidden for the account."""


@dataclass(frozen=True)
class Location:
    """A position in parsable input (1-based line, column and character)."""

    line: int
    column: int
    character: int


class ValidationError(OperationError):
    """The server rejected the request as malformed."""

    def __init__(
        self,
        type: str,
        uuid: str,
        message: str,
        location: Location | None = None,
        *,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(type, uuid, message, status=status, operation=operation)
        self.location = location

    def _details(self) -> list[str]:
        if self.location is None:
            return []
        loc = self.location
        return [f"at line {loc.line} column {loc.column} (character {loc.character})"]


class NotFoundError(OperationError):
    """A namespace, table, job or object does not exist (or has expired)."""

    def __init__(
        self,
        type: str,
        uuid: str,
        message: str,
        id: str | None = None,
        kind: str | None = None,
        *,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(type, uuid, message, status=status, operation=operation)
        self.id = id
        self.kind = kind

    def _details(self) -> list[str]:
        return [f"{self.kind or 'entity'} {self.id!r} not found"] if self.id else []


class OutOfRangeError(OperationError):
    """Data was queried outside the permitted time range [since, until]."""

    def __init__(
        self,
        type: str,
        uuid: str,
        message: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(type, uuid, message, status=status, operation=operation)
        self.since = since
        self.until = until

    def _details(self) -> list[str]:
        if self.since is None:
            return []
        window = f"permitted since {self.since.isoformat()}"
        if self.until is not None:
            window += f" until {self.until.isoformat()}"
        return [window]


class SnapshotRequiredError(OutOfRangeError):
    """The table was reloaded; incremental queries from before need a new snapshot first.

    A subclass of OutOfRangeError because the official client reports this condition as
    OutOfRangeError: code written for it keeps working, code that cares can catch this class.
    """


class ProcessingError(OperationError):
    """The server failed to process the request or the job (may come with an empty message)."""


class JobFailedError(OperationError):
    """A query job terminated with status `failed`; carries the job's error type, uuid, message."""

    def __init__(
        self,
        type: str,
        uuid: str,
        message: str,
        *,
        job_id: str,
    ) -> None:
        super().__init__(type, uuid, message, operation=f"query job {job_id} failed")
        self.job_id = job_id


_CLASS_BY_TYPE: dict[str, type[DAPClientError]] = {
    "validation": ValidationError,
    "notfound": NotFoundError,
    "outofrange": OutOfRangeError,
    "snapshotrequired": SnapshotRequiredError,
    "processing": ProcessingError,
    "accountdisabled": AccountDisabledError,
    "accountnotonboarded": AccountNotOnboardedError,
    "accountundermaintenance": AccountUnderMaintenanceError,
    "requesttypeforbidden": RequestTypeForbiddenError,
    "authentication": AuthenticationError,
    "unauthorized": AuthenticationError,
    "gatewaytimeout": GatewayTimeoutError,
}


def _normalise_type(error_type: str) -> str:
    """ "com.x.SnapshotRequiredException" / "SnapshotRequiredError" / "SnapshotRequired" → key."""
    name = error_type
    for separator in (".", "$", ":", "/"):
        name = name.rsplit(separator, 1)[-1]
    for suffix in ("Error", "Exception"):
        if name.endswith(suffix) and name != suffix:
            name = name[: -len(suffix)]
    return name.replace("_", "").replace("-", "").lower()


def class_for_error_type(error_type: str) -> type[DAPClientError] | None:
    """The error class the server means by an error `type` string, None if unknown."""
    return _CLASS_BY_TYPE.get(_normalise_type(error_type)) if error_type else None


def job_error(error_type: str, uuid: str, message: str) -> OperationError:
    """The error of a failed job, as the class its `type` names (ProcessingError if unknown).

    A failed incremental job of a reloaded table thus carries a SnapshotRequiredError, which
    callers recognise by class instead of comparing type strings.
    """
    cls = class_for_error_type(error_type)
    if cls is None or not issubclass(cls, OperationError):
        cls = ProcessingError
    return cls(error_type, uuid, message)
