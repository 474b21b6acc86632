"""DAPClient: resolves configuration and opens a DAPSession as a context manager."""

from __future__ import annotations

import dataclasses
from typing import Any

from tap_dap.client.config import ClientSettings, resolve_base_url, resolve_credentials
from tap_dap.client.errors import ConfigurationError
from tap_dap.client.session import DAPSession
from tap_dap.client.types import Credentials

_SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(ClientSettings)) - {"base_url"}


class DAPClient:
    """Client for the DAP API. `with DAPClient() as session: session.get_tables("canvas")`.

    :param base_url: API base URL; default env DAP_API_URL, else https://api-gateway.instructure.com.
    :param credentials: `Credentials.create(client_id=..., client_secret=...)`; default env
        DAP_CLIENT_ID / DAP_CLIENT_SECRET.
    :param tracking: accepted for compatibility with the official client; nothing is ever sent to
        third parties.
    :param options: any ClientSettings field (timeouts, retry policy, polling, workers, TLS ...),
        e.g. `DAPClient(download_workers=8, retry=RetryPolicy(max_attempts=8), verify_tls=False)`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        credentials: Credentials | None = None,
        tracking: bool | None = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - _SETTING_NAMES)
        if unknown:
            raise ConfigurationError(
                f"unknown DAPClient option(s) {', '.join(unknown)}; valid: "
                + ", ".join(sorted(_SETTING_NAMES))
            )
        self._settings = ClientSettings(base_url=resolve_base_url(base_url), **options)
        self._credentials = resolve_credentials(credentials)
        self._session: DAPSession | None = None

    @property
    def settings(self) -> ClientSettings:
        return self._settings

    def __repr__(self) -> str:
        return (
            f"DAPClient(base_url={self._settings.base_url!r}, "
            f"client_id={self._credentials.client_id!r})"
        )

    def __enter__(self) -> DAPSession:
        self._session = DAPSession(self._settings, self._credentials)
        return self._session

    def __exit__(self, *exc_info: object) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
