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


@pytest.mark.parametrize(("config", "error"), [
    ({"batch_size_rows": 0, "workers": "abc"}, "setting batch_size_rows must be at least 1, got 0"),
    ({"batch_max_seconds": "-1", "workers": ""},
     "setting batch_max_seconds must not be negative, got '-1'"),
])
def test_batch_settings_are_checked_before_workers_is_read(
        config: dict[str, Any], error: str, tmp_path: Any) -> None:
    """As before the settings moved to settings.py: an embedder's config (not validated) with a
    bad batch setting gets its one-line error even if `workers` does not parse."""
    with pytest.raises(ConfigError, match=f"^{error}$"):
        TargetDapSQL(config={"sqlalchemy_url": f"sqlite:///{tmp_path}/x.db", **config},
                     validate_config=False)
