"""Table names that need URL escaping: escaped (our client) and raw (the official client)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tap_dap.emulator.errors import ApiError
from tap_dap.emulator.server import decode_segment

NAMES = ["semi;colon", "q'uote", "sp ace", "ünï_表", "slash/inside"]


def _write_table(root: Path, table: str) -> None:
    folder = root / "canvas" / table
    folder.mkdir(parents=True)
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {
            "key": {"type": "object", "properties": {"id": {"type": "integer"}},
                    "required": ["id"]},
            "value": {"type": "object", "properties": {"note": {"type": "string"}}},
            "meta": {"type": "object", "properties": {"ts": {"type": "string",
                                                             "format": "date-time"}}},
        },
    }
    (folder / "schema.json").write_text(json.dumps({"schema": schema, "version": 1}))
    change = {"key": {"id": 1}, "value": {"note": table}, "meta": {"ts": "2024-01-01T00:00:00Z"}}
    (folder / "changes.jsonl").write_text(json.dumps(change) + "\n")


@pytest.mark.parametrize(
    ("segment", "name"),
    [("semi%3Bcolon", "semi;colon"), ("semi;colon", "semi;colon"), ("sp%20ace", "sp ace"),
     ("slash%2Finside", "slash/inside"), ("%C3%BCn%C3%AF_%E8%A1%A8", "ünï_表"),
     # http.server decodes the raw request line as Latin-1: raw UTF-8 bytes arrive like this
     ("ünï_表".encode().decode("latin-1"), "ünï_表"), ("plain", "plain")],
)
def test_segments_decode_to_the_name(segment: str, name: str) -> None:
    assert decode_segment(segment) == name


def test_a_segment_that_is_not_utf8_is_a_validation_error() -> None:
    with pytest.raises(ApiError) as info:
        decode_segment("bad%FF")
    assert info.value.status == 400
    assert "'bad%FF' is not UTF-8 once URL-decoded" in str(info.value)


@pytest.mark.parametrize("table", [n for n in NAMES if "/" not in n])
def test_escaped_and_raw_table_names_reach_the_table(live_factory, tmp_path: Path,
                                                     table: str) -> None:
    _write_table(tmp_path, table)
    server = live_factory(dataset="empty", data_dir=tmp_path)
    server.authorize()
    escaped = f"/dap/query/canvas/table/{quote(table, safe='')}/schema"
    assert server.get(escaped).json()["version"] == 1
    truth = server.get(f"/_emulator/truth/canvas/{quote(table, safe='')}")
    assert truth.status_code == 200, truth.text
    assert [json.loads(line)["value"] for line in truth.text.splitlines()] == [{"note": table}]
    if " " in table:
        return  # a raw space would end the request line: every client must escape it
    # The official client puts the name into the path as it is (its HTTP library may or may not
    # escape non-ASCII): send the raw UTF-8 bytes.
    parts = urlsplit(server.url)
    request = (f"GET /dap/query/canvas/table/{table}/schema HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               f"Authorization: {server.session.headers['Authorization']}\r\n"
               "Connection: close\r\n\r\n").encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    assert json.loads(body)["version"] == 1
