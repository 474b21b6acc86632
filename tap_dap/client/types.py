"""Data types of the DAP API, named as in the official `instructure-dap-client`.

Differences from the official types, on purpose:
- `Object` also carries the context of the job that produced it (schema version, `at` or
  `since`/`until`, expiry), so a consumer handed a single object knows what it contains.
- `Resource`/`URL`/`Credentials`/`TokenProperties` never show secrets in `repr()`/`str()`;
  read `URL.url` for the real pre-signed URL.
- Enum members exist under both the official and UPPER_CASE names (`Mode.condensed` is
  `Mode.CONDENSED`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeAlias

from tap_dap.client.errors import ConfigurationError, OperationError
from tap_dap.client.redaction import redact_url, register_secret

JobID: TypeAlias = str
ObjectID: TypeAlias = str


class Format(Enum):
    """Output format of a query: TSV (PostgreSQL COPY style), CSV, JSON Lines or Parquet."""

    TSV = "tsv"
    CSV = "csv"
    JSONL = "jsonl"
    Parquet = "parquet"
    PARQUET = "parquet"


class Mode(Enum):
    """`expanded` splits nested fixed-cardinality fields into columns; `condensed` keeps JSON."""

    EXPANDED = "expanded"
    CONDENSED = "condensed"
    expanded = "expanded"
    condensed = "condensed"


class JobStatus(Enum):
    """Lifecycle of a query job."""

    Waiting = "waiting"
    Running = "running"
    Complete = "complete"
    Failed = "failed"
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"

    def is_terminal(self) -> bool:
        """True for `complete` and `failed`."""
        return self in (JobStatus.Complete, JobStatus.Failed)

    isTerminal = is_terminal  # the official library's spelling


@dataclass(frozen=True)
class URL:
    """A URL. `str()`/`repr()` hide the query string, which is the signature of pre-signed URLs."""

    url: str

    def __str__(self) -> str:
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"URL({redact_url(self.url)!r})"


@dataclass(frozen=True)
class VersionedSchema:
    """A table's JSON Schema and its (monotonically increasing) version."""

    schema: dict[str, Any]
    version: int


@dataclass(frozen=True)
class Object:
    """An output object of a completed job, identified by `id`; traded for a pre-signed URL.

    The other fields are context copied from the job; they do not take part in equality.
    """

    id: ObjectID
    job_id: JobID | None = field(default=None, compare=False, kw_only=True)
    schema_version: int | None = field(default=None, compare=False, kw_only=True)
    at: datetime | None = field(default=None, compare=False, kw_only=True)
    since: datetime | None = field(default=None, compare=False, kw_only=True)
    until: datetime | None = field(default=None, compare=False, kw_only=True)
    expires_at: datetime | None = field(default=None, compare=False, kw_only=True)


@dataclass(frozen=True)
class Resource:
    """A pre-signed URL of an object (lives ~15 minutes; no authentication needed to fetch it).

    `object_id` remembers which object the URL belongs to, so an expired URL can be re-resolved.
    """

    url: URL
    object_id: ObjectID | None = field(default=None, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.url, str):
            object.__setattr__(self, "url", URL(self.url))


#: A complete job (with its objects) expiring within this many seconds is not used: its query is
#: re-issued once it has expired (the server keeps answering with the cached job until then).
JOB_EXPIRY_MARGIN = 60.0
#: How long after such a job's expiry its query is re-issued (a little after, never before).
REQUERY_DELAY_AFTER_EXPIRY = 5.0


@dataclass(frozen=True)
class TableJob:
    """A query job (waiting or running, or the common base of terminal jobs)."""

    id: JobID
    status: JobStatus
    expires_at: datetime | None = None
    # Where the job came from, so await_job can re-issue the query if the result is about to
    # expire. Not part of the API payload; None for jobs fetched by id only.
    origin: JobOrigin | None = field(default=None, compare=False, repr=False, kw_only=True)

    def seconds_to_expiry(self, now: datetime | None = None) -> float | None:
        """Seconds until the job and its objects expire; None when the server gave no expiry."""
        if self.expires_at is None:
            return None
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()

    def expires_within(self, seconds: float = JOB_EXPIRY_MARGIN) -> bool:
        """True when the job expires within `seconds` from now (too late to start reading it)."""
        remaining = self.seconds_to_expiry()
        return remaining is not None and remaining < seconds

    def requery_delay(self) -> float:
        """Seconds to wait before re-issuing the query of a job about to expire: until it has
        expired, the server answers the same query with this same cached job."""
        return max(0.0, self.seconds_to_expiry() or 0.0) + REQUERY_DELAY_AFTER_EXPIRY


@dataclass(frozen=True, kw_only=True)
class CompleteJob(TableJob):
    """A job that completed successfully."""

    objects: list[Object]
    schema_version: int


@dataclass(frozen=True, kw_only=True)
class CompleteSnapshotJob(CompleteJob):
    """A completed snapshot; `at` is the table state, the start of the next incremental query."""

    at: datetime


@dataclass(frozen=True, kw_only=True)
class CompleteIncrementalJob(CompleteJob):
    """A completed incremental query covering [since, until)."""

    since: datetime
    until: datetime


@dataclass(frozen=True, kw_only=True)
class FailedJob(TableJob):
    """A job that terminated with failure; `error` holds the server's type/uuid/message.

    `error` is of the class its type names (e.g. SnapshotRequiredError), ProcessingError when
    the type is unknown or empty.
    """

    error: OperationError


Job: TypeAlias = TableJob | CompleteSnapshotJob | CompleteIncrementalJob | FailedJob


@dataclass(frozen=True)
class TableList:
    """Tables available in a namespace."""

    tables: list[str]


@dataclass(frozen=True)
class TableQuery:
    """Common part of snapshot and incremental queries."""

    format: Format
    mode: Mode | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "format", Format(self.format))
            if self.mode is not None:
                object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError as exc:
            raise ConfigurationError(f"invalid query: {exc}") from None


@dataclass(frozen=True)
class SnapshotQuery(TableQuery):
    """The present state of a table."""


@dataclass(frozen=True)
class IncrementalQuery(TableQuery):
    """Changes committed in [since, until); `until=None` means up to the latest commit."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.since, datetime):
            raise ConfigurationError("IncrementalQuery needs `since` as a datetime")
        if self.until is not None and not isinstance(self.until, datetime):
            raise ConfigurationError("IncrementalQuery `until` must be a datetime or None")


Query: TypeAlias = SnapshotQuery | IncrementalQuery


@dataclass(frozen=True)
class JobOrigin:
    """The query that created a job."""

    namespace: str
    table: str
    query: Query


@dataclass(frozen=True)
class ResourceResult:
    """Pre-signed URLs by object id."""

    urls: dict[ObjectID, Resource]


_REGION = re.compile(r"([\w-]+)#([\w-]+)")


@dataclass(frozen=True)
class Credentials:
    """DAP client credentials. `repr()` never shows the secret (nor its base64 form)."""

    basic_credentials: str = field(repr=False)
    client_id: str
    client_region: str

    @classmethod
    def create(cls, *, client_id: str, client_secret: str) -> Credentials:
        if not client_id:
            raise ConfigurationError(
                "missing DAP client ID: pass credentials or set DAP_CLIENT_ID "
                "(obtain it from identity.instructure.com)"
            )
        if not client_secret:
            raise ConfigurationError(
                "missing DAP client secret: pass credentials or set DAP_CLIENT_SECRET "
                "(obtain it from identity.instructure.com)"
            )
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        register_secret(client_secret)
        register_secret(basic)
        # Client ids look like "us-west-2#<uuid>"; the region is informational only.
        match = _REGION.match(client_id)
        return cls(
            basic_credentials=basic,
            client_id=client_id,
            client_region=match.group(1) if match else "Unknown",
        )


@dataclass(frozen=True)
class TokenProperties:
    """The login response. `repr()` hides the access token."""

    access_token: str = field(repr=False)
    expires_in: int
    scope: str
    token_type: str


@dataclass(frozen=True)
class TableDataResult:
    """Result of a table query: schema version, table state timestamp (UTC) and job id."""

    schema_version: int
    timestamp: datetime
    job_id: JobID


@dataclass(frozen=True)
class DownloadTableDataResult(TableDataResult):
    """Result of downloading a query's output: the paths of the files written."""

    downloaded_files: list[str]


@dataclass(frozen=True)
class GetTableDataResult(TableDataResult):
    """Result of running a query: the objects to trade for URLs."""

    objects: list[Object]
