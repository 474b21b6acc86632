"""Reading the password out of a `sqlalchemy_url`, only ever to keep it out of messages.

Its own module: the dialect registry (``dialects/__init__``) and the dialects that redact driver
messages both need it, and neither may import the other.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

#: A password given as a query parameter (libpq reads `postgresql://u@h/db?password=…`).
QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)
#: A `%` that does not start a `%XX` escape: libpq refuses the URL quoting the whole token (the
#: password), while Python's unquote (PyMySQL, SQLAlchemy) keeps it as it is.
BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: What a URL's password must have percent-encoded, shown with every refusal below.
ENCODING_HINT = ("; a password containing '#', '/', '?', '@' or '%' must be percent-encoded "
                 "(%23, %2F, %3F, %40, %25)")


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


def url_refusal(url: str) -> str | None:
    """Why the URL's credentials cannot be read the same way by every reader (libpq, Python's
    urllib, PyMySQL), or None. Each such misreading puts a piece of the password where drivers
    quote it (a host name, a port, a "bad token"), so the URL is refused first, with a line that
    shows no part of it. An `@` in the query (`?application_name=etl@prod`) is no credential."""
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = rest.split("/", 1)[0]  # libpq looks for the user part up to the first '/'
    path = re.split(r"[?#]", rest, maxsplit=1)[0]
    if "@" not in authority:
        if "@" in path:  # `u:pa/ss@h/db`: a '/' in the password ended the host part
            return ("sqlalchemy_url: the password holds '#', '/' or '?', which end the host part "
                    "of a URL" + ENCODING_HINT)
        credentials = ""
    else:
        credentials, _, host = authority.partition("@")  # libpq: at the first '@'
        if "@" in host:  # urllib and PyMySQL split at the last one
            return ("sqlalchemy_url: the user name or password holds an '@', which ends the "
                    "user part of a URL" + ENCODING_HINT)
        if any(c in credentials for c in "#?"):
            return ("sqlalchemy_url: the password holds '#', '/' or '?', which end the host part "
                    "of a URL" + ENCODING_HINT)
    password = credentials.partition(":")[2]
    passwords = [password, *(m.group(2) for m in QUERY_PASSWORD.finditer(url))]
    if any(BAD_PERCENT.search(p) for p in passwords):
        # libpq refuses it with "invalid percent-encoded token" and the token (the password)
        return ("sqlalchemy_url: the password holds a '%' that does not start a percent-encoded "
                "byte (%XX)" + ENCODING_HINT)
    return None
