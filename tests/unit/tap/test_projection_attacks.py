"""Hostile rows against deselection on the fast path (tap_dap.projection, with the member
rewriter of tap_dap.rewrite as its fallback): a deselected member must never reach a RECORD,
and every other member must decode to what decoding the row and dropping the members gives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tap_dap.output import RecordEncoder
from tap_dap.rewrite import MemberRewriter

TS = b'"2024-01-01T00:00:00Z"'


def _row(value: bytes, key: bytes = b'{"id":1}', action: bytes = b"U") -> bytes:
    return b'{"key":' + key + b',"value":' + value + b',"meta":{"ts":' + TS + b',"action":"' + (
        action + b'"}}'
    )


def _encode(lines: list[bytes], dropped: frozenset[str], block_lines: int = 1000) -> bytes:
    encoder = RecordEncoder("s", version=None, where="w", dropped=dropped)
    out = bytearray()
    for start in range(0, len(lines), block_lines):
        block = b"".join(line + b"\n" for line in lines[start : start + block_lines])
        encoder.encode_block(block, out)
    return bytes(out)


def _expected(line: bytes, dropped: frozenset[str]) -> dict[str, Any] | None:
    """The exact path: the row decoded, the deselected members dropped (numbers as their text):
    from the value, and from the key, which declares no deselected property (SDK semantics:
    the record loses them, wherever they come from)."""
    row = json.loads(line, parse_float=str, parse_int=str)
    action = row["meta"].get("action", "U")
    if action not in ("U", "D"):
        return None
    record = {k: v for k, v in row["key"].items() if k not in dropped}
    if action == "U":
        record.update((k, v) for k, v in (row.get("value") or {}).items() if k not in dropped)
    record["meta"] = {"action": action, "ts": row["meta"]["ts"]}
    record["_sdc_deleted_at"] = row["meta"]["ts"] if action == "D" else None
    return record


def _records(out: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(line, parse_float=str, parse_int=str)["record"]
        for line in out.split(b"\n")
        if line
    ]


def _assert_exact(lines: list[bytes], dropped: frozenset[str], block_lines: int = 1000) -> bytes:
    out = _encode(lines, dropped, block_lines)
    expected = [r for r in (_expected(line, dropped) for line in lines) if r is not None]
    assert _records(out) == expected
    assert b"SECRET" not in out
    return out


@pytest.mark.parametrize(
    "value",
    [
        b'{"name": "SECRET, Jane","a":1}',
        b'{"a":1,"name":\t"SECRET, Jane"}',
        b'{"a":1,"name": ["SECRET","x"],"b":2}',
        b'{"a":1,"name": "x","name": "SECRET, Jane"}',
    ],
)
def test_whitespace_after_the_colon_is_no_scalar_for_the_member_rewriter(value: bytes) -> None:
    """A member spelled ``"name": "Doe, Jane"`` (space after the colon, as json.dumps writes):
    cutting up to the next comma would leave the rest of the value in the record."""
    out = bytearray(b'{"id":1,' + value[1:-1] + b",")  # as the encoder leaves it
    at = len(b'{"id":1,')
    assert not MemberRewriter(["name"], {}).apply(out, at) or b"SECRET" not in out
    # Through the encoder: a duplicated member sends the block to the member rewriter.
    for lines in ([_row(value)], [_row(b'{"name":1,"name":2}'), _row(value)]):
        _assert_exact(lines, frozenset({"name"}))


@pytest.mark.parametrize("hashed", [False, True])
@pytest.mark.parametrize("name", ["name", 'q"u\\o'])
@pytest.mark.parametrize(
    "key",
    [
        b'{"id":1,"NAME":"SECRET"}',
        b'{"NAME":"SECRET","id":1}',
        b'{"id":1,"NAME":{"x":"SECRET"}}',
        b'{"id":1, "NAME" : "SECRET"}',
    ],
)
def test_a_key_member_of_a_deselected_name_is_not_sent(key: bytes, name: str, hashed: bool) -> None:
    """Deselected names are never key properties (those cannot be deselected), so a key member
    of that name is one the data source added: the record drops it like a value member, in
    upserts and deletes, in any block, spelled with escapes or not."""
    spelled = json.dumps(name).encode()
    keys = [key.replace(b'"NAME"', spelled)]
    if name == "name":
        keys.append(key.replace(b'"NAME"', b'"n\\u0061me"'))
    dropped = frozenset({name})
    lines = []
    for i, k in enumerate(keys):
        lines += [_row(b'{"a":1,"b":"x"}', k), _row(b'{"a":1}', k, b"D"), _row(b"{}", k)]
        lines += [_row(b'{"a":%d}' % i)] * 3
    for block_lines in (1, 2, 1000):
        if hashed:
            out = _encode_hashed(lines, dropped, block_lines)
            expected = [r for r in (_expected(line, dropped) for line in lines) if r]
            assert _records(out) == [{**r, "b": _HASHED.get(r.get("b"), r.get("b"))}
                                     if "b" in r else r for r in expected]  # fmt: skip
            assert b"SECRET" not in out
        else:
            _assert_exact(lines, dropped, block_lines)


_HASHED = {"x": "hashed-x"}


def _encode_hashed(lines: list[bytes], dropped: frozenset[str], block_lines: int) -> bytes:
    from tap_dap.rewrite import HashRule

    class _Fixed:
        def __init__(self, text: bytes) -> None:
            self.text = text

        def hexdigest(self) -> str:
            return "hashed-" + self.text.decode()

    def map_line(line: bytes) -> bytes:
        message = json.loads(line)
        if message["record"].get("b") is not None:
            message["record"]["b"] = "hashed-" + message["record"]["b"]
        return json.dumps(message).encode() + b"\n"

    # The digest is a stand-in (the test is about which members are sent): the byte path and
    # map_line give the same text.
    encoder = RecordEncoder("s", version=None, where="w", dropped=dropped,
                            hashed={"b": HashRule(_Fixed)}, map_line=map_line)  # fmt: skip
    out = bytearray()
    for start in range(0, len(lines), block_lines):
        block = b"".join(line + b"\n" for line in lines[start : start + block_lines])
        encoder.encode_block(block, out)
    return bytes(out)
