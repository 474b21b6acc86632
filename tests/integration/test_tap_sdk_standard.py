"""The Singer SDK's standard tap tests (get_tap_test_class) against a live emulator.

The SDK parametrises per-stream tests at collection time by running discovery, so the emulator
is started when this module is imported and stopped when the module's tests are done.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_dap.tap import TapDap
from tests.emulator_fixture import start_emulator
from tests.integration.test_tap_harness import tap_config

_EMULATOR = start_emulator(tables="canvas.accounts,canvas.courses", rows=12)
atexit.register(_EMULATOR.stop)


@pytest.fixture(scope="module", autouse=True)
def _stop_emulator() -> Iterator[None]:
    yield
    _EMULATOR.stop()


TestTapDapStandard = get_tap_test_class(
    TapDap,
    config=tap_config(_EMULATOR, tables=["accounts", "courses"]),
    parse_env_config=False,
    suite_config=SuiteConfig(max_records_limit=50),
)
