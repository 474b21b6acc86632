"""pytest fixtures that run a real ``dap-emulator serve`` subprocess for a test.

Use them from any test (they are re-exported by tests/conftest.py)::

    def test_something(emulator):                 # canvas dataset, 20 rows/table, zero job latency
        emulator.base_url                         # "http://127.0.0.1:PORT"
        emulator.client_id, emulator.client_secret
        emulator.advance("canvas", "users", inserts=3, updates=2, deletes=1)  # -> ts string
        emulator.truth("canvas", "users")         # -> [{"key": {...}, "value": {...}}], by key
        emulator.faults([{"endpoint": "job", "kind": "500", "count": 2}])
        emulator.clear_faults()
        emulator.reload("canvas", "users")        # later incrementals before now: SnapshotRequired
        emulator.schema_change("canvas", "users", add_column={"name": "x", "schema": {...}})
        emulator.schema_change("canvas", "users", add_enum_value={"column": "c", "value": "v"})
        emulator.tables()                         # [{"namespace","table","version","rows"}]
        emulator.append_changes("canvas", "t", jsonl_text)   # recorded lines (--data tables)
        emulator.set_schema("canvas", "t", schema, 2, ts="2024-06-01T00:00:00Z")
        emulator.requests()                       # {"query": {"total","throttled","faulted"}, ...}

    def test_other(emulator_factory):
        emu = emulator_factory(tables="users,submissions", rows=1000, job_latency=1.0,
                               rows_per_object=100, token_ttl=60, rate_limits="query=2",
                               data=Path("fixtures"), dataset="empty", seed=7)

``emulator_factory(**serve_args)`` maps keyword ``name=value`` to ``--name value`` (``True`` =
bare flag) and returns the same kind of handle. Every emulator is stopped after the test. Defaults:
``--rows 20 --job-latency 0``. All helpers raise ``EmulatorCallError`` with the server's error text
on a non-2xx answer. Start-up costs ~0.3 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

EMULATOR = [sys.executable, "-m", "tap_dap.emulator.cli"]
__all__ = ["EmulatorCallError", "RunningEmulator", "emulator", "emulator_factory", "start_emulator"]

DEFAULT_ARGS: dict[str, Any] = {"rows": 20, "job_latency": 0}
CLIENT_ID = "us-east-1#emulator-client"
CLIENT_SECRET = "emulator-secret"


class EmulatorCallError(RuntimeError):
    """An admin call answered with an error status."""


class RunningEmulator:
    def __init__(self, process: subprocess.Popen, base_url: str, client_id: str,
                 client_secret: str) -> None:
        self.process = process
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret

    def __repr__(self) -> str:
        return f"RunningEmulator({self.base_url})"

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> bytes:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise EmulatorCallError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return json.loads(self.call(method, f"/_emulator/{path}", body))

    def advance(self, namespace: str, table: str, inserts: int = 0, updates: int = 0,
                deletes: int = 0) -> str:
        body = {"namespace": namespace, "table": table, "inserts": inserts, "updates": updates,
                "deletes": deletes}
        return self.admin("POST", "advance", body)["ts"]

    def truth(self, namespace: str, table: str) -> list[dict[str, Any]]:
        raw = self.call("GET", f"/_emulator/truth/{namespace}/{table}")
        return [json.loads(line) for line in raw.splitlines() if line]

    def faults(self, faults: list[dict[str, Any]]) -> Any:
        return self.admin("POST", "faults", faults)

    def clear_faults(self) -> Any:
        return self.admin("DELETE", "faults")

    def reload(self, namespace: str, table: str) -> str:
        return self.admin("POST", "reload", {"namespace": namespace, "table": table})["ts"]

    def schema_change(self, namespace: str, table: str, **change: Any) -> int:
        body = {"namespace": namespace, "table": table, **change}
        return self.admin("POST", "schema", body)["version"]

    def append_changes(self, namespace: str, table: str, lines: str) -> dict[str, Any]:
        """Append recorded DAP JSONL change lines (``meta.ts`` honoured, or stamped now)."""
        raw = self.call("POST", f"/_emulator/changes/{namespace}/{table}", raw=lines.encode())
        return json.loads(raw)

    def set_schema(self, namespace: str, table: str, schema: dict[str, Any], version: int,
                   ts: str | None = None) -> int:
        """A whole new schema version (a recorded VersionedSchema), at ``ts`` or now."""
        body = {"namespace": namespace, "table": table, "schema": schema, "version": version}
        if ts is not None:
            body["ts"] = ts
        return self.admin("POST", "schema", body)["version"]

    def tables(self) -> list[dict[str, Any]]:
        return self.admin("GET", "tables")

    def requests(self) -> dict[str, dict[str, int]]:
        return self.admin("GET", "requests")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_emulator(**serve_args: Any) -> RunningEmulator:
    args = {**DEFAULT_ARGS, **serve_args}
    args.setdefault("client_id", CLIENT_ID)
    args.setdefault("client_secret", CLIENT_SECRET)
    argv = [*EMULATOR, "serve", "--port", "0"]
    for name, value in args.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    # a file, not a pipe, so a chatty server never blocks; closed by the RunningEmulator
    stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=stderr, text=True,
        cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    if not first.startswith("http://"):
        process.wait(timeout=10)
        stderr.seek(0)
        raise RuntimeError(f"dap-emulator did not start: {stderr.read().strip()}")
    return RunningEmulator(process, first, str(args["client_id"]), str(args["client_secret"]))


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., RunningEmulator]]:
    started: list[RunningEmulator] = []

    def factory(**serve_args: Any) -> RunningEmulator:
        emulator = start_emulator(**serve_args)
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., RunningEmulator]) -> RunningEmulator:
    return emulator_factory()
