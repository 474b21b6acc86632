"""MariaDB: official `<ns>__<table>` layout, incremental/snapshot loading, errors, crash safety."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest

from target_dap_sql.dialects.mysql_server import check_server_version, mysql_params
from target_dap_sql.errors import ConfigError, DatabaseError
from tests.integration.helpers import (
    SUBMISSIONS,
    bookmark,
    delete,
    logged_errors,
    snapshot,
    submissions_schema_message,
    upsert,
)
from tests.unit.target.dap_messages import activate, jsonl, run_cli, run_in_process


def mysql_connect(url: str, **options: Any) -> pymysql.connections.Connection:
    """A PyMySQL connection to the database of a `mysql://` URL."""
    parts = urlsplit(url)
    return pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username or "root",
                           password=parts.password or "", database=parts.path.lstrip("/"),
                           **options)


def mysql_query(url: str, sql: str, params: Any = None) -> list[tuple]:
    conn = mysql_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def columns(url: str, table: str) -> list[tuple]:
    return mysql_query(url, "SELECT column_name, column_type, is_nullable, column_comment FROM "
                            "information_schema.columns WHERE table_schema = DATABASE() AND "
                            "table_name = %s ORDER BY ordinal_position", (table,))


def tables(url: str) -> list[str]:
    return [r[0] for r in mysql_query(url, "SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = DATABASE() ORDER BY 1")]


def meta(url: str) -> list[tuple]:
    return mysql_query(url, 'SELECT "source_namespace", "source_table", "timestamp", '
                            '"schema_version", "target_schema", "target_table" '
                            'FROM "instructure_dap__table_sync" ORDER BY "id"')


def load(url: str, version: int, messages: list[dict], **config: Any) -> list[dict]:
    """Load messages after the submissions SCHEMA of `version`; the STATE lines written."""
    return run_in_process({"sqlalchemy_url": url, **config},
                          [submissions_schema_message(version), *messages])


ENUM = "enum('submitted','graded','__dap_unspecified__')"
# docs/database-layout.md (Column types, MySQL); MariaDB spells json as longtext, shows int widths.
OFFICIAL_V1 = [
    ("id", "bigint(20)", "NO", ""),
    ("assignment_id", "bigint(20)", "YES", "The assignment this submission is for."),
    ("attempt", "int(11)", "YES", ""),
    ("workflow_state", ENUM, "NO", ""),
    ("grade", "varchar(255)", "YES", ""),
    ("score", "double", "YES", ""),
    ("excused", "tinyint(4)", "YES", ""),
    ("submitted_at", "datetime", "YES", ""),
    ("lti_id", "binary(16)", "YES", ""),
    ("body", "mediumtext", "YES", ""),
    ("media", "longtext", "YES", ""),
    ("tags", "longtext", "YES", ""),
]

pytestmark = pytest.mark.mariadb


def test_official_layout_values_and_meta_row(mariadb_url: str) -> None:
    load(mariadb_url, 1, [upsert(1), bookmark("2024-01-01T00:00:00.999999Z")])
    assert columns(mariadb_url, "canvas__submissions") == OFFICIAL_V1
    assert mysql_query(mariadb_url, "SELECT character_set_name, collation_name FROM "
                       "information_schema.columns WHERE table_schema = DATABASE() AND "
                       "column_name = 'workflow_state'") == [("ascii", "ascii_bin")]
    assert mysql_query(mariadb_url, "SELECT table_comment FROM information_schema.tables WHERE "
                       "table_schema = DATABASE() AND table_name = 'canvas__submissions'"
                       ) == [("Submissions",)]
    assert mysql_query(mariadb_url, 'SELECT * FROM "canvas__submissions"') == [(
        1, 1001, 1, "submitted", "A1", 9.5, 0, dt.datetime(2024, 1, 5, 10, 0), uuid.UUID(
            "00000000-0000-4000-8000-000000000001").bytes, "essay 1",
        '{"kind":"video","size":1}', '["late","ü"]')]
    # datetime has no fraction: the resume point is cut DOWN, never rounded up past changes.
    assert meta(mariadb_url) == [("canvas", "submissions", dt.datetime(2024, 1, 1), 1,
                                  "canvas", "submissions")]
    assert mysql_query(mariadb_url,
                       'SELECT "version" FROM "instructure_dap__database_version"') == [(1,)]


def test_incremental_upserts_deletes_and_schema_evolution(mariadb_url: str) -> None:
    load(mariadb_url, 1, [upsert(1), upsert(2), upsert(3), bookmark("2024-01-01T00:00:00Z")])
    states = load(mariadb_url, 2, [
        upsert(2, grade="B" * 1000, workflow_state="pending_review", late_days=3),
        delete(3), upsert(4), delete(4), upsert(5),
        bookmark("2024-01-02T03:04:05.5Z", 2)], batch_size_rows=2)
    assert states[-1]["bookmarks"][SUBMISSIONS]["timestamp"] == "2024-01-02T03:04:05.5Z"
    rows = mysql_query(mariadb_url, 'SELECT "id", "workflow_state", LENGTH("grade"), '
                                    '"late_days" FROM "canvas__submissions" ORDER BY 1')
    assert rows == [(1, "submitted", 2, None), (2, "pending_review", 1000, 3),
                    (5, "submitted", 2, None)]
    by_name = {c[0]: c[1] for c in columns(mariadb_url, "canvas__submissions")}
    assert by_name["workflow_state"] == (
        "enum('submitted','graded','__dap_unspecified__','pending_review')")
    assert (by_name["grade"], by_name["late_days"]) == ("varchar(1024)", "int(11)")
    assert meta(mariadb_url)[0][2:4] == (dt.datetime(2024, 1, 2, 3, 4, 5), 2)


def test_snapshot_swaps_atomically_and_leaves_no_staging(mariadb_url: str) -> None:
    load(mariadb_url, 1, [upsert(1), upsert(2), bookmark("2024-01-01T00:00:00Z")])
    load(mariadb_url, 1, [*snapshot(7, (10, 11)), bookmark("2024-02-01T00:00:00Z")],
         batch_size_rows=1)
    assert mysql_query(mariadb_url, 'SELECT "id" FROM "canvas__submissions" ORDER BY 1') == [
        (10,), (11,)]
    assert tables(mariadb_url) == ["canvas__submissions", "instructure_dap__database_version",
                                   "instructure_dap__table_sync"]
    assert meta(mariadb_url)[0][2] == dt.datetime(2024, 2, 1)


def test_unfinished_snapshot_leaves_live_table_and_bookmark(mariadb_url: str) -> None:
    load(mariadb_url, 1, [upsert(1), bookmark("2024-01-01T00:00:00Z")])
    states = load(mariadb_url, 1, [activate(SUBMISSIONS, 8), upsert(20),
                                   bookmark("2024-03-01T00:00:00Z")])
    assert mysql_query(mariadb_url, 'SELECT "id" FROM "canvas__submissions"') == [(1,)]
    assert meta(mariadb_url)[0][2] == dt.datetime(2024, 1, 1)
    assert states[-1]["bookmarks"][SUBMISSIONS]["timestamp"] == "2024-01-01T00:00:00Z"


def test_failed_batch_rolls_back_and_keeps_earlier_commits(mariadb_url: str,
                                                           tmp_path: Path) -> None:
    data = jsonl([submissions_schema_message(1), upsert(1), upsert(2),
                  bookmark("2024-01-02T00:00:00Z"), upsert(3),
                  # an enum value MariaDB's STRICT mode rejects (validation off)
                  upsert(4, workflow_state="bogus")])
    run = run_cli({"sqlalchemy_url": mariadb_url, "batch_size_rows": 2,
                   "validate_records": False}, data, tmp_path)
    assert run.returncode == 1
    assert "loading stream 'canvas-submissions': Data truncated for column 'workflow_state'" \
        in run.stderr
    assert mysql_query(mariadb_url, 'SELECT "id" FROM "canvas__submissions" ORDER BY 1') == [
        (1,), (2,)]
    # The STATE came after rows 1-2 were committed; the batch that would carry it failed.
    assert meta(mariadb_url) == []
    assert run.states == []


def test_user_without_write_access_gets_one_clear_error(mariadb_url: str,
                                                        tmp_path: Path) -> None:
    database = urlsplit(mariadb_url).path.lstrip("/")
    user = f"ro_{database[-8:]}"
    mysql_query(mariadb_url, f"CREATE USER '{user}'@'%' IDENTIFIED BY 's3cret-pw'")
    mysql_query(mariadb_url, f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'")
    parts = urlsplit(mariadb_url)
    url = f"mysql://{user}:s3cret-pw@{parts.hostname}:{parts.port}/{database}"
    run = run_cli({"sqlalchemy_url": url}, [submissions_schema_message(1), upsert(1)], tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: creating the instructure_dap meta tables: the MySQL user cannot write "
        f"to database '{database}' at {parts.hostname}:{parts.port}/{database}: CREATE command "
        f"denied to user '{user}'@'localhost' for table "
        f"`{database}`.`instructure_dap__database_version`"], run.stderr
    assert "s3cret-pw" not in run.stderr and "Traceback" not in run.stderr
    assert tables(mariadb_url) == []


@pytest.mark.parametrize(("version", "message"), [
    ("5.7.44-log", "MySQL 5.7.44-log is not supported: target-dap-sql needs MariaDB 10.5 or "
                   "later, or MySQL 8.0 or later"),
    ("10.4.32-MariaDB", "MariaDB 10.4.32-MariaDB is not supported: target-dap-sql needs MariaDB "
                        "10.5 or later, or MySQL 8.0 or later"),
])
def test_unsupported_server_versions_are_refused(version: str, message: str) -> None:
    with pytest.raises(DatabaseError) as caught:
        check_server_version(version)
    assert str(caught.value) == message


@pytest.mark.parametrize("version", ["10.11.6-MariaDB-0+deb12u1", "8.0.36", "11.4.2-MariaDB"])
def test_supported_server_versions_pass(version: str) -> None:
    assert check_server_version(version) is None


def test_url_parsing_and_errors() -> None:
    params = mysql_params("mysql+pymysql://u%40x:p%2Fw@db.example:3307/replica?ssl=require")
    assert {k: params[k] for k in ("host", "port", "user", "password", "database")} == {
        "host": "db.example", "port": 3307, "user": "u@x", "password": "p/w",
        "database": "replica"}
    assert params["ssl"] == {"check_hostname": False}
    with pytest.raises(ConfigError, match="a MySQL URL needs a database name"):
        mysql_params("mysql://root@localhost:3306/")


def test_soft_delete_record_metadata_and_text_enums(mariadb_url: str) -> None:
    load(mariadb_url, 1, [upsert(1), upsert(2), delete(2, ts="2024-01-09T08:07:06Z"),
                          bookmark("2024-01-01T00:00:00Z")],
         hard_delete=False, add_record_metadata=True, enum_type="text", batch_size_rows=2)
    by_name = {c[0]: c[1] for c in columns(mariadb_url, "canvas__submissions")}
    assert (by_name["workflow_state"], by_name["_sdc_deleted_at"],
            by_name["_sdc_batched_at"]) == ("mediumtext", "datetime", "datetime")
    rows = mysql_query(mariadb_url, 'SELECT "id", "_sdc_deleted_at", "_sdc_batched_at" IS NOT '
                                    'NULL FROM "canvas__submissions" ORDER BY 1')
    assert rows == [(1, None, 1), (2, dt.datetime(2024, 1, 9, 8, 7, 6), 1)]


def test_soft_deletes_do_not_depend_on_batch_boundaries(mariadb_url: str) -> None:
    """As on the other databases (test_target_loading.py): a key upserted and deleted in one
    batch keeps its row, marked deleted."""
    messages = [upsert(1), upsert(2, grade="old"), delete(1, ts="2024-02-02T02:02:02Z"),
                delete(2), upsert(2, grade="new")]
    outcomes = []
    for rows in (1, 1000):
        mysql_query(mariadb_url, 'DROP TABLE IF EXISTS "canvas__submissions"')
        load(mariadb_url, 1, messages, hard_delete=False, batch_size_rows=rows)
        outcomes.append(mysql_query(mariadb_url, 'SELECT "id", "grade", "_sdc_deleted_at" '
                                                 'FROM "canvas__submissions" ORDER BY 1'))
    assert outcomes[0] == outcomes[1] == [
        (1, "A1", dt.datetime(2024, 2, 2, 2, 2, 2)), (2, "new", None)]


def test_generic_stream_with_text_key(mariadb_url: str) -> None:
    messages = [
        {"type": "SCHEMA", "stream": "crm-people", "key_properties": ["email"], "schema": {
            "properties": {"email": {"type": "string"}, "age": {"type": ["integer", "null"]},
                           "tags": {"type": "array", "items": {"type": "string"}}}}},
        {"type": "RECORD", "stream": "crm-people",
         "record": {"email": "a@x", "age": 3, "tags": ["ü"]}},
        {"type": "RECORD", "stream": "crm-people",
         "record": {"email": "a@x", "age": 4, "tags": []}},
    ]
    run_in_process({"sqlalchemy_url": mariadb_url}, messages)
    run_in_process({"sqlalchemy_url": mariadb_url}, messages[:2])
    assert [c[:2] for c in columns(mariadb_url, "crm__people")] == [
        ("email", "varchar(255)"), ("age", "bigint(20)"), ("tags", "longtext")]
    assert mysql_query(mariadb_url, 'SELECT * FROM "crm__people"') == [("a@x", 3, '["ü"]')]
