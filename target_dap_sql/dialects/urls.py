"""Reading the password out of a `sqlalchemy_url`, only ever to keep it out of messages.

Its own module: the dialect registry (``dialects/__init__``) and the dialects that redact driver
messages both need it, and neither may import the other.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

#: A password given as a query parameter (libpq reads `postgresql://u@h/db?password=…`).
QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)


def url_password(url: str) -> str | None:
    """The password part of a URL as written, also when delimiters in it fool a URL parser
    (`postgresql://u:My#S3cret@h/db` reads as a fragment to urllib): everything between the
    scheme's `//`, the first `:` and the last `@`. Only ever used to hide it."""
    rest = url.split("://", 1)[1] if "://" in url else url
    if "@" not in rest:
        return None
    userinfo = rest.rsplit("@", 1)[0]
    return userinfo.split(":", 1)[1] if ":" in userinfo else None


def url_secrets(url: str) -> list[str]:
    """Every password a URL holds (userinfo and `password=` query parameters, as written and
    percent-decoded), longest first: what messages, reprs and child processes must not show."""
    found = {url_password(url) or ""}
    for match in QUERY_PASSWORD.finditer(url):
        found |= {match.group(2), unquote(match.group(2))}
    found.discard("")
    return sorted(found, key=len, reverse=True)
