"""HTTP plumbing: routing, faults and rate limits, JSON errors, streaming objects with sendfile."""

from __future__ import annotations

import re
import socket
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from tap_dap.emulator import admin, api
from tap_dap.emulator.app import EmulatorApp
from tap_dap.emulator.errors import (
    AccountError,
    ApiError,
    AuthenticationError,
    DatasetError,
    ExpiredUrlError,
    NotFoundError,
    ServerFault,
    ValidationError,
)
from tap_dap.emulator.faults import Fault
from tap_dap.emulator.messages import Request, Response, error_response

MAX_BODY = 1 << 20
#: Recorded change lines (admin) may be large; everything else stays small.
MAX_UPLOAD = 1 << 30
UPLOADS = "/_emulator/changes/"
SEGMENT = r"([^/]+)"
API_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/ids/auth/login"), "auth"),
    ("GET", re.compile(rf"/dap/query/{SEGMENT}/table"), "tables"),
    ("GET", re.compile(rf"/dap/query/{SEGMENT}/table/{SEGMENT}/schema"), "schema"),
    ("POST", re.compile(rf"/dap/query/{SEGMENT}/table/{SEGMENT}/data"), "query"),
    ("GET", re.compile(rf"/dap/job/{SEGMENT}"), "job"),
    ("POST", re.compile(r"/dap/object/url"), "object_url"),
    ("GET", re.compile(rf"/objects/({SEGMENT[1:-1]}/{SEGMENT[1:-1]})"), "object"),
]


def decode_segment(segment: str) -> str:
    """One URL path segment as the name it stands for: ``%xx`` escapes decoded as UTF-8.

    Routes match the raw path first, so an escaped ``/`` (``%2F``) stays inside its segment.
    http.server hands the request line over as Latin-1 text, so a client that sends raw UTF-8
    bytes (instead of escaping them) is decoded right too.
    """
    raw = unquote_to_bytes(segment.encode("latin-1", errors="replace"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"path segment {segment!r} is not UTF-8 once URL-decoded") from None


_SIGNATURE = re.compile(r"(X-Amz-Signature=)[^&\s\"]+", re.IGNORECASE)

class _Drop(Exception):
    """Close the connection without answering (injected ``reset``)."""


def _fault_error(fault: Fault) -> ApiError | None:
    kind = fault.kind
    if kind in ("429", "500", "503", "504"):
        retry = fault.retry_after
        if retry is None and kind == "429":
            retry = 1
        return ServerFault(int(kind), f"injected {kind}", retry)
    if kind == "401":
        return AuthenticationError("injected authentication failure")
    if kind == "403":
        return AccountError(fault.error_type, f"injected {fault.error_type}")
    if kind == "processing":
        error = ApiError("")
        error.status = 400
        return error
    if kind == "expired" and fault.endpoint in ("tables", "schema", "query"):
        return AuthenticationError("token expired")
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dap-emulator"
    app: EmulatorApp  # set on the subclass made by make_server
    verbose = False

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        if self.verbose:  # a pre-signed URL's signature is a secret, in logs too
            line = _SIGNATURE.sub(r"\1***", format % args)
            sys.stderr.write(f"dap-emulator: {self.address_string()} {line}\n")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > (MAX_UPLOAD if parts.path.startswith(UPLOADS) else MAX_BODY):
            self._send(error_response(ValidationError("request body too large")))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        host, port = self.server.server_address[:2]
        request = Request(method, parts.path, dict(parse_qsl(parts.query)), self.headers, body,
                          f"{host}:{port}")
        fault: Fault | None = None
        try:
            if parts.path.startswith("/_emulator/"):
                response = self._admin(request)
            else:
                response, fault = self._api(request)
        except _Drop:
            self._drop()
            return
        except ApiError as exc:
            response = error_response(exc)
        except DatasetError as exc:
            response = error_response(ValidationError(str(exc)))
        except Exception as exc:  # never a traceback page: one line on stderr, JSON to the client
            sys.stderr.write(f"dap-emulator: internal error on {method} {parts.path}: "
                             f"{type(exc).__name__}: {exc}\n")
            response = error_response(ApiError(f"internal error: {type(exc).__name__}"))
        drip = fault.interval if fault is not None and fault.kind == "drip" else None
        self._send(response, truncate=fault is not None and fault.kind == "truncate", drip=drip)

    def _api(self, request: Request) -> tuple[Response, Fault | None]:
        for method, pattern, name in API_ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                endpoint = name
                break
        else:
            raise NotFoundError("resource", f"{request.method} {request.path}")
        fault, wait = self.app.faults.admit(endpoint)
        if wait is not None:
            raise ServerFault(429, "rate limit exceeded", wait)
        if fault is not None:
            if fault.kind == "reset":
                raise _Drop
            if error := _fault_error(fault):
                raise error
        args = tuple(decode_segment(group) for group in match.groups())
        if endpoint == "auth":
            return api.login(self.app, request, fault), fault
        if endpoint == "object":
            return self._object(request, args[0], fault), fault
        self.app.authority.verify(request.headers.get("Authorization"))
        handlers: dict[str, Callable[[], Response]] = {
            "tables": lambda: api.list_tables(self.app, *args),
            "schema": lambda: api.get_schema(self.app, *args),
            "query": lambda: api.query(self.app, *args, request, fault),
            "job": lambda: api.get_job(self.app, *args, fault),
            "object_url": lambda: api.object_urls(self.app, request, fault),
        }
        return handlers[endpoint](), fault

    def _object(self, request: Request, object_id: str, fault: Fault | None) -> Response:
        if fault is not None and fault.kind == "expired":
            raise ExpiredUrlError("Request has expired")
        if problem := self.app.signer.check(request.path, request.query):
            raise ExpiredUrlError(problem)
        found = self.app.jobs.object(object_id)
        return Response(200, content_type="application/octet-stream", file=found.path,
                        file_size=found.size)

    def _admin(self, request: Request) -> Response:
        if not self.client_address[0].startswith(("127.", "::1", "::ffff:127.")):
            raise AccountError("RequestTypeForbidden", "the admin API is loopback only")
        route = (request.method, request.path.removeprefix("/_emulator/"))
        app = self.app
        simple: dict[tuple[str, str], Callable[[], Response]] = {
            ("GET", "tables"): lambda: admin.tables(app),
            ("POST", "advance"): lambda: admin.advance(app, request),
            ("POST", "schema"): lambda: admin.schema(app, request),
            ("POST", "reload"): lambda: admin.reload(app, request),
            ("POST", "faults"): lambda: admin.add_faults(app, request),
            ("DELETE", "faults"): lambda: admin.clear_faults(app),
            ("GET", "requests"): lambda: admin.requests(app, "GET"),
            ("DELETE", "requests"): lambda: admin.requests(app, "DELETE"),
            ("GET", "clock"): lambda: admin.clock(app),
        }
        if route in simple:
            return simple[route]()
        truth = re.fullmatch(r"truth/([^/]+)/([^/]+)", route[1])
        if request.method == "GET" and truth:
            return admin.truth(app, decode_segment(truth.group(1)), decode_segment(truth.group(2)))
        changes = re.fullmatch(r"changes/([^/]+)/([^/]+)", route[1])
        if request.method == "POST" and changes:
            return admin.changes(app, request, decode_segment(changes.group(1)),
                                 decode_segment(changes.group(2)))
        raise NotFoundError("resource", f"{request.method} {request.path}")

    # ---- writing ----

    def _send(self, response: Response, truncate: bool = False,
              drip: float | None = None) -> None:
        size = response.file_size if response.file is not None else len(response.body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(size))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        limit = size // 2 if truncate else size
        try:
            if drip is not None:
                self._drip(response, drip)
            elif response.file is not None:
                with response.file.open("rb") as handle:
                    self.wfile.flush()
                    self.connection.sendfile(handle, 0, limit)
            else:
                self.wfile.write(response.body[:limit])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if truncate:
            self._drop()

    def _drip(self, response: Response, interval: float) -> None:
        """The body one byte every `interval` seconds (injected ``drip``: a server that keeps
        a connection alive without ever finishing, until the client gives up on it)."""
        body = response.file.read_bytes() if response.file is not None else response.body
        for position in range(len(body)):
            self.wfile.write(body[position:position + 1])
            self.wfile.flush()
            time.sleep(interval)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def make_server(app: EmulatorApp, host: str, port: int, verbose: bool = False) -> EmulatorServer:
    handler = type("BoundHandler", (Handler,), {"app": app, "verbose": verbose})
    server_class = EmulatorServer
    if ":" in host:
        server_class = type("EmulatorServer6", (EmulatorServer,),
                            {"address_family": socket.AF_INET6})
    return server_class((host, port), handler)
