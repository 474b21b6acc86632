"""A transport adapter whose requests cannot outlast their deadline while headers arrive.

The read timeout bounds only the silence between two packets, and `body_chunks` checks the
deadline between body chunks; but http.client reads the status line and headers itself, so a
server that sends one header byte just inside every read timeout would hold a request for days
(100 header lines of 64 KiB each). Here a timer shuts the connection's socket down when the
deadline passes while the headers are still arriving: the blocked read then ends at once with
a broken connection, which the transport reports as its deadline hit.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

_local = threading.local()


def set_deadline(deadline: float | None) -> float | None:
    """Set the deadline (monotonic) for this thread's requests (None: no watchdog); return the
    one it replaces, to restore after a request made inside another (a token renewal)."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    return previous


class _WatchedHeaders:
    """Mixin for urllib3 connections: shut the socket down if the headers outlast the deadline."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_local, "deadline", None)
        if deadline is None:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        aborted = threading.Event()
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._abort, (aborted,))
        timer.daemon = True
        timer.start()
        try:
            response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
        finally:
            timer.cancel()
        if aborted.is_set():
            # http.client takes the end of a cut-off header block for its end: never a response.
            response.close()
            raise ConnectionAbortedError("the headers were still arriving at the deadline")
        return response

    def _abort(self, aborted: threading.Event) -> None:
        aborted.set()
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to stop
                sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTPConnection(_WatchedHeaders, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedHeaders, HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """HTTPAdapter whose connections (direct or through an HTTP proxy) obey `set_deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have their own connections
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager
