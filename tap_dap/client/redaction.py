"""Keep secrets out of logs, reprs and exception texts.

Pre-signed object URLs carry their signature in the query string; anyone holding the full URL can
read the object for ~15 minutes. Everything the client prints shows such URLs without the query.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"

# A URL with a query string anywhere in free text (server error pages may echo the signed URL).
_URL_WITH_QUERY = re.compile(r"(https?://[^\s?#\"'<>]+)\?[^\s\"'<>]+")
# urllib3/requests messages mention the request target without the host: "url: /path?X-Amz-...".
_PATH_WITH_QUERY = re.compile(r"(url: /[^\s?\"'<>]*)\?[^\s\"'<>)]*")
_WHITESPACE = re.compile(r"\s+")
# Anything shaped like a JWT (base64url JSON header "eyJ…" and two more parts).
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]+")

# Literal secrets of live clients (client secrets, basic credentials), scrubbed from every
# message built by the client, whatever path they took (e.g. a server echoing them back).
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Make `value` disappear from every text the client produces from now on."""
    if len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """Remove registered secrets and JWT-shaped strings from `text`."""
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _JWT.sub(REDACTED, text)


def redact_url(url: str) -> str:
    """Return `url` with its query string (and fragment) replaced by a marker."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if not parts.query and not parts.fragment:
        return url
    # Userinfo in a URL is a credential too; keep only the host and port.
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) + "?" + REDACTED


def redact_text(text: str) -> str:
    """Redact query strings of every URL found in free text."""
    text = _URL_WITH_QUERY.sub(rf"\1?{REDACTED}", text)
    return scrub(_PATH_WITH_QUERY.sub(rf"\1?{REDACTED}", text))


def excerpt(body: bytes | str, limit: int = 200) -> str:
    """A short, single-line, redacted excerpt of a response body for error messages."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[:limit] + "…"
    return redact_text(text)


class QueryStringRedactingFilter(logging.Filter):
    """Rewrites urllib3's DEBUG request lines so signed query strings are not logged.

    urllib3 logs `"GET /path?X-Amz-Signature=… HTTP/1.1" 200` at DEBUG for every request; a pipeline
    run with DEBUG logging would otherwise write working object URLs into its log files.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _redact_request_target(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        return True


def _redact_request_target(value: str) -> str:
    if "?" not in value:
        return value
    if value.startswith(("http://", "https://")):
        return redact_url(value)
    if value.startswith("/"):
        return value.split("?", 1)[0] + "?" + REDACTED
    return redact_text(value)


_URLLIB3_LOGGER = "urllib3.connectionpool"


def install_urllib3_redaction() -> None:
    """Attach the redacting filter to urllib3's request logger once per process."""
    logger = logging.getLogger(_URLLIB3_LOGGER)
    if not any(isinstance(f, QueryStringRedactingFilter) for f in logger.filters):
        logger.addFilter(QueryStringRedactingFilter())
