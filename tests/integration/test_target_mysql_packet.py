"""Statements fit the server's `max_allowed_packet`, and a row that cannot gets one clear line.

The upsert statements were ~2,000,000 characters whatever the server took: on a server with a
smaller packet (MySQL 5.7's default is 4 MB; utf8mb4 text is up to 4 bytes a character) every
batch failed with the server's bare "Got a packet bigger than 'max_allowed_packet' bytes".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import logged_errors
from tests.integration.test_target_mysql import mysql_query
from tests.unit.target.dap_messages import jsonl, run_cli

SCHEMA = {"type": "SCHEMA", "stream": "notes", "key_properties": ["id"], "schema": {
    "type": "object", "properties": {"id": {"type": "integer"}, "text": {"type": "string"}}}}
PACKET = 1024 * 1024


@pytest.fixture(name="small_packet_url")
def small_packet_url_fixture(mariadb_url: str) -> Iterator[str]:
    """The test server with a 1 MiB `max_allowed_packet` (new connections take it)."""
    (before,) = mysql_query(mariadb_url, "SELECT @@GLOBAL.max_allowed_packet")[0]
    mysql_query(mariadb_url, f"SET GLOBAL max_allowed_packet = {PACKET}")
    try:
        yield mariadb_url
    finally:
        mysql_query(mariadb_url, f"SET GLOBAL max_allowed_packet = {before}")


def _record(i: int, text: str) -> dict:
    return {"type": "RECORD", "stream": "notes", "record": {"id": i, "text": text}}


@pytest.mark.mariadb
def test_statements_fit_a_small_packet(small_packet_url: str, tmp_path: Path) -> None:
    # 3,000 rows of 600 three-byte characters: 5.4 MB of text, 1.2 MB in 2,000,000 characters
    rows = [_record(i, "€" * 600) for i in range(3000)]
    run = run_cli({"sqlalchemy_url": small_packet_url}, jsonl([SCHEMA, *rows]), tmp_path)
    assert run.returncode == 0, run.stderr
    assert mysql_query(small_packet_url, 'SELECT COUNT(*), SUM(CHAR_LENGTH("text")) '
                       'FROM "notes"') == [(3000, 1_800_000)]


@pytest.mark.mariadb
def test_a_row_larger_than_the_packet_is_named_with_the_setting(
        small_packet_url: str, tmp_path: Path) -> None:
    first = run_cli({"sqlalchemy_url": small_packet_url}, jsonl([SCHEMA, _record(1, "a")]),
                    tmp_path)
    assert first.returncode == 0, first.stderr
    run = run_cli({"sqlalchemy_url": small_packet_url},
                  jsonl([SCHEMA, _record(2, "b"), _record(3, "x" * (2 * PACKET))]), tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        "target-dap-sql: loading stream 'notes': Got a packet bigger than 'max_allowed_packet' "
        f"bytes: a row's SQL text is larger than the server's max_allowed_packet ({PACKET} "
        "bytes); raise it on the server (up to 1 GiB: SET GLOBAL max_allowed_packet = "
        "1073741824)"]
    assert mysql_query(small_packet_url, 'SELECT "id" FROM "notes"') == [(1,)]  # kept
