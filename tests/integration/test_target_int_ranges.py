"""An integer that does not fit its column is an error on every database, whatever the settings.

With `validate_records: false` the decoder once skipped range checks and PostgreSQL's binary COPY
wrapped 3000000000 into int4 as -1294967296 with exit 0: a silent corruption.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.replica import Replica
from tests.integration.helpers import SUBMISSIONS_V1, bookmark, logged_errors, upsert
from tests.integration.test_admin import url_fixture  # noqa: F401 (fixture: sqlite/pg/mariadb)
from tests.unit.target.dap_messages import run_cli


@pytest.mark.parametrize("validate", [False, True])
@pytest.mark.parametrize(("column", "value", "bound"), [
    ("attempt", 3_000_000_000, "<= 2147483647"),
    ("attempt", -(2**31) - 1, ">= -2147483648"),
    ("assignment_id", 2**63, "<= 9223372036854775807"),
])
def test_out_of_range_integer_is_one_error_and_nothing_is_stored(
        url: str, tmp_path: Path, validate: bool, column: str, value: int, bound: str) -> None:
    messages = [SUBMISSIONS_V1, upsert(1), bookmark("2024-01-02T00:00:00Z"),
                upsert(2, **{column: value}), upsert(3)]
    run = run_cli({"sqlalchemy_url": url, "validate_records": validate}, messages, tmp_path)
    assert run.returncode == 1
    [error] = logged_errors(run.stderr)
    assert error.startswith("target-dap-sql: line 4, stream 'canvas-submissions': invalid record")
    assert f"{bound} - at `$.{column}`" in error
    assert "Traceback" not in run.stderr
    assert run.states == []
    try:  # the batch was not committed; whatever a slice loaded holds no other value for it
        stored = Replica(url).rows("canvas", "submissions")
    except Exception:  # noqa: BLE001 - no table at all is fine too
        stored = []
    assert [r["id"] for r in stored if r["id"] == 2] == []
