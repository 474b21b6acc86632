"""A synchronous client for Instructure's DAP API (Canvas Data 2), built on requests.

Same names and meanings as the official `instructure-dap-client`, synchronous and thread-safe:

    from tap_dap.client import DAPClient, SnapshotQuery, Format, Mode

    with DAPClient() as session:
        job = session.await_job(
            session.query_snapshot(
                "canvas", "accounts", SnapshotQuery(Format.JSONL, Mode.CONDENSED)
            )
        )
        for obj in job.objects:
            for record in session.stream_object_records(obj):
                ...
"""

from tap_dap.client.auth import AccessToken
from tap_dap.client.client import DAPClient
from tap_dap.client.config import DAP_API_URL_DEFAULT, ClientSettings
from tap_dap.client.errors import (
    AccountDisabledError,
    AccountNotOnboardedError,
    AccountUnderMaintenanceError,
    AuthenticationError,
    ConfigurationError,
    DAPClientError,
    DownloadError,
    DownloadInterruptedError,
    GatewayTimeoutError,
    JobFailedError,
    JobTimeoutError,
    Location,
    NetworkError,
    NotFoundError,
    OperationError,
    OutOfRangeError,
    ProcessingError,
    RequestTypeForbiddenError,
    ServerError,
    SnapshotRequiredError,
    TruncatedObjectError,
    UnexpectedResponseError,
    ValidationError,
)
from tap_dap.client.retry import RetryPolicy, is_transient
from tap_dap.client.session import DAPSession
from tap_dap.client.types import (
    JOB_EXPIRY_MARGIN,
    REQUERY_DELAY_AFTER_EXPIRY,
    URL,
    CompleteIncrementalJob,
    CompleteJob,
    CompleteSnapshotJob,
    Credentials,
    DownloadTableDataResult,
    FailedJob,
    Format,
    GetTableDataResult,
    IncrementalQuery,
    Job,
    JobID,
    JobStatus,
    Mode,
    Object,
    ObjectID,
    Query,
    Resource,
    ResourceResult,
    SnapshotQuery,
    TableDataResult,
    TableJob,
    TableList,
    TableQuery,
    TokenProperties,
    VersionedSchema,
)
from tap_dap.client.wire import format_timestamp, parse_timestamp

__all__ = [
    "DAP_API_URL_DEFAULT",
    "JOB_EXPIRY_MARGIN",
    "REQUERY_DELAY_AFTER_EXPIRY",
    "URL",
    "AccessToken",
    "AccountDisabledError",
    "AccountNotOnboardedError",
    "AccountUnderMaintenanceError",
    "AuthenticationError",
    "ClientSettings",
    "CompleteIncrementalJob",
    "CompleteJob",
    "CompleteSnapshotJob",
    "ConfigurationError",
    "Credentials",
    "DAPClient",
    "DAPClientError",
    "DAPSession",
    "DownloadError",
    "DownloadInterruptedError",
    "TruncatedObjectError",
    "DownloadTableDataResult",
    "FailedJob",
    "Format",
    "GatewayTimeoutError",
    "GetTableDataResult",
    "IncrementalQuery",
    "Job",
    "JobFailedError",
    "JobID",
    "JobStatus",
    "JobTimeoutError",
    "Location",
    "Mode",
    "NetworkError",
    "NotFoundError",
    "Object",
    "ObjectID",
    "OperationError",
    "OutOfRangeError",
    "ProcessingError",
    "Query",
    "RequestTypeForbiddenError",
    "Resource",
    "ResourceResult",
    "RetryPolicy",
    "ServerError",
    "SnapshotQuery",
    "SnapshotRequiredError",
    "TableDataResult",
    "TableJob",
    "TableList",
    "TableQuery",
    "TokenProperties",
    "UnexpectedResponseError",
    "ValidationError",
    "VersionedSchema",
    "format_timestamp",
    "is_transient",
    "parse_timestamp",
]
