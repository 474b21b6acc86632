"""Run `tap-dap | target-dap-sql` as two real subprocesses, the way cron runs the README loop.

The tap's stdout goes through a relay thread we control (so a test can kill -9 either side after
exactly N bytes), the target's last STATE line becomes the next run's ``state.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.replica import Replica, diff_table, fetch_truth
from tests.e2e.tooling import base_env
from tests.emulator_fixture import RunningEmulator

BIN = Path(sys.executable).parent
TAP = str(BIN / "tap-dap")
TARGET = str(BIN / "target-dap-sql")
TIMEOUT = 120
CHUNK = 4096


@dataclass
class KillPlan:
    """kill -9 ``victims`` ("tap", "target" or both) once ``after_bytes`` passed the relay.

    ``at_line_end``: let the rest of the current line through first, so a killed tap leaves the
    target a clean end of input (it then commits what it got) instead of half a message.
    """

    victims: tuple[str, ...]
    after_bytes: int
    at_line_end: bool = False


@dataclass
class PipelineRun:
    tap_rc: int
    target_rc: int
    tap_stderr: str
    target_stderr: str
    states: list[dict[str, Any]]
    relayed_bytes: int
    killed: bool = False
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.tap_rc == 0 and self.target_rc == 0

    def explain(self) -> str:
        return (f"tap exit {self.tap_rc}, target exit {self.target_rc}\n"
                f"--- tap stderr (tail)\n{self.tap_stderr[-2500:]}\n"
                f"--- target stderr (tail)\n{self.target_stderr[-2500:]}")


class Workdir:
    """A pipeline's files: tap.json, target.json, state.json, logs — like a cron job's directory."""

    def __init__(self, path: Path, emulator: RunningEmulator, db_url: str,
                 **tap_settings: Any) -> None:
        self.path = path
        self.emulator = emulator
        self.db_url = db_url
        path.mkdir(parents=True, exist_ok=True)
        self.tap_config = {"base_url": emulator.base_url, "client_id": emulator.client_id,
                           "client_secret": emulator.client_secret, "poll_interval": 0.05,
                           **tap_settings}
        self.target_config: dict[str, Any] = {"sqlalchemy_url": db_url}
        self.runs = 0

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def run(self, kill: KillPlan | None = None, extra_env: dict[str, str] | None = None,
            tap_args: tuple[str, ...] = ()) -> PipelineRun:
        """One cron step: tap | target, then save the target's last STATE line as state.json."""
        self.runs += 1
        n = self.runs
        (self.path / "tap.json").write_text(json.dumps(self.tap_config))
        (self.path / "target.json").write_text(json.dumps(self.target_config))
        state_args = ["--state", str(self.state_path)] if self.state_path.exists() else []
        env = {**base_env(self.path), **(extra_env or {})}
        tap_err = (self.path / f"tap-{n}.log").open("w+b")
        target_err = (self.path / f"target-{n}.log").open("w+b")
        tap = subprocess.Popen([TAP, "--config", str(self.path / "tap.json"), *state_args,
                                *tap_args], stdout=subprocess.PIPE, stderr=tap_err,
                               cwd=self.path, env=env)
        target = subprocess.Popen([TARGET, "--config", str(self.path / "target.json")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=target_err, cwd=self.path, env=env)
        processes = {"tap": tap, "target": target}
        relay = _Relay(tap, target, processes, kill)
        relay.start()
        assert target.stdout is not None
        out = target.stdout.read()  # the relay owns target.stdin; communicate() would close it
        target.wait(timeout=TIMEOUT)
        tap.wait(timeout=TIMEOUT)
        relay.join(timeout=TIMEOUT)
        states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        if states:  # the README loop: the last line is the next run's state
            self.state_path.write_text(json.dumps(states[-1]))
        run = PipelineRun(tap.returncode, target.returncode, _read(tap_err), _read(target_err),
                          states, relay.relayed, relay.killed,
                          {"tap_log": Path(tap_err.name), "target_log": Path(target_err.name)})
        return run

    def assert_equals_truth(self, tables: list[tuple[str, str]]) -> None:
        replica = Replica(self.db_url)
        diffs = [diff_table(ns, t, fetch_truth(self.emulator.base_url, ns, t),
                            [_uuids_as_text(row) for row in replica.rows(ns, t)])
                 for ns, t in tables]
        diffs = [d for d in diffs if d]
        assert diffs == [], "\n".join(map(str, diffs))


def _uuids_as_text(row: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL returns uuid columns as UUID objects; DAP keys (web_logs) are uuid strings."""
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in row.items()}


def _read(handle: Any) -> str:
    handle.seek(0)
    text = handle.read().decode("utf-8", "replace")
    handle.close()
    return text


class _Relay(threading.Thread):
    def __init__(self, tap: subprocess.Popen, target: subprocess.Popen,
                 processes: dict[str, subprocess.Popen], kill: KillPlan | None) -> None:
        super().__init__(daemon=True)
        self.tap, self.target, self.processes, self.kill = tap, target, processes, kill
        self.relayed = 0
        self.killed = False

    def run(self) -> None:
        assert self.tap.stdout is not None and self.target.stdin is not None
        source, sink = self.tap.stdout, self.target.stdin
        try:
            while chunk := os.read(source.fileno(), CHUNK):
                if self.kill and not self.killed:
                    cut = self._cut(chunk)
                    if cut is not None:
                        sink.write(chunk[:cut])
                        sink.flush()
                        self.relayed += cut
                        self._kill()
                        if "target" in self.kill.victims:
                            return
                        continue
                sink.write(chunk)
                sink.flush()
                self.relayed += len(chunk)
        except (OSError, ValueError):  # the target died: stop relaying
            pass
        finally:
            for stream in (sink, source):
                with contextlib.suppress(OSError):
                    stream.close()

    def _cut(self, chunk: bytes) -> int | None:
        """How much of ``chunk`` passes before the kill; None: all of it, no kill yet."""
        assert self.kill is not None
        room = max(self.kill.after_bytes - self.relayed, 0)
        if room > len(chunk):
            return None
        if not self.kill.at_line_end:
            return room
        newline = chunk.find(b"\n", max(room - 1, 0))
        return None if newline == -1 else newline + 1

    def _kill(self) -> None:
        assert self.kill is not None
        self.killed = True
        for victim in self.kill.victims:
            process = self.processes[victim]
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
