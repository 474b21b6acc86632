"""How decoded values reach SQLite without a Python converter per value.

Profiled on a 300k-row `canvas.submissions` snapshot (46 columns: 6 timestamps, 7 booleans, a
UUID), the target spent more time turning decoded values into SQLite text in Python than
decoding the records: `datetime.isoformat()` of an aware datetime alone takes ~2 µs (its offset
is formatted through a timedelta), plus `str(uuid)`, plus a list and a tuple per row to hold the
converted values. And `sqlite3` spent ~0.45 µs binding each None and each bool (a failed adapter
look-up: only exact int, float, str and bytearray skip it).

So rows go to `executemany` as msgspec decoded them (checked in C as before), and `sqlite3`
adapters bind the rest:

- None stays None, a bool becomes its int: what sqlite3 bound them as anyway, found faster;
- a datetime (in UTC if it has an offset), date or UUID becomes its msgspec JSON encoding
  (~0.1 µs), e.g. `b'"2024-03-17T23:30:55Z"'`, and the INSERT turns it into the stored text in
  SQL (`value_sql`): inside SQLite's step, where `sqlite3` has released the GIL, so on the
  background load thread it overlaps the next slice's decoding.

`sqlite3` keeps adapters per process, not per connection, and an app embedding the target may
use sqlite3 itself (other threads, between batches). So the datetime, date and UUID adapters
encode only on a thread inside `binding()` (around the dialect's own statements) and otherwise
hand the value to the adapter that was there before (or leave it as sqlite3 would): ~65 ns of
Python per such value, still far below a converter. None and bool keep the C ones, which bind
exactly as sqlite3 does without them, unless the app had registered its own (then they
dispatch too). They are installed while a SQLite dialect has a connection open (`hold` /
`release`); an adapter the app registers meanwhile is wrapped again at the next `binding()`
and is left in place at `release`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

_ENCODE = msgspec.json.Encoder().encode
_UTC = dt.UTC
#: What our own statements bind; `value_sql` knows what to cut from the JSON text.
_ADAPTERS: dict[type, Any] = {
    # A dict's `get` returns None for None without a Python frame: the cheapest "keep it".
    type(None): {}.get,
    bool: int,
    dt.datetime: _ENCODE,
    dt.date: _ENCODE,
    uuid.UUID: _ENCODE,
}
#: Bound the same by sqlite3 with or without our adapter: may be installed undispatched.
_SAME_FOR_ALL = (type(None), bool)
_lock = threading.Lock()
_holders = 0
_previous: dict[Any, Any] = {}
#: The adapter installed per key, to tell it from one the app registered since.
_installed: dict[Any, Any] = {}
_state = threading.local()


def _dispatcher(ours: Callable[[Any], Any], previous: Callable[[Any], Any] | None
                ) -> Callable[[Any], Any]:
    def adapt(value: Any) -> Any:
        if getattr(_state, "on", False):
            return ours(value)
        # Returned as is, a value without an adapter fails or binds as sqlite3 would alone.
        return value if previous is None else previous(value)
    return adapt


def _timestamp_json(value: dt.datetime) -> bytes:
    """A datetime's JSON text, naive or in UTC (`Z`): another offset is converted here, not by
    SQLite's date functions, which read an offset beyond ±14:00 as NULL and write years 0 and
    10000. A DAP timestamp is UTC: this costs it one attribute look-up."""
    tz = value.tzinfo
    if tz is not None and tz is not _UTC:
        try:
            value = value.astimezone(_UTC)
        except OverflowError:
            raise sqlite3.DataError(f"timestamp {value.isoformat()} is out of range "
                                    "(years 1 to 9999) in UTC") from None
    return _ENCODE(value)


def _install(kind: type, key: Any) -> None:
    previous = sqlite3.adapters.get(key)
    _previous[key] = previous
    ours = _timestamp_json if kind is dt.datetime else _ADAPTERS[kind]
    adapter = ours if kind in _SAME_FOR_ALL and previous is None else _dispatcher(ours, previous)
    _installed[key] = adapter
    sqlite3.adapters[key] = adapter


def hold() -> None:
    """Install the adapters (the first holder saves what was there)."""
    global _holders
    with _lock:
        if _holders == 0:
            for kind in _ADAPTERS:
                _install(kind, (kind, sqlite3.PrepareProtocol))
        _holders += 1


def release() -> None:
    """The last holder puts the previous adapters back (not over one the app registered)."""
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0:
            for key, adapter in _previous.items():
                if sqlite3.adapters.get(key) is not _installed[key]:
                    continue
                if adapter is None:
                    sqlite3.adapters.pop(key, None)
                else:
                    sqlite3.adapters[key] = adapter
            _previous.clear()
            _installed.clear()


@contextmanager
def binding() -> Iterator[None]:
    """Our adapters encode on this thread (the dialect's statements run inside; a connection
    is held, so they are installed)."""
    with _lock:
        for kind in _ADAPTERS:
            key = (kind, sqlite3.PrepareProtocol)
            if sqlite3.adapters.get(key) is not _installed.get(key):
                _install(kind, key)  # the app registered its own meanwhile: dispatch to it
    _state.on = True
    try:
        yield
    finally:
        _state.on = False


def value_sql(p: str, kind: str) -> str:
    """SQL for the stored value of a column of `kind` bound as parameter `p` (e.g. `?3`).

    A UUID or date is its JSON string without the quotes. A timestamp is stored as naive UTC
    `YYYY-MM-DD HH:MM:SS.ffffff` (fraction always written): it is bound as
    `"YYYY-MM-DDTHH:MM:SS[.ffffff][Z]"` (`_timestamp_json`), cut and joined. Substrings of a BLOB
    are BLOBs (compared with X'…' literals); `||` and CAST make text, and NULL stays NULL.
    """
    if kind in ("uuid", "date"):
        return f"CAST(substr({p}, 2, {36 if kind == 'uuid' else 10}) AS TEXT)"
    if kind != "timestamp":
        return p
    fraction = f"CASE WHEN substr({p}, 21, 1) = X'2E' THEN substr({p}, 21, 7) ELSE '.000000' END"
    return f"substr({p}, 2, 10) || ' ' || substr({p}, 13, 8) || {fraction}"
