"""Deselected properties on the fast path (tap_dap.projection): the same records as the unmapped
path minus the deselected members, byte for byte where the rows stay on the byte path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tap_dap.output import RecordEncoder

DROPPED = frozenset({"name", "grade", "n-1.x", "é x"})
# msgspec takes no name with a quote or a backslash: such a set takes the member rewriter.
UNSPELLABLE = DROPPED | {'q"u\\o'}

# Values of the members around the deselected ones; every one must come out unchanged.
TRICKY_VALUES = [
    '"quote \\" backslash \\\\ slash \\/ tab \\t nl \\n"',
    '"unicode ü ☃ 日本語 \\u00e9 \\ud83d\\ude00"',
    '"{\\"json\\": 1, \\"name\\": 2}"',  # braces and the name inside a string
    '"name"',  # a value equal to a deselected name
    '",\\"name\\":\\"x\\""',
    "null",
    "true",
    "-0.0",
    "1e309",  # too big for a float: only its text survives
    "123456789012345678901234567890",
    '{"name":1,"a":{"grade":[1,{"name":2}]}}',  # nested members with the names stay
    '[{"name":1},"grade",[]]',
    "[]",
    "{}",
    '"' + "x" * 100_000 + '"',
]


def _line(key: int, members: list[tuple[str, str]], action: str = "U") -> bytes:
    value = "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{v}" for k, v in members) + "}"
    meta = '{"ts":"2024-01-01T00:00:00Z","action":"' + action + '"}'
    return f'{{"key":{{"id":{key}}},"value":{value},"meta":{meta}}}'.encode()


def _lines() -> list[bytes]:
    lines = []
    for i, tricky in enumerate(TRICKY_VALUES):
        # The deselected members first, in between and last; missing or null in some rows.
        dropped_value = ['"Doe, Jane"', "null", "42", "1e309", '"a\\",\\"b"', tricky][i % 6]
        members = [("name", dropped_value), ("a", tricky), ("grade", '"B+"'),
                   ("name_2", '"prefix of name"'), ("n-1", "1"), ("n-1.x", dropped_value),
                   ("é\"\\\t", tricky), ("gradex", "7"), ("é x", tricky),
                   ('q"u\\o', "1")]  # fmt: skip
        if i % 3 == 1:
            members = [m for m in members if m[0] != "grade"]
        if i % 4 == 2:
            members.append(("name", "[1,2]"))  # duplicated, an array: decoding drops both
        lines.append(_line(i, members))
    lines += [
        _line(100, [("grade", '"x"')]),  # only deselected members
        b'{"key":{"id":99},"value":{"a":1,"\\u00e9 x":2},"meta":{"ts":"2024-01-01Z"}}',
        _line(101, [("a", "1"), ("name", '"x"')], action="D"),
        b'{"key":{"id":102},"value":{},"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":103},"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":104},"value":{ "name" : 1 , "a" : "name" },"meta":{"ts":"2024-01-01Z"}}',
        b'{"key":{"id":105},"value":{"a":1,"gr\\u0061de":"B"},"meta":{"ts":"2024-01-01Z"}}',
        b'{"key":{"id":106},"value":{"a":1,"grade":"B", "name":2},"meta":{"ts":"2024-01-01Z"}}',
        b'{"key":{"id":107},"value":{"a":1,"grade" :"B"},"meta":{"ts":"2024-01-01Z"}}',
        # Nested members with the names, before the top-level one or without one.
        _line(109, [("a", '{"b":1,"name":2}'), ("c", '[1,{"x":0,"grade":3}]'), ("name", "5")]),
        _line(110, [("a", '{"b":1,"name":2}'), ("c", '[1, {"x":0,"grade":3}]')]),
        _line(111, [("a", '{"b":1,"name":2,"c":3}'), ("c", '[{"grade":3,"x":0}]'), ("d", "1")]),
        b'{"key":{"id":108},"value":{"a\\/b":"x{y","name":[]},"meta":{"ts":"2024-01-01Z"}}',
    ]
    return lines


def _records(out: bytes) -> list[dict[str, Any]]:
    # Numbers as their text: 1e309 and long integers must survive exactly, not as floats.
    return [json.loads(line, parse_float=str, parse_int=str)["record"] for line in out.splitlines()]


def _encode(lines: list[bytes], dropped: frozenset[str], block_lines: int) -> bytes:
    encoder = RecordEncoder("s", version=7, where="w", dropped=dropped)
    out = bytearray()
    for start in range(0, len(lines), block_lines):
        block = b"".join(line + b"\n" for line in lines[start : start + block_lines])
        encoder.encode_block(block, out)
    return bytes(out)


@pytest.mark.parametrize("dropped", [DROPPED, UNSPELLABLE])
@pytest.mark.parametrize("block_lines", [1, 3, 1000])
def test_projected_records_are_the_unmapped_records_minus_the_deselected(
    block_lines: int, dropped: frozenset[str]
) -> None:
    assert (RecordEncoder("s", version=7, where="w", dropped=dropped)._projection is None) is (
        dropped is UNSPELLABLE
    )
    lines = _lines()
    unmapped = _records(_encode(lines, frozenset(), block_lines))
    projected = _records(_encode(lines, dropped, block_lines))
    assert projected == [{k: v for k, v in r.items() if k not in dropped} for r in unmapped]
    assert all(not dropped & set(r) for r in projected)
    assert len(projected) == len(lines)


def test_rows_on_the_byte_path_keep_every_other_byte() -> None:
    """Braces and backslashes inside strings, a key spelled with an escape: still cut as bytes
    (decoding would re-encode the key as "a/b")."""
    line = (b'{"key":{"id":1},"value":{"name":"x{y}","a\\/b":"{\\"name\\":1}","grade":null,'
            b'"c":"nam","n-1.x":-1.5e3},"meta":{"ts":"2024-01-01Z"}}')  # fmt: skip
    out = _encode([line], DROPPED, 1)
    assert out == (
        b'{"type":"RECORD","stream":"s","record":{"id":1,"a\\/b":"{\\"name\\":1}","c":"nam",'
        b'"meta":{"action":"U","ts":"2024-01-01Z"},"_sdc_deleted_at":null},"version":7}\n'
    )


def test_a_block_with_a_duplicated_member_is_redone_exactly() -> None:
    clean = [_line(i, [("a", str(i)), ("name", '"n"')]) for i in range(5)]
    duplicated = _line(5, [("name", '"first"'), ("a", "5"), ("name", '"second"')])
    out = _encode([*clean, duplicated, *clean], DROPPED, 1000)
    assert b'"name"' not in out and b"first" not in out and b"second" not in out
    assert [r["a"] for r in _records(out)] == [*map(str, range(6)), *map(str, range(5))]


@pytest.mark.parametrize("name", ["type", "stream", "record", "version", "ts", "U"])
def test_names_the_envelope_spells_are_dropped_from_the_record_only(name: str) -> None:
    line = _line(1, [(name, "1"), ("a", "2")])
    assert _encode([line], frozenset({name}), 1) == (
        b'{"type":"RECORD","stream":"s","record":{"id":1,"a":2,'
        b'"meta":{"action":"U","ts":"2024-01-01T00:00:00Z"},"_sdc_deleted_at":null},"version":7}\n'
    )
