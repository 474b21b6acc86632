"""How decoded values reach SQLite without a Python converter per value.

Profiled on a 300k-row `canvas.submissions` snapshot (46 columns: 6 timestamps, 7 booleans, a
UUID), the target spent more time turning decoded values into SQLite text in Python than
decoding the records: `datetime.isoformat()` of an aware datetime alone takes ~2 µs (its offset
is formatted through a timedelta), plus `str(uuid)`, plus a list and a tuple per row to hold the
converted values. And `sqlite3` spent ~0.45 µs binding each None and each bool (a failed adapter
look-up: only exact int, float, str and bytearray skip it).

So rows go to `executemany` as msgspec decoded them (checked in C as before), and `sqlite3`
adapters, all C callables, bind the rest:

- None stays None, a bool becomes its int: what sqlite3 bound them as anyway, found faster;
- a datetime, date or UUID becomes its msgspec JSON encoding (~0.1 µs), e.g.
  `b'"2024-03-17T23:30:55Z"'`, and the INSERT turns it into the stored text in SQL (`value_sql`):
  inside SQLite's step, where `sqlite3` has released the GIL, so on the background load thread it
  overlaps the next slice's decoding.

`sqlite3` keeps adapters per process, not per connection: they are installed while a SQLite
dialect has a connection open (`hold`/`release`) and the previous ones put back after.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import uuid
from typing import Any

import msgspec

_ENCODE = msgspec.json.Encoder().encode
#: Bound as their JSON text; `value_sql` knows what to cut from it.
_ADAPTERS: dict[type, Any] = {
    # A dict's `get` returns None for None without a Python frame: the cheapest "keep it".
    type(None): {}.get,
    bool: int,
    dt.datetime: _ENCODE,
    dt.date: _ENCODE,
    uuid.UUID: _ENCODE,
}
_lock = threading.Lock()
_holders = 0
_previous: dict[Any, Any] = {}


def hold() -> None:
    """Install the adapters (the first holder saves what was there)."""
    global _holders
    with _lock:
        if _holders == 0:
            for kind, adapter in _ADAPTERS.items():
                key = (kind, sqlite3.PrepareProtocol)
                _previous[key] = sqlite3.adapters.get(key)
                sqlite3.register_adapter(kind, adapter)
        _holders += 1


def release() -> None:
    """The last holder puts the previous adapters back."""
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0:
            for key, adapter in _previous.items():
                if adapter is None:
                    sqlite3.adapters.pop(key, None)
                else:
                    sqlite3.adapters[key] = adapter
            _previous.clear()


def value_sql(p: str, kind: str) -> str:
    """SQL for the stored value of a column of `kind` bound as parameter `p` (e.g. `?3`).

    A UUID or date is its JSON string without the quotes. A timestamp is stored as naive UTC
    `YYYY-MM-DD HH:MM:SS.ffffff` (fraction always written): msgspec writes
    `"YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]"`. Without an offset or with `Z` (DAP's), the text is
    cut and joined; another offset goes through SQLite's `strftime`, to whole seconds only, so
    the copied fraction never rounds up into the next second. Substrings of a BLOB are BLOBs
    (compared with X'…' literals); `||` and CAST make text.
    """
    if kind in ("uuid", "date"):
        return f"CAST(substr({p}, 2, {36 if kind == 'uuid' else 10}) AS TEXT)"
    if kind != "timestamp":
        return p
    fraction = f"CASE WHEN substr({p}, 21, 1) = X'2E' THEN substr({p}, 21, 7) ELSE '.000000' END"
    return (f"CASE WHEN {p} IS NULL THEN NULL "
            f"WHEN substr({p}, -2, 1) = X'5A' OR length({p}) IN (21, 28) "
            f"THEN substr({p}, 2, 10) || ' ' || substr({p}, 13, 8) || {fraction} "
            f"ELSE strftime('%Y-%m-%d %H:%M:%S', "
            f"CAST(substr({p}, 2, 19) || substr({p}, -7, 6) AS TEXT)) || {fraction} END")
