"""MariaDB ENUMs: case-sensitive labels across runs, new labels, hostile labels, the repair of an
ENUM corrupted by earlier versions (lower-cased label copies), and the utf8mb4 requirement."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import logged_errors
from tests.integration.test_target_mysql import mysql_query, tables
from tests.unit.target.dap_messages import (
    META,
    record,
    run_cli,
    run_in_process,
    singer_schema,
    state,
)

STREAM = "canvas-enrollments"
TABLE = "canvas__enrollments"
TYPES = ["__dap_unspecified__", "StudentEnrollment", "TeacherEnrollment", "TaEnrollment"]
ENUM = "enum('__dap_unspecified__','StudentEnrollment','TeacherEnrollment','TaEnrollment')"
# What versions before the fix made of ENUM on their second run (issue 19).
CORRUPTED = ("ENUM ('__dap_unspecified__', 'studentenrollment', 'teacherenrollment', "
             "'taenrollment', 'StudentEnrollment', 'TeacherEnrollment', 'TaEnrollment') "
             "CHARACTER SET ascii COLLATE ascii_bin NOT NULL")

pytestmark = pytest.mark.mariadb


def schema(labels: list[str], version: int = 1) -> dict[str, Any]:
    dap = {
        "type": "object", "title": "Enrollments",
        "properties": {
            "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                    "required": ["id"], "additionalProperties": False},
            "value": {"type": "object", "additionalProperties": False, "required": ["type"],
                      "properties": {"type": {"type": "string", "enum": labels},
                                     "note": {"type": "string", "maxLength": 20}}},
            "meta": META,
        },
    }
    return singer_schema("canvas", "enrollments", version, dap)


def load(url: str, labels: list[str], rows: dict[int, str], ts: str, version: int = 1) -> None:
    run_in_process({"sqlalchemy_url": url}, [
        schema(labels, version),
        *[record(STREAM, {"id": i}, {"type": t, "note": f"n{i}"}) for i, t in rows.items()],
        state({STREAM: (ts, version)})])


def enum_type(url: str) -> str:
    return mysql_query(url, "SELECT column_type FROM information_schema.columns WHERE "
                            "table_schema = DATABASE() AND table_name = %s AND column_name = "
                            "'type'", (TABLE,))[0][0]


def stored(url: str) -> dict[int, str]:
    return dict(mysql_query(url, f'SELECT "id", "type" FROM "{TABLE}"'))


def test_capitalised_labels_stay_as_they_are_run_after_run(mariadb_url: str) -> None:
    expected: dict[int, str] = {}
    for run, label in enumerate(TYPES[1:] * 2, start=1):
        load(mariadb_url, TYPES, {run: label}, f"2024-01-0{run}T00:00:00Z")
        expected[run] = label
        assert enum_type(mariadb_url) == ENUM
        assert stored(mariadb_url) == expected


def test_new_labels_are_appended_case_sensitively_and_hostile_ones_round_trip(
        mariadb_url: str) -> None:
    load(mariadb_url, TYPES, {1: "StudentEnrollment"}, "2024-01-01T00:00:00Z")
    hostile = ["studentenrollment", "it's", "a\\b", "x,y", 'q"r', "(,)", "''"]
    grown = [*TYPES, *hostile]
    rows = {10 + i: label for i, label in enumerate(grown)}
    load(mariadb_url, grown, rows, "2024-01-02T00:00:00Z", version=2)
    assert enum_type(mariadb_url) == (
        "enum('__dap_unspecified__','StudentEnrollment','TeacherEnrollment','TaEnrollment',"
        "'studentenrollment','it''s','a\\\\b','x,y','q\"r','(,)','''''')")
    after_growth = enum_type(mariadb_url)
    load(mariadb_url, grown, {1: "studentenrollment"}, "2024-01-03T00:00:00Z", version=2)
    assert enum_type(mariadb_url) == after_growth
    assert stored(mariadb_url) == {**rows, 1: "studentenrollment"}


def test_a_non_ascii_label_moves_the_enum_to_utf8mb4_instead_of_storing_question_marks(
        mariadb_url: str) -> None:
    # An ascii ENUM silently turns 'Größe' (label and values) into 'Gr??e' (generic taps only:
    # DAP labels are ASCII).
    load(mariadb_url, TYPES, {1: "StudentEnrollment"}, "2024-01-01T00:00:00Z")
    grown = [*TYPES, "Größe"]
    for run in (2, 3):
        load(mariadb_url, grown, {run: "Größe"}, f"2024-01-0{run}T00:00:00Z", version=2)
        assert enum_type(mariadb_url) == ENUM[:-1] + ",'Größe')"
    assert stored(mariadb_url) == {1: "StudentEnrollment", 2: "Größe", 3: "Größe"}
    assert mysql_query(mariadb_url, "SELECT collation_name FROM information_schema.columns "
                                    "WHERE table_schema = DATABASE() AND column_name = 'type'"
                       ) == [("utf8mb4_bin",)]


def test_an_emoji_label_causes_no_ddl_on_later_runs(mariadb_url: str) -> None:
    """information_schema (utf8mb3) reports '😀' as '?': that is no reason to MODIFY again."""
    grown = [*TYPES, "emoji😀", "emoji?"]  # a real '?' label next to it must stay itself
    load(mariadb_url, grown, {1: "emoji😀", 2: "emoji?"}, "2024-01-01T00:00:00Z")
    reported = enum_type(mariadb_url)
    created = mysql_query(mariadb_url, "SELECT create_time FROM information_schema.tables "
                                       "WHERE table_schema = DATABASE() AND table_name = %s",
                          (TABLE,))
    for run in (2, 3):
        load(mariadb_url, grown, {run + 1: "emoji😀"}, f"2024-01-0{run}T00:00:00Z")
    # a MODIFY of an ENUM copies the table: a new create_time (and the labels would reorder)
    assert mysql_query(mariadb_url, "SELECT create_time FROM information_schema.tables "
                                    "WHERE table_schema = DATABASE() AND table_name = %s",
                       (TABLE,)) == created
    assert enum_type(mariadb_url) == reported
    assert stored(mariadb_url) == {1: "emoji😀", 2: "emoji?", 3: "emoji😀", 4: "emoji😀"}


def test_enum_corrupted_by_an_earlier_version_is_repaired_without_losing_rows(
        mariadb_url: str) -> None:
    load(mariadb_url, TYPES, {1: "StudentEnrollment", 2: "TaEnrollment"}, "2024-01-01T00:00:00Z")
    mysql_query(mariadb_url, f'ALTER TABLE "{TABLE}" MODIFY COLUMN "type" {CORRUPTED}')
    # rows holding both forms: the real labels and the lower-cased copies
    mysql_query(mariadb_url, f'INSERT INTO "{TABLE}" ("id", "type", "note") VALUES '
                             "(3, 'studentenrollment', 'x'), (4, 'teacherenrollment', 'y'), "
                             "(5, 'TeacherEnrollment', 'z'), (6, '__dap_unspecified__', 'u')")
    load(mariadb_url, TYPES, {7: "TaEnrollment"}, "2024-01-02T00:00:00Z")
    assert enum_type(mariadb_url) == ENUM
    assert stored(mariadb_url) == {1: "StudentEnrollment", 2: "TaEnrollment",
                                   3: "StudentEnrollment", 4: "TeacherEnrollment",
                                   5: "TeacherEnrollment", 6: "__dap_unspecified__",
                                   7: "TaEnrollment"}
    assert mysql_query(mariadb_url, f'SELECT "note" FROM "{TABLE}" WHERE "id" = 4') == [("y",)]
    load(mariadb_url, TYPES, {8: "StudentEnrollment"}, "2024-01-03T00:00:00Z")
    assert enum_type(mariadb_url) == ENUM and len(stored(mariadb_url)) == 8


def test_lower_cased_case_blind_enum_of_an_earlier_version_is_repaired(mariadb_url: str) -> None:
    # The old evolution's MODIFY restated the lower-cased type without a character set: on a
    # case-insensitive database the rows themselves became lower case.
    load(mariadb_url, TYPES, {1: "StudentEnrollment", 2: "TaEnrollment"}, "2024-01-01T00:00:00Z")
    mysql_query(mariadb_url, f'ALTER TABLE "{TABLE}" MODIFY COLUMN "type" ENUM '
                             "('__dap_unspecified__','studentenrollment','teacherenrollment',"
                             "'taenrollment') CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci "
                             "NOT NULL")
    assert stored(mariadb_url) == {1: "studentenrollment", 2: "taenrollment"}
    load(mariadb_url, TYPES, {3: "TeacherEnrollment"}, "2024-01-02T00:00:00Z")
    assert enum_type(mariadb_url) == ENUM
    assert stored(mariadb_url) == {1: "StudentEnrollment", 2: "TaEnrollment",
                                   3: "TeacherEnrollment"}
    assert mysql_query(mariadb_url, "SELECT collation_name FROM information_schema.columns "
                                    "WHERE table_schema = DATABASE() AND column_name = 'type'"
                       ) == [("ascii_bin",)]


@pytest.mark.parametrize("charset", ["latin1", "utf8mb3"])
def test_database_without_utf8mb4_is_refused_before_anything_is_created(
        charset: str, mariadb_url: str, tmp_path: Path) -> None:
    name = f"narrow_{charset}_{uuid.uuid4().hex[:8]}"
    mysql_query(mariadb_url, f"CREATE DATABASE `{name}` CHARACTER SET {charset}")
    url = mariadb_url.rsplit("/", 1)[0] + "/" + name
    messages = [schema(TYPES), record(STREAM, {"id": 1}, {"type": "StudentEnrollment",
                                                        "note": "日本語 ✓ 😀"}),
                state({STREAM: ("2024-01-01T00:00:00Z", 1)})]
    run = run_cli({"sqlalchemy_url": url}, messages, tmp_path)
    assert run.returncode != 0 and run.states == []
    advice = f"`{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: MySQL database '{name}' has the default character set {charset}, "
        f"which cannot hold all DAP text; create it with CREATE DATABASE {advice} (or, while "
        f"it has no tables, ALTER DATABASE {advice})"]
    assert "Traceback" not in run.stderr
    assert tables(url) == []
    # Following the advice makes the same input load.
    mysql_query(url, f"ALTER DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    assert run_cli({"sqlalchemy_url": url}, messages, tmp_path).returncode == 0
    assert mysql_query(url, f'SELECT "note" FROM "{TABLE}"') == [("日本語 ✓ 😀",)]
    # Tables that exist keep working in a latin1 database (as `dap initdb` made them there),
    # with a warning naming the columns that cannot hold all text.
    mysql_query(url, f"ALTER DATABASE `{name}` CHARACTER SET {charset}")
    mysql_query(url, f'ALTER TABLE "{TABLE}" MODIFY "note" varchar(20) CHARACTER SET {charset}')
    again = [schema(TYPES), record(STREAM, {"id": 2}, {"type": "TaEnrollment", "note": "plain"}),
             state({STREAM: ("2024-01-02T00:00:00Z", 1)})]
    continued = run_cli({"sqlalchemy_url": url}, again, tmp_path)
    assert continued.returncode == 0, continued.stderr
    assert f"Table {TABLE} has text columns in a character set that cannot hold all DAP text " \
           f"(note); convert it with ALTER TABLE" in continued.stderr
    assert sorted(mysql_query(url, f'SELECT "id", "type" FROM "{TABLE}"')) == [
        (1, "StudentEnrollment"), (2, "TaEnrollment")]
