"""Helpers shared by the tap's integration tests (no tests here): run tap-dap against an emulator
in-process or as the real console script, and read back its Singer messages."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tap_dap.errors import TapDapError
from tap_dap.tap import TapDap

TAP_EXECUTABLE = str(Path(sys.executable).parent / "tap-dap")
RECORD_META = ("meta", "_sdc_deleted_at")


def tap_config(emulator: Any, **overrides: Any) -> dict[str, Any]:
    config = {
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "base_url": emulator.base_url,
        "poll_interval": 0.05,
    }
    config.update(overrides)
    return config


@dataclass
class TapRun:
    messages: list[dict[str, Any]]
    error: TapDapError | None = None
    tap: TapDap | None = field(default=None, repr=False)

    def of_type(self, kind: str, stream: str | None = None) -> list[dict[str, Any]]:
        return [
            m for m in self.messages
            if m["type"] == kind and (stream is None or m.get("stream") == stream)
        ]  # fmt: skip

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"] for m in self.of_type("RECORD", stream)]

    @property
    def final_state(self) -> dict[str, Any]:
        states = self.of_type("STATE")
        return states[-1]["value"] if states else {}

    def sequence(self, stream: str) -> list[str]:
        """Message types of one stream, consecutive RECORDs collapsed to one entry; a STATE
        counts for the stream whose messages precede it."""
        kinds: list[str] = []
        current = None
        for message in self.messages:
            current = message.get("stream", current)
            if current == stream:
                kind = message["type"]
                if not (kind == "RECORD" and kinds and kinds[-1] == "RECORD"):
                    kinds.append(kind)
        return kinds


def run_tap(config: dict[str, Any], state: dict[str, Any] | None = None) -> TapRun:
    """Run a full sync in this process; captures stdout exactly as a target would read it."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    error = None
    tap = None
    with redirect_stdout(out):
        try:
            tap = TapDap(config=config, state=state or {}, validate_config=True)
            tap.sync_and_check()
        except TapDapError as exc:
            error = exc
        out.flush()
    raw = out.buffer.getvalue()  # type: ignore[attr-defined]
    return TapRun([json.loads(line) for line in raw.splitlines()], error, tap)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real ``tap-dap`` console script."""
    return subprocess.run(
        [TAP_EXECUTABLE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def write_json(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def flat_truth(emulator: Any, namespace: str, table: str) -> dict[tuple, dict[str, Any]]:
    """The emulator's current table content, flattened like tap records, keyed by key values."""
    rows = {}
    for row in emulator.truth(namespace, table):
        key = tuple(row["key"].values())
        rows[key] = _without_nulls({**row["key"], **(row.get("value") or {})})
    return rows


def apply_records(
    table: dict[tuple, dict[str, Any]], records: list[dict[str, Any]], key_properties: list[str]
) -> None:
    """What a target does with the records: upsert on U, delete on D (last action wins)."""
    for record in records:
        key = tuple(record[k] for k in key_properties)
        if record["meta"]["action"] == "D":
            assert record["_sdc_deleted_at"] == record["meta"]["ts"]
            table.pop(key, None)
        else:
            assert record["_sdc_deleted_at"] is None
            table[key] = _without_nulls({k: v for k, v in record.items() if k not in RECORD_META})


def _without_nulls(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}
