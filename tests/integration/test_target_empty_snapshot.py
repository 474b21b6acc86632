"""No silent empty swap: a snapshot without records replaces a table that has rows only when the
tap says the DAP table is empty, or `allow_empty_snapshots` allows it."""

from __future__ import annotations

from typing import Any

import pytest

from target_dap_sql.errors import InputError
from tests.integration.helpers import SUBMISSIONS, SUBMISSIONS_V1, bookmark, snapshot, upsert
from tests.unit.target.dap_messages import activate, run_in_process
from tests.unit.target.target_db import TargetDb, db_fixture  # noqa: F401 (fixture)


def _ids(db: TargetDb) -> list[int]:
    return [r[0] for r in db.rows("canvas", "submissions", '"id"')]


def _end(version: int, rows: int | None) -> dict[str, Any]:
    message = activate(SUBMISSIONS, version)
    if rows is not None:
        message["x-dap-rows"] = rows
    return message


def _load_three(db: TargetDb) -> None:
    run_in_process({"sqlalchemy_url": db.url},
                   [SUBMISSIONS_V1, *snapshot(1, [1, 2, 3]), bookmark("2024-01-01T00:00:00Z")])
    assert _ids(db) == [1, 2, 3]


@pytest.mark.parametrize("closing_rows", [None, 5])
def test_empty_snapshot_over_rows_is_refused_and_the_table_kept(
    db: TargetDb, closing_rows: int | None
) -> None:
    _load_three(db)
    meta_before = db.meta_rows()
    messages = [SUBMISSIONS_V1, activate(SUBMISSIONS, 2), _end(2, closing_rows),
                bookmark("2024-02-01T00:00:00Z")]  # fmt: skip
    with pytest.raises(InputError) as caught:
        run_in_process({"sqlalchemy_url": db.url}, messages)
    message = str(caught.value)
    assert message.startswith("stream 'canvas-submissions'") or SUBMISSIONS in message
    assert "refusing to replace table 'submissions', which has rows, by an empty snapshot" in (
        message
    )
    assert "allow_empty_snapshots: true" in message
    assert _ids(db) == [1, 2, 3]
    assert db.meta_rows() == meta_before  # the bookmark did not move


def test_empty_dap_table_reported_by_the_tap_replicates(db: TargetDb) -> None:
    _load_three(db)
    run_in_process({"sqlalchemy_url": db.url},
                   [SUBMISSIONS_V1, activate(SUBMISSIONS, 2), _end(2, 0)])
    assert _ids(db) == []


def test_setting_allows_an_empty_snapshot(db: TargetDb) -> None:
    _load_three(db)
    run_in_process({"sqlalchemy_url": db.url, "allow_empty_snapshots": True},
                   [SUBMISSIONS_V1, activate(SUBMISSIONS, 2), activate(SUBMISSIONS, 2)])
    assert _ids(db) == []


def test_empty_snapshot_into_an_empty_table_is_fine(db: TargetDb) -> None:
    run_in_process({"sqlalchemy_url": db.url},
                   [SUBMISSIONS_V1, activate(SUBMISSIONS, 1), activate(SUBMISSIONS, 1)])
    assert _ids(db) == []


def test_rows_dropped_on_the_way_do_not_create_a_table(db: TargetDb) -> None:
    """A fresh database: the tap read 5 rows, none arrived (a mapper dropped them). Creating an
    empty table with a meta row would let the next run continue from its bookmark and never
    load them."""
    messages = [SUBMISSIONS_V1, activate(SUBMISSIONS, 1), _end(1, 5),
                bookmark("2024-01-01T00:00:00Z")]  # fmt: skip
    with pytest.raises(InputError) as caught:
        run_in_process({"sqlalchemy_url": db.url}, messages)
    assert (
        "refusing to create table 'submissions' by an empty snapshot (version 1): tap-dap read "
        "5 rows that never arrived here (a stream map or mapper dropped them)"
    ) in str(caught.value)
    assert db.meta_rows() == []
    run_in_process({"sqlalchemy_url": db.url, "allow_empty_snapshots": True}, messages)
    assert _ids(db) == []


def test_snapshot_with_records_replaces_as_before(db: TargetDb) -> None:
    _load_three(db)
    run_in_process({"sqlalchemy_url": db.url},
                   [SUBMISSIONS_V1, activate(SUBMISSIONS, 2), upsert(7), activate(SUBMISSIONS, 2)])
    assert _ids(db) == [7]


def test_mariadb_refuses_too(mariadb_url: str) -> None:
    config = {"sqlalchemy_url": mariadb_url}
    run_in_process(config, [SUBMISSIONS_V1, *snapshot(1, [1, 2])])
    with pytest.raises(InputError, match="allow_empty_snapshots"):
        run_in_process(config, [SUBMISSIONS_V1, activate(SUBMISSIONS, 2), activate(SUBMISSIONS, 2)])
    run_in_process(config, [SUBMISSIONS_V1, activate(SUBMISSIONS, 3), _end(3, 0)])
