"""Settings of a DAP client, resolved from arguments and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

from tap_dap.client.errors import ConfigurationError
from tap_dap.client.retry import RetryPolicy
from tap_dap.client.types import JOB_EXPIRY_MARGIN, Credentials

DAP_API_URL_DEFAULT = "https://api-gateway.instructure.com"
#: Defaults of the tap's settings request_timeout_seconds and object_download_timeout_seconds.
DEFAULT_REQUEST_TIMEOUT = 120.0
DEFAULT_OBJECT_DOWNLOAD_TIMEOUT = 1800.0


def _package_version() -> str:
    try:
        return version("tap-dap")
    except PackageNotFoundError:
        return "0+unknown"


USER_AGENT = f"tap-dap/{_package_version()}"


@dataclass(frozen=True)
class ClientSettings:
    """Every limit of the client in one place; DAPClient's keyword arguments fill it."""

    base_url: str = DAP_API_URL_DEFAULT
    # True, False, or a path to a CA bundle (private CAs / TLS-inspecting proxies).
    verify_tls: bool | str = True
    connect_timeout: float = 30.0
    # Longest silence while waiting for a packet.
    read_timeout: float = 300.0
    # Longest whole API request (answer included) and whole object download attempt: a server
    # that trickles bytes never trips read_timeout. Hitting one is retried like a broken link.
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    object_download_timeout: float = DEFAULT_OBJECT_DOWNLOAD_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # await_job polling: starts at poll_interval, grows by poll_growth up to poll_interval_max.
    poll_interval: float = 1.0
    poll_interval_max: float = 30.0
    poll_growth: float = 1.5
    # Overall limit for one await_job; None waits forever (the official client's behaviour).
    job_timeout: float | None = 6 * 3600.0
    # A complete job expiring within this many seconds is re-queried (its objects would vanish).
    expiry_margin: float = JOB_EXPIRY_MARGIN
    max_requeries: int = 3
    # Object ids per POST /dap/object/url call.
    url_batch_size: int = 50
    download_workers: int = 4
    download_chunk_size: int = 1024 * 1024
    # How often an expired/forbidden pre-signed URL is re-resolved for one download attempt.
    max_url_refreshes: int = 2
    user_agent: str = USER_AGENT

    def __post_init__(self) -> None:
        positive = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "request_timeout": self.request_timeout,
            "object_download_timeout": self.object_download_timeout,
            "poll_interval": self.poll_interval,
            "poll_interval_max": self.poll_interval_max,
            "url_batch_size": self.url_batch_size,
            "download_workers": self.download_workers,
            "download_chunk_size": self.download_chunk_size,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigurationError(f"DAP client setting {name} must be positive, not {value}")
        if self.job_timeout is not None and self.job_timeout <= 0:
            raise ConfigurationError("DAP client setting job_timeout must be positive or None")
        if self.poll_growth < 1:
            raise ConfigurationError("DAP client setting poll_growth must be at least 1")


def _scheme_and_host(url: str) -> str:
    """How error messages show a base URL: scheme and host only (never user:password@, query)."""
    parts = urlsplit(url if "://" in url else "//" + url)
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{host or '(no host)'}…"


def resolve_base_url(base_url: str | None) -> str:
    """Argument, else env DAP_API_URL, else the public gateway; validated, trailing / stripped."""
    raw = base_url or os.environ.get("DAP_API_URL") or DAP_API_URL_DEFAULT
    candidate = raw.strip().rstrip("/")
    parts = urlsplit(candidate)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"invalid DAP base URL {_scheme_and_host(raw.strip())}: expected an http(s) URL such "
            f"as {DAP_API_URL_DEFAULT}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"invalid DAP base URL {_scheme_and_host(raw.strip())}: it must not contain "
            "credentials, a query string or a fragment"
        )
    return candidate


def resolve_credentials(credentials: Credentials | None) -> Credentials:
    """Argument, else env DAP_CLIENT_ID and DAP_CLIENT_SECRET."""
    if credentials is not None:
        return credentials
    return Credentials.create(
        client_id=os.environ.get("DAP_CLIENT_ID", ""),
        client_secret=os.environ.get("DAP_CLIENT_SECRET", ""),
    )
