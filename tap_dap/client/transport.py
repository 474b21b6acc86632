"""HTTP plumbing: one shared requests.Session, login, authenticated JSON calls with retries.

The session is shared by all threads of a DAPSession (requests.Session is safe for concurrent
requests; the connection pool is sized for the download workers). The bearer token is attached per
request, never stored in the session's default headers, so pre-signed downloads — which go through
the same session — never carry it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
import requests
import urllib3

from tap_dap.client.auth import AccessToken, TokenManager
from tap_dap.client.config import ClientSettings
from tap_dap.client.deadline_adapter import DeadlineAdapter, set_deadline
from tap_dap.client.error_mapping import error_from_response
from tap_dap.client.errors import (
    AuthenticationError,
    ConfigurationError,
    DAPClientError,
    NetworkError,
    OperationError,
    UnexpectedResponseError,
)
from tap_dap.client.redaction import excerpt, install_urllib3_redaction, redact_text
from tap_dap.client.retry import RetryPolicy, call_with_retries, parse_retry_after
from tap_dap.client.types import Credentials

logger = logging.getLogger("tap_dap.client")

_ERRNO = re.compile(r"\[Errno [^\]]+\] [^'\"()\]]+")
_KNOWN_REASONS = (
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname provided",
    "Connection refused",
    "Connection reset by peer",
    "Remote end closed connection without response",
    "Connection aborted",
    "Connection broken",
    "IncompleteRead",
    "timed out",
)


def describe_network_error(exc: BaseException) -> str:
    """A short reason for a requests/urllib3 failure, without URLs (they may be signed)."""
    text = str(exc)
    match = _ERRNO.search(text)
    if match:
        return match.group(0).strip()
    for reason in _KNOWN_REASONS:
        if reason in text:
            return reason
    return type(exc).__name__


def _rejection_details(error: DAPClientError) -> tuple[str, str, str]:
    """(type, uuid, message) of a refused login, whatever shape the identity service used."""
    if isinstance(error, OperationError):
        return error.type, error.uuid, error.message
    body = getattr(error, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"], "", str(body.get("error_description") or "")
    return "", "", error.message


class _AuthorizationHeader(requests.auth.AuthBase):
    """Sets the Authorization header per request (`Bearer <jwt>` or `Basic <credentials>`)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._value
        return request

    def __repr__(self) -> str:
        return "_AuthorizationHeader(<redacted>)"


class DeadlinePassed(Exception):
    """A response body was still arriving when its deadline passed (see `body_chunks`)."""


def body_chunks(response: requests.Response, chunk_size: int, deadline: float
                ) -> Iterator[bytes]:
    """A streamed response's body as it arrives, checking `deadline` (monotonic) between chunks.

    The read timeout only bounds the silence between two packets: a server that sends a byte
    every few seconds would hold a plain read for hours. Each read here returns what has arrived
    (`read1`), so the deadline is checked even while bytes only trickle in. A broken connection
    is a requests.ConnectionError, as from `iter_content`.
    """
    raw = response.raw
    # A socket-backed body reads with read1; an in-memory one (e.g. requests-mock's) may lack it.
    read = raw.read1 if hasattr(getattr(raw, "_fp", None), "read1") else raw.read
    while True:
        try:
            chunk = read(chunk_size, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.exceptions.ConnectionError(describe_network_error(exc)) from None
        if not chunk:
            return
        yield chunk
        if time.monotonic() > deadline:
            raise DeadlinePassed


def _error_of(response: requests.Response, body: bytes, operation: str) -> DAPClientError:
    """The exception for an error response, with the server's Retry-After attached."""
    error = error_from_response(
        response.status_code,
        response.headers.get("Content-Type", ""),
        body,
        operation=operation,
    )
    error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error


class NoAuth(requests.auth.AuthBase):
    """For pre-signed URLs: no Authorization header (and no ~/.netrc lookup by requests)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


class Transport:
    """Sends requests to the DAP API and to object storage."""

    def __init__(self, settings: ClientSettings, credentials: Credentials) -> None:
        self.settings = settings
        self._credentials = credentials
        install_urllib3_redaction()
        self.http = requests.Session()
        pool = max(10, settings.download_workers + 4)
        adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=pool)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)
        self.http.headers["User-Agent"] = settings.user_agent
        self.http.verify = settings.verify_tls
        self.tokens = TokenManager(self._login)

    def close(self) -> None:
        self.http.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        auth: requests.auth.AuthBase,
        deadline: float,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request and receive the answer's headers (the body streams, see body_chunks).

        Transport failures become a (retryable) NetworkError. No wait for a packet outlasts the
        `deadline` (monotonic) by much.
        """
        host = requests.utils.urlparse(url).netloc
        left = max(0.01, deadline - time.monotonic())
        timeout = (min(self.settings.connect_timeout, left), min(self.settings.read_timeout, left))
        outer = set_deadline(deadline)  # trickling headers are cut off at it (deadline_adapter)
        try:
            return self.http.request(
                method, url, auth=auth, stream=True, timeout=timeout, **kwargs
            )
        except requests.exceptions.SSLError as exc:
            # Not retried: a certificate problem does not go away by itself.
            raise DAPClientError(
                f"TLS connection to {host} failed ({describe_network_error(exc)}); if a private "
                "CA is in use, pass its bundle as verify_tls",
                operation=operation,
            ) from None
        except requests.exceptions.ConnectTimeout:
            reason = f"could not connect to {host} within {timeout[0]:g} s"
        except requests.exceptions.ReadTimeout:
            reason = f"no response from {host} within {timeout[1]:g} s"
        except requests.exceptions.ConnectionError as exc:
            if time.monotonic() >= deadline:
                reason = (f"the answer's headers from {host} were still arriving when the "
                          "request's deadline passed")
            else:
                reason = f"cannot connect to {host} ({describe_network_error(exc)})"
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise ConfigurationError(
                f"invalid URL for {operation}: {redact_text(str(exc))}"
            ) from None
        except requests.RequestException as exc:
            reason = f"request to {host} failed ({describe_network_error(exc)})"
        finally:
            set_deadline(outer)
        raise NetworkError(reason, operation=operation)

    def exchange(self, method: str, url: str, *, operation: str, auth: requests.auth.AuthBase,
                 **kwargs: Any) -> tuple[requests.Response, bytes]:
        """A whole API request, body included, within request_timeout."""
        limit = self.settings.request_timeout
        deadline = time.monotonic() + limit
        response = self.send(method, url, operation=operation, auth=auth, deadline=deadline,
                             **kwargs)
        host = requests.utils.urlparse(url).netloc
        try:
            body = b"".join(body_chunks(response, 65536, deadline))
        except DeadlinePassed:
            reason = (f"the answer from {host} was not complete within {limit:g} s "
                      "(request_timeout_seconds)")
        except requests.RequestException as exc:
            reason = f"the connection to {host} broke ({exc})"
        else:
            return response, body
        finally:
            response.close()
        raise NetworkError(reason, operation=operation)  # the retry's WARNING shows it

    # -- login -----------------------------------------------------------------------------

    def _login(self) -> str:
        url = f"{self.settings.base_url}/ids/auth/login"
        operation = f"DAP login at {url}"
        client_id = self._credentials.client_id

        def attempt() -> str:
            response, body = self.exchange(
                "POST",
                url,
                operation=operation,
                auth=_AuthorizationHeader(f"Basic {self._credentials.basic_credentials}"),
                data={"grant_type": "client_credentials"},
            )
            status = response.status_code
            if status >= 400:
                error = _error_of(response, body, operation)
                if status in (400, 401, 403):
                    kind, uuid, detail = _rejection_details(error)
                    raise AuthenticationError(
                        kind,
                        uuid,
                        f"DAP rejected the client credentials for client ID {client_id!r}"
                        + (f" ({detail})" if detail else ""),
                        status=status,
                        operation=operation,
                    )
                if status in (404, 405):
                    error.message = (
                        error.message or "not found"
                    ) + f"; is the DAP base URL right ({self.settings.base_url})?"
                raise error
            # The body holds the token: never show it, only its shape.
            try:
                payload = orjson.loads(body)
                token = payload["access_token"]
                if not isinstance(token, str):
                    raise TypeError
            except (orjson.JSONDecodeError, KeyError, TypeError):
                size = f"{len(body)} bytes"  # never the body: it may hold a token
                raise self._not_understood(
                    response, "a DAP token response", size, operation
                ) from None
            logger.debug("logged in to DAP as client %s", client_id)
            return token

        return call_with_retries(attempt, self.settings.retry)

    def _not_understood(
        self, response: requests.Response, expected: str, shown: str, operation: str
    ) -> UnexpectedResponseError:
        """A success response of another kind: usually a base URL that is not the DAP API."""
        kind = response.headers.get("Content-Type", "no content type")
        return UnexpectedResponseError(
            f"HTTP {response.status_code} response ({kind}, {shown}) is not {expected}; "
            f"is the DAP base URL right ({self.settings.base_url})?",
            operation=operation,
        )

    # -- API calls -------------------------------------------------------------------------

    def _api_call(
        self, method: str, path: str, token: AccessToken, body: Any, operation: str
    ) -> Any:
        url = self.settings.base_url + path
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["data"] = orjson.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        started = time.monotonic()
        auth = _AuthorizationHeader(f"Bearer {token.value}")
        response, content = self.exchange(method, url, operation=operation, auth=auth, **kwargs)
        status = response.status_code
        logger.debug("%s %s -> HTTP %d in %.2f s", method, path, status, time.monotonic() - started)
        if status >= 400:
            raise _error_of(response, content, operation)
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            shown = repr(excerpt(content))
            raise self._not_understood(response, "JSON", shown, operation) from None

    def request_json(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: Any = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """An authenticated API call with retries; a 401 triggers one fresh login and one retry.

        `retry` replaces the session's policy for this call only.
        """

        def token() -> AccessToken:
            try:
                return self.tokens.current()
            except DAPClientError as exc:
                # Login has its own retries; retrying it again per API attempt would multiply them.
                raise _LoginFailed(exc) from None

        def attempt() -> Any:
            current = token()
            try:
                return self._api_call(method, path, current, body, operation)
            except AuthenticationError as exc:
                logger.info("%s: access token rejected (%s); logging in again", operation, exc)
                self.tokens.invalidate(current)
                return self._api_call(method, path, token(), body, operation)

        try:
            return call_with_retries(attempt, retry or self.settings.retry)
        except _LoginFailed as failed:
            raise failed.error from None


class _LoginFailed(Exception):
    """Carries a login error through the API retry loop, which only retries DAPClientError."""

    def __init__(self, error: DAPClientError) -> None:
        super().__init__(str(error))
        self.error = error
