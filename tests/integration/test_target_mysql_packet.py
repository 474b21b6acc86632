"""Statements fit the server's `max_allowed_packet`, and a row that cannot gets one clear line.

The upsert statements were ~2,000,000 characters whatever the server took: on a server with a
smaller packet (MySQL 5.7's default is 4 MB; utf8mb4 text is up to 4 bytes a character) every
batch failed with the server's bare "Got a packet bigger than 'max_allowed_packet' bytes".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import logged_errors
from tests.integration.test_target_mysql import mysql_query
from tests.unit.target.dap_messages import jsonl, record, run_cli, singer_schema

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


@pytest.fixture(name="packet_of")
def packet_of_fixture(mariadb_url: str) -> Iterator[Callable[[int], str]]:
    """Sets the test server's `max_allowed_packet` (new connections take it); restored after."""
    (before,) = mysql_query(mariadb_url, "SELECT @@GLOBAL.max_allowed_packet")[0]

    def set_packet(size: int) -> str:
        mysql_query(mariadb_url, f"SET GLOBAL max_allowed_packet = {size}")
        return mariadb_url

    try:
        yield set_packet
    finally:
        mysql_query(mariadb_url, f"SET GLOBAL max_allowed_packet = {before}")


TEXT_KEYS = {"type": "SCHEMA", "stream": "notes", "key_properties": ["id"], "schema": {
    "type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}}}}


@pytest.mark.mariadb
@pytest.mark.parametrize("packet", [16384, 4096, 1024])
def test_deletes_of_long_text_keys_fit_a_small_packet(
        packet_of: Callable[[int], str], tmp_path: Path, packet: int) -> None:
    """A DELETE took 1000 keys whatever their length: 250 keys of 64 characters are 17 KB,
    and every run deleting them failed."""
    url = packet_of(packet)
    keys = [f"{i:04d}" + "k" * 60 for i in range(300)]
    load = run_cli({"sqlalchemy_url": url}, jsonl([TEXT_KEYS, *[
        {"type": "RECORD", "stream": "notes", "record": {"id": k, "text": "t"}} for k in keys]]),
        tmp_path)
    assert load.returncode == 0, load.stderr
    deletes = [{"type": "RECORD", "stream": "notes", "record": {
        "id": k, "text": "t", "_sdc_deleted_at": "2024-01-01T00:00:00Z"}} for k in keys[:250]]
    run = run_cli({"sqlalchemy_url": url}, jsonl([TEXT_KEYS, *deletes]), tmp_path)
    assert run.returncode == 0, run.stderr
    assert mysql_query(url, 'SELECT "id" FROM "notes" ORDER BY 1') == [(k,) for k in keys[250:]]


@pytest.mark.mariadb
def test_rows_that_each_fit_are_not_sent_together_past_the_packet(
        packet_of: Callable[[int], str], tmp_path: Path) -> None:
    """A chunk could pass its size by one row of up to the whole packet: an 8 KB row and a
    15 KB row of 4-byte characters went in one 23 KB statement to a 16 KB packet."""
    url = packet_of(16384)
    rows = [_record(1, "😀" * 2008), _record(2, "😀" * 3896)]
    run = run_cli({"sqlalchemy_url": url}, jsonl([SCHEMA, *rows]), tmp_path)
    assert run.returncode == 0, run.stderr
    assert mysql_query(url, 'SELECT "id", CHAR_LENGTH("text") FROM "notes" ORDER BY 1') == [
        (1, 2008), (2, 3896)]


@pytest.mark.mariadb
def test_a_ddl_statement_larger_than_the_packet_is_not_called_a_row(
        packet_of: Callable[[int], str], tmp_path: Path) -> None:
    """The CREATE TABLE of a DAP table with long column descriptions (comments) is 20 KB: the
    server refused it, and the line blamed "a row's SQL text"."""
    url = packet_of(16384)
    value = {f"c{i}": {"type": "string", "description": "d" * 500} for i in range(40)}
    schema = singer_schema("canvas", "things", 1, {"type": "object", "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
        "value": {"type": "object", "properties": value}}})
    run = run_cli({"sqlalchemy_url": url},
                  jsonl([schema, record("canvas-things", {"id": 1}, {"c0": "a"})]), tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [
        "target-dap-sql: preparing table for stream 'canvas-things': Got a packet bigger than "
        "'max_allowed_packet' bytes: a statement (the table's DDL or its table_sync row) is "
        "larger than the server's max_allowed_packet (16384 bytes); raise it on the server (up "
        "to 1 GiB: SET GLOBAL max_allowed_packet = 1073741824)"]
    assert mysql_query(url, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                            "table_schema = DATABASE() AND table_name = 'canvas__things'") == [(0,)]
