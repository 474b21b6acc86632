"""Property names a database takes for one column: cut long (PostgreSQL), or another case.

PostgreSQL keeps an identifier's first 63 bytes; SQLite and MySQL compare column names without
regard to case. A table's columns are read back as stored, and a property stored under another
name (cut, or `Name` for `name`) looked like a new column: ADD COLUMN failed ("already
exists", "duplicate column name"), and with `drop_removed_columns` the column was dropped and
added again, empty: every row the run did not send lost its value, silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import logged_errors
from tests.integration.replica_dbs import ReplicaDb, rdb_fixture  # noqa: F401 (fixture)
from tests.integration.test_target_mysql import mysql_query
from tests.unit.target.dap_messages import jsonl, run_cli

LONG = "ä" * 40 + "_one"  # 84 bytes: PostgreSQL keeps 31 characters of it (a 32nd is cut)
TWIN = "ä" * 40 + "_two"

#: How each database that ignores case says so in a refusal.
CASE_RULES = {"sqlite": "SQLite compares column names without regard to the case of ASCII "
                        "letters",
              "mariadb": "MySQL compares column names without regard to case"}


def _schema(*names: str) -> dict:
    return {"type": "SCHEMA", "stream": "things", "key_properties": ["id"], "schema": {
        "type": "object", "properties": {"id": {"type": "integer"},
                                         **{n: {"type": ["string", "null"]} for n in names}}}}


def _record(i: int, **values: str) -> dict:
    return {"type": "RECORD", "stream": "things", "record": {"id": i, **values}}


def test_a_long_property_name_keeps_its_column_run_after_run(
        rdb: ReplicaDb, tmp_path: Path) -> None:
    config = {"sqlalchemy_url": rdb.url, "drop_removed_columns": True}
    first = run_cli(config, jsonl([_schema(LONG), _record(1, **{LONG: "kept"})]), tmp_path)
    assert first.returncode == 0, first.stderr
    for i in (2, 3):
        run = run_cli(config, jsonl([_schema(LONG), _record(i, **{LONG: f"v{i}"})]), tmp_path)
        assert run.returncode == 0, run.stderr
    assert rdb.query('SELECT * FROM "things" ORDER BY 1') == [(1, "kept"), (2, "v2"), (3, "v3")]


def test_two_properties_postgresql_would_make_one_column_are_refused(
        rdb: ReplicaDb, tmp_path: Path) -> None:
    config = {"sqlalchemy_url": rdb.url}
    first = run_cli(config, jsonl([_schema(LONG), _record(1, **{LONG: "kept"})]), tmp_path)
    assert first.returncode == 0, first.stderr
    run = run_cli(config, jsonl([_schema(LONG, TWIN), _record(2, **{LONG: "a", TWIN: "b"})]),
                  tmp_path)
    if rdb.kind != "postgres":  # 44 characters: two columns (MySQL takes 64 characters)
        assert run.returncode == 0, run.stderr
        assert rdb.query('SELECT * FROM "things" ORDER BY 1') == [(1, "kept", None),
                                                                  (2, "a", "b")]
        return
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: line 1, stream 'things': properties '{LONG}' and '{TWIN}' would be one "
        "column: PostgreSQL keeps the first 63 bytes of a name; rename one (a stream map)"]
    assert rdb.query('SELECT * FROM "things" ORDER BY 1') == [(1, "kept")]


def test_a_property_whose_case_changed_keeps_its_column(rdb: ReplicaDb, tmp_path: Path) -> None:
    """`Name` became `name`: one column for SQLite and MySQL, whose values stay; PostgreSQL
    tells them apart, so `drop_removed_columns` drops the old one, as for any removed
    property."""
    config = {"sqlalchemy_url": rdb.url, "drop_removed_columns": True}
    first = run_cli(config, jsonl([_schema("Name"), _record(1, Name="kept")]), tmp_path)
    assert first.returncode == 0, first.stderr
    run = run_cli(config, jsonl([_schema("name"), _record(2, name="new")]), tmp_path)
    assert run.returncode == 0, run.stderr
    kept = None if rdb.kind == "postgres" else "kept"
    assert rdb.query('SELECT * FROM "things" ORDER BY 1') == [(1, kept), (2, "new")]
    both = run_cli(config, jsonl([_schema("name", "NAME"), _record(3, name="a", NAME="b")]),
                   tmp_path)
    if rdb.kind == "postgres":
        assert both.returncode == 0, both.stderr
        return
    rule = CASE_RULES[rdb.kind]
    assert both.returncode == 1
    assert logged_errors(both.stderr) == [
        f"target-dap-sql: line 1, stream 'things': properties 'name' and 'NAME' would be one "
        f"column: {rule}; rename one (a stream map)"]
    assert rdb.query('SELECT * FROM "things" ORDER BY 1') == [(1, kept), (2, "new")]


def _rename_run(url: str, tmp_path: Path, old: str, new: str) -> tuple[int, list[str]]:
    """Load row 1 under property `old`, then row 2 under `new`, dropping removed columns."""
    config = {"sqlalchemy_url": url, "drop_removed_columns": True}
    first = run_cli(config, jsonl([_schema(old), _record(1, **{old: "kept"})]), tmp_path)
    assert first.returncode == 0, first.stderr
    run = run_cli(config, jsonl([_schema(new), _record(2, **{new: "new"})]), tmp_path)
    return run.returncode, logged_errors(run.stderr)


@pytest.mark.mariadb
@pytest.mark.parametrize(("old", "new", "kept"), [
    ("ΟΔΟΣ", "οδοσ", "kept"),  # one column to MariaDB; Python lowers the final Σ to ς
    ("ΟΔΟΣ", "οδος", None),  # two columns to MariaDB (Python: one): `ΟΔΟΣ` is dropped
    ("ẞx", "ßx", None),  # two columns to MariaDB (Python: one)
])
def test_mysql_matches_names_as_the_server_folds_them(
        mariadb_url: str, tmp_path: Path, old: str, new: str, kept: str | None) -> None:
    """`str.lower` is not MariaDB's fold: a property it took for another column was never
    added ("Unknown column" every run) or lost its column's values with drop_removed_columns."""
    assert _rename_run(mariadb_url, tmp_path, old, new) == (0, [])
    assert mysql_query(mariadb_url, 'SELECT * FROM "things" ORDER BY 1') == [(1, kept),
                                                                           (2, "new")]


@pytest.mark.mariadb
def test_mysql_refuses_a_column_its_alter_and_insert_disagree_on(
        mariadb_url: str, tmp_path: Path) -> None:
    """MariaDB's ALTER TABLE takes `İx` for `ix`, its INSERT does not: neither adding nor
    writing `ix` can work, and dropping `İx` to add it lost the values."""
    assert _rename_run(mariadb_url, tmp_path, "İx", "ix") == (1, [
        "target-dap-sql: line 1, stream 'things': column 'İx' of table things is property "
        "'ix' to MySQL's ALTER TABLE but not to its INSERT; rename the column to the "
        "property's name"])
    assert mysql_query(mariadb_url, 'SELECT * FROM "things" ORDER BY 1') == [(1, "kept")]


def test_a_property_column_never_becomes_the_soft_delete_column(
        rdb: ReplicaDb, tmp_path: Path) -> None:
    """A property `_SDC_DELETED_AT` (data) dropped from the schema when `hard_delete: false`
    added the target's `_sdc_deleted_at`: SQLite and MySQL took its column for that one, and
    every row holding a value read as deleted."""
    first = run_cli({"sqlalchemy_url": rdb.url},
                    jsonl([_schema("_SDC_DELETED_AT"), _record(1, _SDC_DELETED_AT="data")]),
                    tmp_path)
    assert first.returncode == 0, first.stderr
    run = run_cli({"sqlalchemy_url": rdb.url, "hard_delete": False},
                  jsonl([_schema(), _record(2)]), tmp_path)
    if rdb.kind == "postgres":  # two columns
        assert run.returncode == 0, run.stderr
        assert rdb.query('SELECT * FROM "things" ORDER BY 1') == [(1, "data", None),
                                                                  (2, None, None)]
        return
    rule = CASE_RULES[rdb.kind]
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        "target-dap-sql: line 1, stream 'things': column '_SDC_DELETED_AT' of the table would "
        f"be the target's own '_sdc_deleted_at': {rule}; rename or drop that column"]
    assert rdb.query('SELECT * FROM "things" ORDER BY 1') == [(1, "data")]
