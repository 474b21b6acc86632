"""The official DAP library's replicator API (SQLReplicator, SQLDrop, DatabaseConnection) on
tap-dap and target-dap-sql, run in-process: see docs/replicator.md."""

from dap_replicator.connection import DatabaseConnection, DatabaseConnectionConfig
from dap_replicator.errors import (
    DatabaseConnectionError,
    ReplicationFailedError,
    ReplicatorError,
    SnapshotRequiredError,
    TableAlreadyInitializedError,
    TableBusyError,
    TableNotFoundError,
    TableNotInitializedError,
)
from dap_replicator.replicator import ReplicationResult, SQLDrop, SQLReplicator

__all__ = [
    "DatabaseConnection",
    "DatabaseConnectionConfig",
    "DatabaseConnectionError",
    "ReplicationFailedError",
    "ReplicationResult",
    "ReplicatorError",
    "SQLDrop",
    "SQLReplicator",
    "SnapshotRequiredError",
    "TableAlreadyInitializedError",
    "TableBusyError",
    "TableNotFoundError",
    "TableNotInitializedError",
]
