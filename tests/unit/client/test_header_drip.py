"""A server that trickles its HTTP headers cannot hold a request past the request's deadline.

The read timeout bounds only the silence between packets and http.client reads headers itself;
a real socket server sends one header byte every 0.2 s (never silent for a read timeout).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tap_dap.client import Credentials
from tap_dap.client.config import ClientSettings
from tap_dap.client.errors import NetworkError
from tap_dap.client.transport import NoAuth, Transport

DRIP_SECONDS = 20.0


@pytest.fixture(name="header_drip_url")
def header_drip_url_fixture() -> Iterator[str]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            ends = time.monotonic() + DRIP_SECONDS
            try:
                while time.monotonic() < ends and not stop.is_set():
                    conn.sendall(b"a")
                    time.sleep(0.2)
                conn.sendall(b"\r\nContent-Length: 2\r\n\r\n{}")
            except OSError:
                return  # the client hung up: what the deadline is for

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/dap/query/canvas/table"
    stop.set()
    server.close()
    thread.join(timeout=5)


def test_headers_dripping_past_the_request_deadline_end_the_request(header_drip_url) -> None:
    transport = Transport(
        ClientSettings(base_url=header_drip_url, request_timeout=1.0, read_timeout=5.0),
        Credentials.create(client_id="us-west-2#c", client_secret="s"))
    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        transport.exchange("GET", header_drip_url, operation="listing tables", auth=NoAuth())
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0, elapsed
    host = header_drip_url.split("/")[2]
    assert str(caught.value) == (
        f"listing tables: the answer's headers from {host} were still arriving when the "
        "request's deadline passed")
    transport.close()
