"""Client-credential login and HS256 JWTs (signed with a per-process secret, stdlib only)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import time
import uuid

import orjson

from tap_dap.emulator.errors import AuthenticationError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authority:
    def __init__(self, client_id: str, client_secret: str, token_ttl: int) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_ttl = token_ttl
        self._key = secrets.token_bytes(32)

    def __repr__(self) -> str:  # never show the client secret
        return f"Authority(client_id={self.client_id!r}, token_ttl={self.token_ttl})"

    def login(self, authorization: str | None, expired: bool = False) -> dict[str, object]:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise AuthenticationError("Basic client credentials are required")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError("malformed Basic credentials") from None
        valid_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        valid_secret = hmac.compare_digest(secret.encode(), self._client_secret.encode())
        if not (valid_id and valid_secret):
            raise AuthenticationError("invalid client credentials")
        now = math.ceil(time.time())  # rounding up: a token never lives less than token_ttl
        exp = now - 1 if expired else now + self.token_ttl
        claims = {"sub": client_id, "iat": now, "exp": exp, "jti": str(uuid.uuid4())}
        return {
            "access_token": self._sign(claims),
            "expires_in": max(exp - now, 0),
            "scope": "dap",
            "token_type": "Bearer",
        }

    def _sign(self, claims: dict[str, object]) -> str:
        head = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
        body = _b64(orjson.dumps(claims))
        mac = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(mac)}"

    def verify(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            raise AuthenticationError("a Bearer token is required")
        head, body, mac = token.split(".")
        expected = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        try:
            valid = hmac.compare_digest(_unb64(mac), expected)
            claims = orjson.loads(_unb64(body)) if valid else {}
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise AuthenticationError("invalid token")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise AuthenticationError("token expired")


class UrlSigner:
    """Pre-signed object URLs: path + expiry, HMAC-signed like an S3 query string."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self._key = secrets.token_bytes(32)

    def sign(self, path: str, expired: bool = False) -> str:
        expires = int(time.time()) + (-1 if expired else self.ttl)
        return f"{path}?X-Amz-Expires={expires}&X-Amz-Signature={self._mac(path, expires)}"

    def _mac(self, path: str, expires: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def check(self, path: str, query: dict[str, str]) -> str | None:
        """None if the URL is valid, else the reason it is not."""
        try:
            expires = int(query.get("X-Amz-Expires", ""))
        except ValueError:
            return "Request is not signed"
        if not hmac.compare_digest(query.get("X-Amz-Signature", ""), self._mac(path, expires)):
            return "The request signature does not match"
        if expires < time.time():
            return "Request has expired"
        return None
