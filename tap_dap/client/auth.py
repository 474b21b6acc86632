"""Access tokens: decoding the JWT expiry and refreshing under a lock.

The JWT signature is not verified (the client only needs `exp` to know when to log in again, and
the gateway verifies the token on every call), so no JWT library is needed.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tap_dap.client.errors import UnexpectedResponseError

# Log in again when the token expires within this margin (as the official client does) ...
REFRESH_MARGIN = timedelta(minutes=5)
# ... except for tokens issued with a short lifetime (`exp - iat`), where a 5-minute margin would
# mean a login before every call; for those, refresh once half of the lifetime has passed.
_MIN_USEFUL_FRACTION = 0.5


def _decode_jwt_payload(token: str) -> dict[str, object]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not three dot-separated parts")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    decoded = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    if not isinstance(decoded, dict):
        raise ValueError("payload is not a JSON object")
    return decoded


class AccessToken:
    """A JWT access token. Its text is only available as `.value`; str/repr show the expiry."""

    __slots__ = ("_token", "expires_at", "_refresh_at")

    def __init__(self, jwt_token: str, *, now: datetime | None = None) -> None:
        try:
            payload = _decode_jwt_payload(jwt_token)
            exp = payload["exp"]
            if isinstance(exp, bool) or not isinstance(exp, int | float):
                raise ValueError("`exp` is not numeric")
        except (ValueError, KeyError, UnicodeError, binascii.Error) as exc:
            # Never include the token itself in the message.
            raise UnexpectedResponseError(
                f"the DAP login response carried an access token that is not a JWT with a "
                f"numeric `exp` claim ({type(exc).__name__})"
            ) from None
        self._token = jwt_token
        self.expires_at = datetime.fromtimestamp(float(exp), tz=UTC)
        iat = payload.get("iat")
        if isinstance(iat, int | float) and not isinstance(iat, bool):
            issued = datetime.fromtimestamp(float(iat), tz=UTC)
        else:
            issued = now or datetime.now(UTC)
        lifetime = self.expires_at - issued
        margin = min(REFRESH_MARGIN, lifetime * _MIN_USEFUL_FRACTION)
        self._refresh_at = self.expires_at - max(margin, timedelta(0))

    @property
    def value(self) -> str:
        """The raw JWT, for the Authorization header only."""
        return self._token

    def is_expiring(self, now: datetime | None = None) -> bool:
        """True when the token should be replaced before the next call."""
        return (now or datetime.now(UTC)) >= self._refresh_at

    def __repr__(self) -> str:
        return f"AccessToken(expires_at={self.expires_at.isoformat()}, token=<redacted>)"

    __str__ = __repr__


class TokenManager:
    """Hands out a valid token to any thread; at most one login runs at a time."""

    def __init__(self, login: Callable[[], str]) -> None:
        self._login = login
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def current(self) -> AccessToken:
        with self._lock:
            if self._token is None or self._token.is_expiring():
                self._token = AccessToken(self._login())
            return self._token

    def invalidate(self, rejected: AccessToken) -> None:
        """Forget `rejected` (after a 401). A token another thread already replaced is kept."""
        with self._lock:
            if self._token is rejected:
                self._token = None
