"""A tiny HTTP proxy in front of the emulator that rewrites chosen answers.

The emulator's fault API covers most faults; this covers the ones it cannot express: a gateway's
HTML 504 page, and object files whose JSONL content is broken in a specific way. Object URLs follow
the Host header, so pre-signed URLs handed out through the proxy point back at the proxy.
"""

from __future__ import annotations

import gzip
import http.client
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# (status, headers, body) -> (status, headers, body)
Rewrite = Callable[[int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length"}
GATEWAY_TIMEOUT_PAGE = (b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
                        b"<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n")


@dataclass
class Rule:
    path: str  # regex, matched against the request path with re.search
    rewrite: Rewrite
    count: int = 1


def html_gateway_timeout(_status: int, _headers: dict[str, str], _body: bytes
                         ) -> tuple[int, dict[str, str], bytes]:
    return 504, {"Content-Type": "text/html"}, GATEWAY_TIMEOUT_PAGE


def object_lines(transform: Callable[[list[bytes]], list[bytes]]) -> Rewrite:
    """Rewrite a gzip JSONL object's lines (a fresh valid gzip around the broken content)."""
    def rewrite(status: int, headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, str], bytes]:
        if status != 200:
            return status, headers, body
        lines = gzip.decompress(body).splitlines(keepends=True)
        return status, headers, gzip.compress(b"".join(transform(lines)))
    return rewrite


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str]] = []  # (method, path with query) of every request
        self.lock = threading.Lock()
        handler = type("ProxyHandler", (_Handler,), {"proxy": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, rule: Rule) -> None:
        with self.lock:
            self.rules.append(rule)

    def pending(self) -> int:
        with self.lock:
            return sum(rule.count for rule in self.rules)

    def take(self, path: str) -> Rule | None:
        with self.lock:
            self.seen.append(("", path))
            for rule in self.rules:
                if re.search(rule.path, path):
                    rule.count -= 1
                    if rule.count == 0:
                        self.rules.remove(rule)
                    return rule
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        connection = http.client.HTTPConnection(self.proxy.upstream, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            status, payload = answer.status, answer.read()
            reply_headers = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_HEADERS}
        finally:
            connection.close()
        rule = self.proxy.take(self.path)
        if rule is not None:
            status, reply_headers, payload = rule.rewrite(status, reply_headers, payload)
        self.send_response(status)
        for name, value in reply_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _forward  # noqa: N815 (stdlib naming)
