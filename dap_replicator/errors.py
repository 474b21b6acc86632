"""The replicator's errors: one hierarchy, each message one complete line naming the table.

The official client raises ``ValueError`` for a table in the wrong state; the classes for those
cases subclass it too, so code written against the official library keeps catching them.
"""

from __future__ import annotations


class ReplicatorError(Exception):
    """Base class of every error dap_replicator raises on purpose."""


class DatabaseConnectionError(ReplicatorError):
    """The connection string is missing or unusable (its password is never shown)."""


class TableAlreadyInitializedError(ReplicatorError, ValueError):
    """initialize() on a table the database already replicates."""


class TableNotInitializedError(ReplicatorError, ValueError):
    """synchronize() or drop on a table the database does not replicate."""


class TableNotFoundError(ReplicatorError, ValueError):
    """The DAP namespace has no table of that name."""


class TableBusyError(ReplicatorError):
    """Another call is replicating (or dropping) the same table right now; nothing was done."""


class ReplicationFailedError(ReplicatorError):
    """The DAP side or the database failed; what is already committed stays consistent.

    ``error_type`` and ``job_id`` are the DAP error's type and the job, when DAP said so.
    """

    def __init__(
        self, message: str, *, error_type: str | None = None, job_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.job_id = job_id


class SnapshotRequiredError(ReplicationFailedError):
    """DAP refused the incremental query (table reloaded, or the timestamp is out of range):
    synchronize() does not re-snapshot by itself; replicate() does."""


__all__ = [
    "DatabaseConnectionError",
    "ReplicationFailedError",
    "ReplicatorError",
    "SnapshotRequiredError",
    "TableAlreadyInitializedError",
    "TableBusyError",
    "TableNotFoundError",
    "TableNotInitializedError",
]
