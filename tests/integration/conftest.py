"""Fixtures shared by the integration tests."""

from __future__ import annotations

from typing import Any

import pytest

from target_dap_sql import sinks, workers
from target_dap_sql.dialects import lanes


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Slices of 40 rows, workers from the 50th record, lanes from 2 rows; returns the list of
    runs workers took (their line counts)."""
    monkeypatch.setattr(sinks, "SLICE_ROWS", 40)
    monkeypatch.setattr(workers, "MIN_ROWS", 50)
    monkeypatch.setattr(lanes, "MIN_LANE_ROWS", 2)
    taken: list[int] = []
    real_send = workers.ParallelRuns._send

    def counting_send(self: Any, worker: Any, plan: Any, lines: list[bytes], stream: str) -> None:
        taken.append(len(lines))
        real_send(self, worker, plan, lines, stream)

    monkeypatch.setattr(workers.ParallelRuns, "_send", counting_send)
    return taken
