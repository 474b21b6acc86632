"""Fixtures for the DAP client unit tests: a mocked API (requests-mock), JWTs and a fake clock."""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests_mock as rm
import urllib3

from tap_dap.client import Credentials, DAPClient, DAPSession, RetryPolicy

BASE = "https://dap.test"
LOGIN = f"{BASE}/ids/auth/login"
CLIENT_ID = "us-west-2#client-42"
# Distinctive strings that must never leak into logs, reprs or exception texts.
SECRET = "SUPERSECRET-c0ffee"
JWT_SIGNATURE = "JWTSIGNATUREdeadbeef"
URL_SIGNATURE = "SIGNATURE-abc123"
STORAGE = "https://storage.test/bucket/job-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(
    lifetime: timedelta = timedelta(hours=1),
    signature: str = JWT_SIGNATURE,
    issued_ago: timedelta = timedelta(0),
) -> str:
    issued = datetime.now(UTC) - issued_ago
    claims = {"exp": int((issued + lifetime).timestamp()), "iat": int(issued.timestamp())}
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{signature}"


def token_response(token: str | None = None) -> dict[str, object]:
    return {
        "access_token": token or make_jwt(),
        "expires_in": 3600,
        "scope": "urn:canvas:data:read",
        "token_type": "Bearer",
    }


def signed_url(name: str, signature: str = URL_SIGNATURE) -> str:
    return f"{STORAGE}/{name}?X-Amz-Expires=900&X-Amz-Signature={signature}"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


class FakeClock:
    """Replaces time.sleep/time.monotonic so waits are recorded instead of slept."""

    def __init__(self) -> None:
        self.now = 10_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


class BrokenBody(io.RawIOBase):
    """A response body that delivers `data` and then fails like a reset connection."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if not self._data:
            raise urllib3.exceptions.ProtocolError("Connection broken: connection reset by peer")
        size = min(len(buffer), len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(time, "sleep", fake.sleep)
    monkeypatch.setattr(time, "monotonic", fake.monotonic)
    return fake


@pytest.fixture
def credentials() -> Credentials:
    return Credentials.create(client_id=CLIENT_ID, client_secret=SECRET)


@pytest.fixture
def api(requests_mock: rm.Mocker, clock: FakeClock) -> rm.Mocker:
    """requests-mock with a working login endpoint (and the fake clock active)."""
    requests_mock.post(LOGIN, json=token_response())
    return requests_mock


def make_client(credentials: Credentials, **options: object) -> DAPClient:
    options.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0))
    options.setdefault("download_chunk_size", 64)
    return DAPClient(base_url=BASE, credentials=credentials, **options)


@pytest.fixture
def session(api: rm.Mocker, credentials: Credentials) -> Iterator[DAPSession]:
    with make_client(credentials) as dap_session:
        yield dap_session


def calls_to(mocker: rm.Mocker, url: str, method: str | None = None) -> list:
    """The recorded requests whose URL (without query) equals `url`."""
    return [
        r
        for r in mocker.request_history
        if r.url.split("?")[0] == url and (method is None or r.method == method)
    ]
