"""The fast record path: exact RECORD bytes for DAP lines, and precise errors for bad lines."""

from __future__ import annotations

import json

import pytest

from tap_dap.errors import MalformedDataError
from tap_dap.output import RecordEncoder, encode_object

SNAPSHOT_LINE = (
    b'{"key":{"id":1},"value":{"name":"Root","n":{"a":[1,2]}},"meta":{"ts":"2024-01-01T00:00:00Z"}}'
)
UPDATE_LINE = (
    b'{"meta":{"ts":"2024-02-01T00:00:00.5Z","action":"U"},"key":{"id":2},"value":{"name":"x\\"y"}}'
)
DELETE_LINE = (
    b'{"key":{"id":3},"meta":{"ts":"2024-02-02T00:00:00Z","action":"D"},"value":{"name":"gone"}}'
)


def encode(lines: list[bytes], version: int | None = None) -> bytes:
    encoder = RecordEncoder("canvas-accounts", version=version, where="canvas.accounts: object O1")
    return b"".join(chunk for chunk, _ in encode_object(encoder, iter(lines)))


def test_snapshot_line_becomes_a_flat_record_with_meta_and_version() -> None:
    assert encode([SNAPSHOT_LINE], version=1700000000000) == (
        b'{"type":"RECORD","stream":"canvas-accounts","record":{"id":1,"name":"Root",'
        b'"n":{"a":[1,2]},"meta":{"action":"U","ts":"2024-01-01T00:00:00Z"},'
        b'"_sdc_deleted_at":null},"version":1700000000000}\n'
    )


def test_updates_and_deletes_follow_the_contract() -> None:
    lines = encode([UPDATE_LINE, DELETE_LINE]).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"type": "RECORD", "stream": "canvas-accounts", "record": {
            "id": 2, "name": 'x"y',
            "meta": {"action": "U", "ts": "2024-02-01T00:00:00.5Z"}, "_sdc_deleted_at": None}},
        {"type": "RECORD", "stream": "canvas-accounts", "record": {
            "id": 3, "meta": {"action": "D", "ts": "2024-02-02T00:00:00Z"},
            "_sdc_deleted_at": "2024-02-02T00:00:00Z"}},
    ]  # fmt: skip


@pytest.mark.parametrize(
    "line",
    [
        b'{"key":{"id":4},"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":4},"value":{},"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":4},"value":{ \n },"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":4},"value":null,"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b' { "key" : { "id" : 4 } , "meta" : { "ts" : "2024-01-01T00:00:00Z" } } ',
    ],
)
def test_rows_without_values_and_odd_whitespace_stay_valid_json(line: bytes) -> None:
    record = json.loads(encode([line]))["record"]
    assert record == {
        "id": 4, "meta": {"action": "U", "ts": "2024-01-01T00:00:00Z"}, "_sdc_deleted_at": None,
    }  # fmt: skip


def test_unknown_actions_are_skipped_and_counted() -> None:
    encoder = RecordEncoder("canvas-accounts", version=None, where="w")
    odd = b'{"key":{"id":9},"meta":{"ts":"2024-01-01T00:00:00Z","action":"X"}}'
    chunks = list(encode_object(encoder, iter([odd, UPDATE_LINE])))
    assert [count for _, count in chunks] == [1]
    assert encoder.skipped_actions == 1
    assert json.loads(chunks[0][0])["record"]["id"] == 2


@pytest.mark.parametrize("blank", [b" ", b"\t", b"  \t \r", b"\x0b\x0c"])
def test_whitespace_only_lines_are_skipped_and_keep_line_numbers(blank: bytes) -> None:
    assert encode([SNAPSHOT_LINE, blank, DELETE_LINE]) == encode([SNAPSHOT_LINE, DELETE_LINE])
    with pytest.raises(MalformedDataError) as info:
        encode([blank, SNAPSHOT_LINE, b"{oops"])
    assert str(info.value).startswith("canvas.accounts: object O1, line 3: malformed DAP record")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"key":{"id":1},"meta":{"ts":"2024', "malformed DAP record: Input data was truncated"),
        (b'{"value":{},"meta":{"ts":"2024-01-01T00:00:00Z"}}', "missing required field `key`"),
        (b'{"key":{"id":1}}', "missing required field `meta`"),
        (b'{"key":[1],"meta":{"ts":"2024-01-01T00:00:00Z"}}', "'key' must be an object"),
        (b'{"key":{"id":1},"meta":{"ts":5}}', "'meta.ts' a string"),
        (b'{"key":{"id":1},"value":[1],"meta":{"ts":"t"}}', "'value' not an object"),
        (b"not json at all", "malformed DAP record"),
    ],
)
def test_malformed_lines_name_object_and_line_number(line: bytes, reason: str) -> None:
    with pytest.raises(MalformedDataError) as info:
        encode([SNAPSHOT_LINE, SNAPSHOT_LINE, line])
    message = str(info.value)
    assert message.startswith("canvas.accounts: object O1, line 3: malformed DAP record: ")
    assert reason in message


def test_chunks_split_on_record_boundaries_and_respect_a_limit() -> None:
    encoder = RecordEncoder("s", version=None, where="w")
    lines = [SNAPSHOT_LINE] * 5000
    chunks = list(encode_object(encoder, iter(lines)))
    assert sum(count for _, count in chunks) == 5000
    assert len(chunks) > 1 and all(chunk.endswith(b"\n") for chunk, _ in chunks)
    assert sum(chunk.count(b"\n") for chunk, _ in chunks) == 5000
    limited = list(encode_object(encoder, iter(lines), limit=7))
    assert [count for _, count in limited] == [7]
