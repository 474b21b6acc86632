"""Errors raised by the tap itself (the DAP client has its own hierarchy in tap_dap.client)."""

from __future__ import annotations


class TapDapError(Exception):
    """Base class of every error the tap raises; its message is one complete, user-facing line."""


class ConfigurationError(TapDapError):
    """The tap's settings are inconsistent or name things that do not exist."""


class StateError(TapDapError):
    """The state (bookmarks) given to the tap is unreadable or malformed."""


class SchemaConversionError(TapDapError):
    """A DAP table schema cannot be expressed as a Singer schema."""


class MalformedDataError(TapDapError):
    """A line of a DAP object is not a valid DAP record."""


class StreamSyncError(TapDapError):
    """One stream failed; carries what an operator needs to find the failure on the DAP side."""

    def __init__(
        self,
        stream: str,
        reason: str,
        *,
        job_id: str | None = None,
        error_type: str | None = None,
        error_uuid: str | None = None,
    ) -> None:
        self.stream = stream
        self.reason = reason
        self.job_id = job_id
        self.error_type = error_type
        self.error_uuid = error_uuid
        self.logged = False  # set once an error line has been written for it
        details = [f"job {job_id}" if job_id else None]
        if error_type:
            details.append(f"type {error_type}")
        if error_uuid:
            details.append(f"uuid {error_uuid}")
        suffix = ", ".join(d for d in details if d)
        super().__init__(f"{stream}: {reason}" + (f" ({suffix})" if suffix else ""))

    @classmethod
    def from_exception(
        cls, stream: str, exc: Exception, *, what: str | None = None, job_id: str | None = None
    ) -> StreamSyncError:
        """The stream's failure caused by ``exc``, keeping a DAP error's ``type`` and ``uuid``.

        For DAP operation errors only the server's message is repeated (type and uuid go to the
        suffix); any other error is shown in full.
        """
        error_type = getattr(exc, "type", None)
        error_uuid = getattr(exc, "uuid", None)
        if isinstance(error_type, str) and hasattr(exc, "message"):
            operation = getattr(exc, "operation", None)
            detail = getattr(exc, "message", "") or "no message"
            detail = f"{operation}: {detail}" if operation else detail
        else:
            detail = str(exc)
        reason = f"{type(exc).__name__}: {detail}"
        return cls(
            stream,
            f"{what}: {reason}" if what else reason,
            job_id=job_id,
            error_type=error_type if isinstance(error_type, str) else None,
            error_uuid=error_uuid if isinstance(error_uuid, str) else None,
        )


class StreamsFailedError(TapDapError):
    """Raised at the end of a run in which some streams failed (the others were synced)."""

    def __init__(self, failures: list[StreamSyncError], total: int) -> None:
        self.failures = failures
        if len(failures) == 1:
            super().__init__(str(failures[0]))
        else:
            names = ", ".join(f.stream for f in failures)
            super().__init__(f"{len(failures)} of {total} streams failed: {names} (errors above)")
