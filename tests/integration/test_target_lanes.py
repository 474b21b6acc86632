"""Changes spread over two connections by key (dialects/lanes.py) leave exactly the database one
connection leaves: same rows, same values, same STATE (PostgreSQL). MariaDB keeps one connection
(InnoDB's next-key locks would deadlock two) and loads in the background; same truth."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from target_dap_sql import sinks
from target_dap_sql.dialects import lanes
from tests.integration.helpers import (
    SUBMISSIONS,
    bookmark,
    delete,
    snapshot,
    submissions_schema_message,
    upsert,
)
from tests.integration.test_target_mysql import mysql_connect, mysql_query
from tests.unit.target.dap_messages import run_in_process


def _schema_message() -> dict[str, Any]:
    return submissions_schema_message(1)


def _changes() -> tuple[list[dict[str, Any]], dict[int, str | None]]:
    """Changes over keys 1..260 onto a snapshot of 1..200, and the grade each key ends with
    (None: deleted). Includes a key updated then deleted in one slice, deleted then inserted
    again, keys updated before they exist, deletes of keys that never existed, and a key's
    actions spread over several slices."""
    rng = random.Random(17)
    truth: dict[int, str | None] = {i: "s" for i in range(1, 201)}
    messages: list[dict[str, Any]] = []
    for step in range(600):
        key = rng.randint(1, 260)
        if rng.random() < 0.3:
            messages.append(delete(key))
            truth[key] = None
        else:
            grade = f"g{step}"
            messages.append(upsert(key, grade=grade))
            truth[key] = grade
    messages += [upsert(7, grade="last"), delete(7),            # updated, then deleted
                 delete(8), upsert(8, grade="back"),             # deleted, then inserted again
                 delete(9_999),                                  # never existed
                 upsert(5_000, grade="new")]                     # not yet present
    truth.update({7: None, 8: "back", 9_999: None, 5_000: "new"})
    return messages, truth


def _load(url: str, monkeypatch: pytest.MonkeyPatch, *, spread: bool) -> list[dict[str, Any]]:
    """Snapshot, then the changes in slices of 40 rows; returns the STATE lines of the changes."""
    monkeypatch.setattr(sinks, "SLICE_ROWS", 40)
    monkeypatch.setattr(lanes, "MIN_LANE_ROWS", 2 if spread else 10**9)
    run_in_process({"sqlalchemy_url": url}, [
        _schema_message(), *snapshot(1, range(1, 201), grade="s"),
        bookmark("2024-01-01T00:00:00Z")])
    changes, _ = _changes()
    return run_in_process({"sqlalchemy_url": url}, [
        _schema_message(), *changes, bookmark("2024-01-02T00:00:00Z")])


def _pg_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute('SELECT * FROM canvas.submissions ORDER BY "id"').fetchall()


def _mysql_rows(url: str) -> list[tuple]:
    return mysql_query(url, 'SELECT * FROM "canvas__submissions" ORDER BY "id"')


def _check(make_url: Callable[[], str], rows: Callable[[str], list[tuple]],
           monkeypatch: pytest.MonkeyPatch, *, two_connections: bool) -> None:
    splits: list[int] = []
    real_split = lanes.split

    def counting_split(batch: Any, key: Any) -> Any:
        splits.append(len(batch))
        return real_split(batch, key)

    monkeypatch.setattr(lanes, "split", counting_split)
    one, two = make_url(), make_url()
    states_one = _load(one, monkeypatch, spread=False)
    assert splits == []
    states_two = _load(two, monkeypatch, spread=True)
    # the changes did go over two connections (the last slice too), where the dialect has them
    assert len(splits) > 5 if two_connections else splits == []
    assert states_one == states_two == [
        {"bookmarks": {SUBMISSIONS: {"timestamp": "2024-01-02T00:00:00Z", "schema_version": 1}}}]
    assert rows(one) == rows(two)
    _, truth = _changes()
    expected = sorted((k, g) for k, g in truth.items() if g is not None)
    assert [(r[0], r[4]) for r in rows(two)] == expected


@pytest.mark.postgres
def test_postgres_changes_over_two_connections(postgres_server: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    def fresh() -> str:
        return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")

    _check(fresh, _pg_rows, monkeypatch, two_connections=True)


@pytest.mark.mariadb
def test_mariadb_changes_over_two_connections(mariadb_server: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    def fresh() -> str:
        return mariadb_server.create_database(f"t_{uuid.uuid4().hex[:12]}")

    _check(fresh, _mysql_rows, monkeypatch, two_connections=False)


def test_one_key_one_lane() -> None:
    from target_dap_sql.dialects.base import Batch

    rows = [(i, f"v{i}") for i in range(100)]
    even, odd = lanes.split(Batch(rows[:60], rows[60:]), lambda row: row[0])
    assert sorted([*even.upserts, *odd.upserts]) == rows[:60]
    assert sorted([*even.deletes, *odd.deletes]) == rows[60:]
    assert {r[0] % 2 for r in [*even.upserts, *even.deletes]} == {0}


@pytest.mark.postgres
@pytest.mark.parametrize("bad_key", [101, 102], ids=["second-connection", "first-connection"])
def test_postgres_failure_on_either_connection_moves_nothing(
        pg_url: str, monkeypatch: pytest.MonkeyPatch, bad_key: int) -> None:
    """A row the server refuses, in the last slice (the one with the meta row) on either
    connection: one error line, no STATE, and the meta row keeps the old bookmark."""
    from target_dap_sql.errors import DatabaseError

    monkeypatch.setattr(sinks, "SLICE_ROWS", 40)
    monkeypatch.setattr(lanes, "MIN_LANE_ROWS", 2)
    run_in_process({"sqlalchemy_url": pg_url}, [
        _schema_message(), *snapshot(1, range(1, 201), grade="s"),
        bookmark("2024-01-01T00:00:00Z")])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE canvas.submissions ADD CONSTRAINT no_bad CHECK (grade <> 'bad')")
    messages = [_schema_message(), *[upsert(i, grade="u") for i in range(1, 101)],
                upsert(bad_key, grade="bad"), bookmark("2024-01-02T00:00:00Z")]
    with pytest.raises(DatabaseError) as raised:
        run_in_process({"sqlalchemy_url": pg_url}, messages)
    assert str(raised.value) == (
        "loading stream 'canvas-submissions': new row for relation \"submissions\" violates "
        "check constraint \"no_bad\"")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute('SELECT "timestamp" FROM instructure_dap.table_sync').fetchall() == [
            (dt.datetime(2024, 1, 1),)]
        assert conn.execute("SELECT count(*) FROM canvas.submissions WHERE grade = 'bad'"
                            ).fetchone() == (0,)


@pytest.mark.mariadb
def test_mariadb_row_literals_are_pymysql_literals(mariadb_url: str) -> None:
    """The fast row escaper writes exactly what PyMySQL's conn.escape writes."""
    import decimal

    from target_dap_sql.dialects.mysql_literals import literal_row

    conn = mysql_connect(mariadb_url)
    try:
        for mode in ("", "NO_BACKSLASH_ESCAPES"):
            with conn.cursor() as cur:
                cur.execute(f"SET SESSION sql_mode = '{mode}'")
            row = (None, True, False, 0, -7, 2**63 - 1, 1.5, 1e-7, 3.0, -0.0,
                   "", "it's \\ a \"q\"\n\r\x1a\x00 ü 🎓", b"\x00\xff'", bytearray(b"ab"),
                   dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5, 60),
                   dt.datetime(1, 1, 1), dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
                   dt.date(999, 12, 31), decimal.Decimal("-12.50"))
            assert literal_row(conn)(row) == conn.escape(row)
    finally:
        conn.close()
