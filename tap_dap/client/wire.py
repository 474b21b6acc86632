"""Translation between DAP JSON payloads and the client's types.

Parsing is tolerant of extra keys (the server may add fields; the official client breaks on them)
and strict about what we need: a missing or ill-typed required field is an UnexpectedResponseError
naming the field and the operation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tap_dap.client.errors import UnexpectedResponseError, job_error
from tap_dap.client.types import (
    CompleteIncrementalJob,
    CompleteSnapshotJob,
    FailedJob,
    IncrementalQuery,
    Job,
    JobOrigin,
    JobStatus,
    Object,
    Query,
    Resource,
    TableJob,
    VersionedSchema,
)

# Python's fromisoformat accepts at most 6 fractional digits in some versions; DAP may send more.
_EXTRA_FRACTION = re.compile(r"(\.\d{6})\d+")


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with `Z`; microseconds only when non-zero. Naive values are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def parse_timestamp(value: Any, what: str) -> datetime:
    """Parse a DAP timestamp into an aware datetime (naive input is taken as UTC)."""
    if not isinstance(value, str):
        raise UnexpectedResponseError(f"{what}: expected an ISO 8601 timestamp, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _EXTRA_FRACTION.sub(r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UnexpectedResponseError(f"{what}: not an ISO 8601 timestamp: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def query_to_json(query: Query) -> dict[str, Any]:
    """The request body of a query, in the field order the server documents; None omitted."""
    body: dict[str, Any] = {"format": query.format.value}
    if query.mode is not None:
        body["mode"] = query.mode.value
    if isinstance(query, IncrementalQuery):
        if query.since is not None:
            body["since"] = format_timestamp(query.since)
        if query.until is not None:
            body["until"] = format_timestamp(query.until)
    return body


def _field(data: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in data:
        raise UnexpectedResponseError(f"{what}: the response lacks the field {key!r}")
    value = data[key]
    # bool is an int subclass; a JSON true is never a valid number here.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise UnexpectedResponseError(f"{what}: field {key!r} has an unexpected value {value!r}")
    return value


def _require_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def parse_job(data: Any, what: str, origin: JobOrigin | None = None) -> Job:
    """Build the job type matching the payload's status and keys."""
    data = _require_object(data, what)
    job_id = _field(data, "id", str, what)
    raw_status = _field(data, "status", str, what)
    try:
        status = JobStatus(raw_status)
    except ValueError:
        raise UnexpectedResponseError(
            f"{what}: job {job_id} has unknown status {raw_status!r}"
        ) from None
    expires_raw = data.get("expires_at")
    expires_at = (
        None if expires_raw is None else parse_timestamp(expires_raw, f"{what}: expires_at")
    )

    if status is JobStatus.Failed:
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        return FailedJob(
            id=job_id,
            status=status,
            expires_at=expires_at,
            origin=origin,
            error=job_error(
                str(error.get("type") or ""),
                str(error.get("uuid") or ""),
                str(error.get("message") or ""),
            ),
        )
    if status is not JobStatus.Complete:
        return TableJob(id=job_id, status=status, expires_at=expires_at, origin=origin)

    schema_version = _field(data, "schema_version", int, what)
    raw_objects = _field(data, "objects", list, what)
    context: dict[str, Any] = {
        "job_id": job_id,
        "schema_version": schema_version,
        "expires_at": expires_at,
    }
    if "at" in data:
        context["at"] = parse_timestamp(data["at"], f"{what}: at")
    elif "since" in data and "until" in data:
        context["since"] = parse_timestamp(data["since"], f"{what}: since")
        context["until"] = parse_timestamp(data["until"], f"{what}: until")
    else:
        raise UnexpectedResponseError(
            f"{what}: complete job {job_id} has neither `at` nor `since`/`until`"
        )
    objects = []
    for item in raw_objects:
        item = _require_object(item, f"{what}: object of job {job_id}")
        objects.append(Object(_field(item, "id", str, what), **context))
    common = {
        "id": job_id,
        "status": status,
        "expires_at": expires_at,
        "origin": origin,
        "objects": objects,
        "schema_version": schema_version,
    }
    if "at" in context:
        return CompleteSnapshotJob(**common, at=context["at"])
    return CompleteIncrementalJob(**common, since=context["since"], until=context["until"])


def parse_tables(data: Any, what: str) -> list[str]:
    tables = _field(_require_object(data, what), "tables", list, what)
    if not all(isinstance(name, str) for name in tables):
        raise UnexpectedResponseError(f"{what}: `tables` must be a list of names")
    return tables


def parse_schema(data: Any, what: str) -> VersionedSchema:
    data = _require_object(data, what)
    return VersionedSchema(
        schema=_field(data, "schema", dict, what), version=_field(data, "version", int, what)
    )


def parse_resources(data: Any, what: str) -> dict[str, Resource]:
    urls = _field(_require_object(data, what), "urls", dict, what)
    resources: dict[str, Resource] = {}
    for object_id, entry in urls.items():
        url = _field(_require_object(entry, what), "url", str, what)
        if not url.startswith(("https://", "http://")):
            raise UnexpectedResponseError(f"{what}: object {object_id} got a non-HTTP URL")
        resources[object_id] = Resource(url, object_id=object_id)
    return resources
