"""Turn a DAP error response into the matching exception.

Order of evidence: the error's `type` string first (the server says what it is), then the HTTP
status (401, 504), then the keys present (the official client's only rule, docs/dap-wire.md).
Unlike the official client, SnapshotRequired errors become SnapshotRequiredError, and non-JSON
bodies (an HTML 504 page from a gateway) become errors that state the status and show an excerpt.
"""

from __future__ import annotations

from typing import Any

import orjson

from tap_dap.client.errors import (
    AuthenticationError,
    DAPClientError,
    GatewayTimeoutError,
    Location,
    NotFoundError,
    OperationError,
    OutOfRangeError,
    ProcessingError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
    class_for_error_type,
)
from tap_dap.client.redaction import excerpt
from tap_dap.client.wire import parse_timestamp


def _class_for(error: dict[str, Any], status: int) -> type[DAPClientError]:
    error_type = error.get("type")
    if isinstance(error_type, str):
        by_type = class_for_error_type(error_type)
        if by_type is not None:
            return by_type
    if status == 401:
        return AuthenticationError
    if status == 504:
        return GatewayTimeoutError
    if isinstance(error.get("location"), dict):
        return ValidationError
    if "id" in error and "kind" in error:
        return NotFoundError
    if "since" in error:
        return OutOfRangeError
    if error.get("type") or error.get("uuid"):
        return ProcessingError
    return ServerError


def _optional_timestamp(value: Any) -> Any:
    if value is None:
        return None
    try:
        return parse_timestamp(value, "error")
    except UnexpectedResponseError:
        return None


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _from_error_object(
    error: dict[str, Any], body: Any, status: int, operation: str
) -> DAPClientError:
    cls = _class_for(error, status)
    message = str(error.get("message") or "")
    if cls is ServerError:
        return ServerError(body, status=status, operation=operation, message=message or None)
    if cls is GatewayTimeoutError:
        return GatewayTimeoutError(
            message or "the API gateway timed out", status=status, body=body, operation=operation
        )
    common: dict[str, Any] = {"status": status, "operation": operation}
    type_, uuid = str(error.get("type") or ""), str(error.get("uuid") or "")
    if cls is ValidationError:
        raw = error.get("location")
        location = None
        if isinstance(raw, dict):
            location = Location(
                _as_int(raw.get("line")), _as_int(raw.get("column")), _as_int(raw.get("character"))
            )
        return ValidationError(type_, uuid, message, location, **common)
    if cls is NotFoundError:
        found_id, kind = error.get("id"), error.get("kind")
        return NotFoundError(
            type_,
            uuid,
            message,
            None if found_id is None else str(found_id),
            None if kind is None else str(kind),
            **common,
        )
    if issubclass(cls, OutOfRangeError):
        since, until = (
            _optional_timestamp(error.get("since")),
            _optional_timestamp(error.get("until")),
        )
        return cls(type_, uuid, message, since, until, **common)
    assert issubclass(cls, OperationError)
    return cls(type_, uuid, message, **common)


def error_from_response(
    status: int, content_type: str, body: bytes, *, operation: str
) -> DAPClientError:
    """The exception for an HTTP error response (status >= 400)."""
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        shown = excerpt(body) if body else "(empty body)"
        kind = content_type.split(";")[0].strip() or "no content type"
        if status == 401:
            return AuthenticationError(
                "", "", f"non-JSON {kind} response: {shown!r}", status=status, operation=operation
            )
        if status == 504:
            return GatewayTimeoutError(
                f"the API gateway timed out (non-JSON {kind} response: {shown!r})",
                status=status,
                body=shown,
                operation=operation,
            )
        return ServerError(
            shown,
            status=status,
            operation=operation,
            message=f"non-JSON error response ({kind}): {shown!r}",
        )

    error = parsed.get("error")
    if isinstance(error, dict):
        return _from_error_object(error, parsed, status, operation)
    if isinstance(error, str):
        # OAuth style {"error": "invalid_client", "error_description": "..."} (identity services).
        detail = parsed.get("error_description") or parsed.get("message") or ""
        if status == 401:
            return AuthenticationError(error, "", str(detail), status=status, operation=operation)
        text = f"{error}: {detail}" if detail else error
        return ServerError(parsed, status=status, operation=operation, message=text)
    if status == 401:
        message = str(parsed.get("message") or "access denied")
        return AuthenticationError("", "", message, status=status, operation=operation)
    if status == 504:
        return GatewayTimeoutError(
            str(parsed.get("message") or "the API gateway timed out"),
            status=status,
            body=parsed,
            operation=operation,
        )
    return ServerError(parsed, status=status, operation=operation)
