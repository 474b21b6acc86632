"""MariaDB: text keys that differ only in case, accents or trailing spaces stay distinct rows
(a key column compares with a binary NO PAD collation, whatever the database's default), and a
table whose key column would merge them is refused before anything is written to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import logged_errors
from tests.integration.test_target_mysql import mysql_query
from tests.unit.target.dap_messages import run_cli

pytestmark = pytest.mark.mariadb

#: Seven keys that case-, accent- or pad-blind collations take for fewer.
KEYS = ["a", "A", "a ", "é", "e", "ß", "ss"]
SCHEMA = {"type": "SCHEMA", "stream": "sk", "key_properties": ["id"],
          "schema": {"type": "object", "properties": {"id": {"type": "string"},
                                                      "v": {"type": ["string", "null"]}}}}


def _record(key: str, value: str, deleted: bool = False) -> dict[str, Any]:
    record = {"id": key, "v": value}
    if deleted:
        record["_sdc_deleted_at"] = "2024-01-01T00:00:00Z"
    return {"type": "RECORD", "stream": "sk", "record": record}


def _rows(url: str) -> list[tuple]:
    return sorted(mysql_query(url, 'SELECT CAST("id" AS BINARY), "v" FROM "sk"'))


@pytest.mark.parametrize("collation", ["utf8mb4_general_ci", "utf8mb4_bin",
                                       "utf8mb4_unicode_520_ci"])
def test_text_keys_differing_in_case_accents_or_trailing_spaces_stay_distinct(
        mariadb_url: str, tmp_path: Path, collation: str) -> None:
    # The database's default collation is what tables took without an explicit one.
    mysql_query(mariadb_url, f"ALTER DATABASE CHARACTER SET utf8mb4 COLLATE {collation}")
    first = [SCHEMA, *[_record(k, f"v{i}") for i, k in enumerate(KEYS)]]
    assert run_cli({"sqlalchemy_url": mariadb_url}, first, tmp_path).returncode == 0
    assert _rows(mariadb_url) == sorted((k.encode(), f"v{i}") for i, k in enumerate(KEYS))
    assert mysql_query(mariadb_url, "SELECT collation_name FROM information_schema.columns "
                       "WHERE table_schema = DATABASE() AND table_name = 'sk' AND "
                       "column_name = 'id'") == [("utf8mb4_nopad_bin",)]
    # An update and a delete touch their own key only.
    second = [SCHEMA, _record("A", "updated"), _record("a ", "", deleted=True),
              _record("ß", "", deleted=True)]
    assert run_cli({"sqlalchemy_url": mariadb_url}, second, tmp_path).returncode == 0
    assert _rows(mariadb_url) == sorted([
        (b"a", "v0"), (b"A", "updated"), ("é".encode(), "v3"), (b"e", "v4"), (b"ss", "v6")])


@pytest.mark.parametrize(("collation", "blind"), [
    ("utf8mb4_general_ci", "case, accents or trailing spaces"),
    ("utf8mb4_bin", "trailing spaces"),
])
def test_an_existing_table_whose_key_merges_text_keys_is_refused(
        mariadb_url: str, tmp_path: Path, collation: str, blind: str) -> None:
    """As an earlier target-dap-sql (or another tool) created it: the key column took the
    database's collation. Loading into it would overwrite rows silently."""
    mysql_query(mariadb_url, 'CREATE TABLE "sk" ("id" varchar(255) NOT NULL, "v" mediumtext, '
                             f'PRIMARY KEY ("id")) CHARACTER SET utf8mb4 COLLATE {collation}')
    mysql_query(mariadb_url, """INSERT INTO "sk" VALUES ('a', 'kept')""")
    run = run_cli({"sqlalchemy_url": mariadb_url}, [SCHEMA, _record("a ", "new")], tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        f"target-dap-sql: table sk: key column 'id' has the collation {collation}, which takes "
        f"keys that differ only in {blind} for one key (their rows would overwrite each "
        "other); convert it with ALTER TABLE `sk` MODIFY COLUMN `id` varchar(255) CHARACTER "
        "SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL"]
    assert _rows(mariadb_url) == [(b"a", "kept")]
    # The statement the line gives fixes it (it loses no row: the new collation is finer).
    mysql_query(mariadb_url, 'ALTER TABLE "sk" MODIFY COLUMN "id" varchar(255) CHARACTER SET '
                             "utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL")
    assert run_cli({"sqlalchemy_url": mariadb_url}, [SCHEMA, _record("a ", "new")],
                   tmp_path).returncode == 0
    assert _rows(mariadb_url) == [(b"a", "kept"), (b"a ", "new")]
