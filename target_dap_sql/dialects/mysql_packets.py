"""SQL text sized to the server's `max_allowed_packet`.

MySQL refuses a statement larger than its packet (16 MB by default on MariaDB, 4 MB on MySQL
5.7, as little as 1 KB if so set), and its refusal may reach the client as a reset connection
("MySQL server has gone away") rather than as the error. So the rows of a batch are written as
value lists of at most an eighth of the packet in characters (a utf8mb4 character is up to 4
bytes), none over the packet in bytes, and a row that alone is larger is refused before it is
sent, with the server's own error (mysql.py adds what to do about it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pymysql

#: The most characters of one statement's value lists, below any usual packet.
STATEMENT_BYTES = 2_000_000
#: MySQL's error for a statement larger than the server's `max_allowed_packet`.
PACKET_TOO_LARGE = 1153


class RowTooLarge(pymysql.err.OperationalError):
    """A row `value_lists` refused before sending: it alone is larger than the packet."""


def value_lists(escape: Callable[[Any], str], rows: Sequence[Any], limit: int,
            largest: int | None) -> Iterator[str]:
    """`(…), (…)` value lists of about `limit` characters each (one row more at most), none
    over `largest` bytes. A row whose text passes `largest` bytes is refused as the server
    would refuse it, before it is sent: the server's refusal may reach the client as a reset
    connection instead."""
    parts: list[str] = []
    size = 0
    for row in rows:
        text = escape(row)
        if largest is not None and (size + len(text) + 2) * 4 > largest:
            # Only a large row gets here (a chunk stays under `limit`, an eighth of the
            # packet): bytes counted exactly, as 4-byte characters could be few or many.
            if len(text.encode()) > largest:
                raise RowTooLarge(
                    PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes")
            if parts and len(", ".join([*parts, text]).encode()) > largest:
                # Each row fits, together they would not: the chunk so far goes first.
                yield ", ".join(parts)
                parts, size = [], 0
        parts.append(text)
        size += len(text) + 2
        if size >= limit:
            yield ", ".join(parts)
            parts, size = [], 0
    if parts:
        yield ", ".join(parts)
