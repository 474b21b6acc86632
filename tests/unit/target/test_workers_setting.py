"""The `workers` setting: values that cannot mean a number of processes are refused with one
line, before anything starts."""

from __future__ import annotations

from typing import Any

import pytest

from target_dap_sql import workers
from target_dap_sql.errors import ConfigError
from target_dap_sql.target import TargetDapSQL


@pytest.mark.parametrize("value", [0, -1, workers.MAX_WORKERS + 1, 1000])
def test_workers_out_of_range_is_one_clear_error(value: int, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=(
            f"^setting workers must be from 1 to {workers.MAX_WORKERS}, got {value}$")):
        TargetDapSQL(config={"sqlalchemy_url": f"sqlite:///{tmp_path}/x.db", "workers": value})


@pytest.mark.parametrize("value", [1, 2, workers.MAX_WORKERS])
def test_workers_in_range(value: int, tmp_path: Any) -> None:
    TargetDapSQL(config={"sqlalchemy_url": f"sqlite:///{tmp_path}/x.db", "workers": value})


def test_the_default_is_never_above_the_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: set(range(500)))
    assert workers.default_workers() == workers.MAX_WORKERS
