"""Small request/response value types shared by the API, the admin API and the HTTP handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tap_dap.emulator.errors import ApiError, ValidationError


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any  # email.message.Message-like, case-insensitive .get()
    body: bytes
    server_address: str

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            position = getattr(exc, "pos", 0) or 0
            line = self.body[:position].count(b"\n") + 1
            column = position - (self.body.rfind(b"\n", 0, position) + 1) + 1
            error = ValidationError(f"malformed JSON body: {exc.msg}", position + 1)
            error.fields["location"] = {"line": line, "column": column, "character": position + 1}
            raise error from None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    file_size: int = 0


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(payload))


def error_response(error: ApiError) -> Response:
    return Response(error.status, orjson.dumps(error.body()), headers=dict(error.headers))
