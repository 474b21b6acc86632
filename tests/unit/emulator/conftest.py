"""In-process emulator servers for the emulator's unit tests (fast: no subprocess)."""

from __future__ import annotations

import base64
import gzip
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import requests

from tap_dap.emulator import DatasetOptions, EmulatorApp, JobSettings, ServeOptions, make_server

CLIENT_ID = "us-east-1#unit"
CLIENT_SECRET = "unit-secret"


@dataclass
class Live:
    url: str
    app: EmulatorApp
    session: requests.Session

    def login(self, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> requests.Response:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return self.session.post(f"{self.url}/ids/auth/login", data={"grant_type":
                                 "client_credentials"}, headers={"Authorization": f"Basic {basic}"})

    def authorize(self) -> None:
        token = self.login().json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.url + path)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.url + path, data=orjson.dumps(body),
                                 headers={"Content-Type": "application/json"})

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.url + path)

    def query(self, ns: str, table: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(f"/dap/query/{ns}/table/{table}/data", body)
        assert response.status_code in (200, 202), response.text
        return response.json()

    def download(self, job: dict[str, Any]) -> list[bytes]:
        """Raw decompressed bytes of every object of a complete job."""
        out = []
        for item in job["objects"]:
            urls = self.post("/dap/object/url", [item]).json()["urls"]
            response = requests.get(urls[item["id"]]["url"])
            assert response.status_code == 200, response.text
            out.append(gzip.decompress(response.content))
        return out

    def records(self, ns: str, table: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        job = self.query(ns, table, {"format": "jsonl", **body})
        assert job["status"] == "complete", job
        return [orjson.loads(line) for data in self.download(job) for line in data.splitlines()]


@pytest.fixture
def live_factory() -> Iterator[Callable[..., Live]]:
    started: list[tuple[Any, EmulatorApp, threading.Thread]] = []

    def start(dataset: str = "canvas", rows: int = 10, tables: tuple[str, ...] = (),
              data_dir: Any = None, seed: int = 0, latency: float = 0.0,
              rows_per_object: int = 1000, token_ttl: int = 3600, url_ttl: int = 900,
              rate_limits: dict[str, int] | None = None,
              clock_start: str | None = None, null_share: float = 0.15) -> Live:
        options = ServeOptions(
            DatasetOptions(dataset, data_dir, rows, seed, tables, clock_start, null_share),
            CLIENT_ID,
            CLIENT_SECRET,
            token_ttl=token_ttl, url_ttl=url_ttl,
            jobs=JobSettings(latency=latency, rows_per_object=rows_per_object),
            rate_limits=rate_limits,
        )
        app = EmulatorApp(options)
        server = make_server(app, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        started.append((server, app, thread))
        host, port = server.server_address[:2]
        return Live(f"http://{host}:{port}", app, requests.Session())

    yield start
    for server, app, thread in started:
        server.shutdown()
        server.server_close()
        thread.join()
        app.close()


@pytest.fixture
def live(live_factory: Callable[..., Live]) -> Live:
    server = live_factory(tables=("accounts", "submissions", "web_logs"))
    server.authorize()
    return server
