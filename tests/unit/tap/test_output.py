"""The fast record path: exact RECORD bytes for DAP lines, and precise errors for bad lines."""

from __future__ import annotations

import hashlib
import json

import pytest

from tap_dap.client.streams import line_blocks
from tap_dap.errors import MalformedDataError
from tap_dap.output import CHUNK_BYTES, RecordEncoder, encode_object
from tap_dap.rewrite import HashRule

SNAPSHOT_LINE = (
    b'{"key":{"id":1},"value":{"name":"Root","n":{"a":[1,2]}},"meta":{"ts":"2024-01-01T00:00:00Z"}}'
)
UPDATE_LINE = (
    b'{"meta":{"ts":"2024-02-01T00:00:00.5Z","action":"U"},"key":{"id":2},"value":{"name":"x\\"y"}}'
)
DELETE_LINE = (
    b'{"key":{"id":3},"meta":{"ts":"2024-02-02T00:00:00Z","action":"D"},"value":{"name":"gone"}}'
)


def encode(lines: list[bytes], version: int | None = None, block_lines: int = 1000) -> bytes:
    """Encode ``lines`` handed over in blocks of ``block_lines`` lines, as the tap does."""
    encoder = RecordEncoder("canvas-accounts", version=version, where="canvas.accounts: object O1")
    blocks = [
        b"".join(line + b"\n" for line in lines[i : i + block_lines])
        for i in range(0, len(lines), block_lines)
    ]
    return b"".join(chunk for chunk, _ in encode_object(encoder, blocks))


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
    chunks = list(encode_object(encoder, [odd + b"\n" + UPDATE_LINE + b"\n"]))
    assert [count for _, count in chunks] == [1]
    assert encoder.skipped_actions == 1
    assert json.loads(chunks[0][0])["record"]["id"] == 2


@pytest.mark.parametrize("blank", [b"", b" ", b"\t", b"  \t \r", b"\x0b\x0c"])
def test_blank_lines_are_skipped_and_not_counted(blank: bytes) -> None:
    assert encode([SNAPSHOT_LINE, blank, DELETE_LINE]) == encode([SNAPSHOT_LINE, DELETE_LINE])
    with pytest.raises(MalformedDataError) as info:
        encode([blank, SNAPSHOT_LINE, b"{oops"])
    assert str(info.value).startswith("canvas.accounts: object O1, line 2: malformed DAP record")


def test_crlf_line_endings_give_the_same_records() -> None:
    encoder = RecordEncoder("canvas-accounts", version=None, where="w")
    block = SNAPSHOT_LINE + b"\r\n" + DELETE_LINE + b"\r\n"
    assert b"".join(c for c, _ in encode_object(encoder, [block])) == encode(
        [SNAPSHOT_LINE, DELETE_LINE]
    )


def test_block_boundaries_and_the_line_by_line_path_do_not_change_a_byte() -> None:
    odd = [
        SNAPSHOT_LINE, UPDATE_LINE, DELETE_LINE,
        b'{"key":{"id":4},"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":5},"value":{ "a" : 1 },"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":6,"k":"x"},"value":null,"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":7},"meta":{"ts":"2024-01-01T00:00:00Z","action":"X"}}',
    ] * 3  # fmt: skip
    expected = encode(odd)
    assert [json.loads(line)["record"]["id"] for line in expected.splitlines()] == [
        1, 2, 3, 4, 5, 6] * 3  # fmt: skip
    assert encode(odd, block_lines=1) == expected
    assert encode(odd, block_lines=4) == expected
    # A line that is not JSON whitespace sends its block down the line-by-line path.
    assert encode([*odd[:9], b"\x0b", *odd[9:]]) == expected


def test_errors_count_lines_across_blocks() -> None:
    with pytest.raises(MalformedDataError, match="object O1, line 7: malformed DAP record"):
        encode([SNAPSHOT_LINE] * 6 + [b'{"key":5,"meta":{"ts":"t"}}'], block_lines=4)
    with pytest.raises(MalformedDataError, match="object O1, line 3: malformed DAP record"):
        encode([SNAPSHOT_LINE, b"", b" ", DELETE_LINE, b"[]"], block_lines=2)


def test_line_blocks_of_any_cut_encode_identically() -> None:
    stream = b"".join(line + b"\n" for line in [SNAPSHOT_LINE, UPDATE_LINE, DELETE_LINE] * 50)
    expected = encode([SNAPSHOT_LINE, UPDATE_LINE, DELETE_LINE] * 50)
    for size in (1, 7, 100, 4096):
        pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
        encoder = RecordEncoder("canvas-accounts", version=None, where="w")
        blocks = line_blocks(pieces)
        assert b"".join(c for c, _ in encode_object(encoder, blocks)) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"key":{"id":1},"meta":{"ts":"2024', "malformed DAP record: Input data was truncated"),
        (b'{"value":{},"meta":{"ts":"2024-01-01T00:00:00Z"}}', "missing required field `key`"),
        (b'{"key":{"id":1}}', "missing required field `meta`"),
        (b'{"key":[1],"meta":{"ts":"2024-01-01T00:00:00Z"}}', "'key' must be an object"),
        (b'{"key":{},"meta":{"ts":"2024-01-01T00:00:00Z"}}', "'key' is an empty object"),
        (b'{"key":{"id":1},"meta":{"ts":"t","action":"D"}} x', "trailing characters"),
        (b'{"key":{"id":1},"meta":{"ts":5}}', "'meta.ts' a string"),
        (b'{"key":{"id":1},"value":[1],"meta":{"ts":"t"}}', "'value' not an object"),
        (b'{"key":{"id":1},"value":"{}","meta":{"ts":"t"}}', "'value' not an object"),
        (b'{"key":{"id":1},"meta":{"ts":null,"action":"D"}}', "'meta.ts' a string"),
        (b'{"key":[],"meta":{"ts":"t","action":"X"}}', "'key' must be an object"),
        (b"not json at all", "malformed DAP record"),
    ],
)
def test_malformed_lines_name_object_and_line_number(line: bytes, reason: str) -> None:
    with pytest.raises(MalformedDataError) as info:
        encode([SNAPSHOT_LINE, SNAPSHOT_LINE, line])
    message = str(info.value)
    assert message.startswith("canvas.accounts: object O1, line 3: malformed DAP record: ")
    assert reason in message


def test_chunks_split_on_record_boundaries() -> None:
    encoder = RecordEncoder("s", version=None, where="w")
    block = (SNAPSHOT_LINE + b"\n") * 500
    chunks = list(encode_object(encoder, [block] * 10))
    assert sum(count for _, count in chunks) == 5000
    assert len(chunks) > 1 and all(len(chunk) >= CHUNK_BYTES for chunk, _ in chunks[:-1])
    assert all(chunk.endswith(b"\n") and chunk.count(b"\n") == n for chunk, n in chunks)


def _projected(lines: list[bytes], dropped: frozenset[str]) -> list[dict]:
    encoder = RecordEncoder("s", version=None, where="w", dropped=dropped)
    out = bytearray()
    count = encoder.encode_block(b"".join(line + b"\n" for line in lines), out)
    messages = [json.loads(line) for line in bytes(out).splitlines()]
    assert count == len(messages)
    return [m["record"] for m in messages]


def test_deselected_members_are_removed_and_the_rest_is_unchanged() -> None:
    lines = [
        SNAPSHOT_LINE,
        UPDATE_LINE,
        DELETE_LINE,
        b'{"key":{"id":4},"value":null,"meta":{"ts":"2024-01-01T00:00:00Z"}}',
        b'{"key":{"id":5},"value":{ "name" : 1 , "n": {"name": 2}},"meta":{"ts":"2024-01-01Z"}}',
    ]
    full = _projected(lines, frozenset())
    dropped = _projected(lines, frozenset({"name", "absent"}))
    for before, after in zip(full, dropped, strict=True):
        assert after == {k: v for k, v in before.items() if k != "name"}
    assert dropped[4]["n"] == {"name": 2}  # only the top-level member goes
    assert _projected(lines[:1], frozenset({"name", "n"})) == [
        {"id": 1, "meta": {"action": "U", "ts": "2024-01-01T00:00:00Z"}, "_sdc_deleted_at": None}
    ]


def test_malformed_value_is_reported_with_its_line_when_projecting() -> None:
    encoder = RecordEncoder("s", version=None, where="canvas.a: object O1", dropped=frozenset("x"))
    bad = b'{"key":{"id":1},"value":[1],"meta":{"ts":"2024-01-01Z"}}'
    with pytest.raises(MalformedDataError, match=r"canvas.a: object O1, line 2: malformed"):
        encoder.encode_block(SNAPSHOT_LINE + b"\n" + bad + b"\n", bytearray())


def _dap_line(i: int, value: object, action: str = "U") -> bytes:
    line = {"key": {"id": i}, "meta": {"ts": "2024-01-01T00:00:00Z", "action": action}}
    if value is not _ABSENT:
        line["value"] = value
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode()


_ABSENT = object()


def _reference(record: dict, dropped: frozenset[str], hashed: dict[str, HashRule]) -> dict:
    """What decoding the record and applying the map in Python gives (the SDK's semantics)."""
    out = {k: v for k, v in record.items() if k not in dropped}
    for name, rule in hashed.items():
        value = out.get(name)
        if value is None and not rule.null_ok:
            raise TypeError("can only concatenate str (not 'NoneType') to str")
        if value is not None:
            text = rule.before + str(value).encode() + rule.after
            out[name] = rule.digest(text).hexdigest()
        elif name in out or record.get("meta", {}).get("action") == "U":
            out[name] = None
    return out


@pytest.mark.parametrize("seed", range(60))
def test_member_rewriting_equals_decoding_the_rows(seed: int) -> None:
    """Random rows, including everything that must send a row down the exact path: the name in
    nested objects, object/array values, strings with quotes, backslashes, braces, escaped
    names, numbers to hash, duplicated members, whitespace around ',' and ':'."""
    import random

    rng = random.Random(seed)
    scalars = [None, 0, -12, 3.5, 1e21, -2.5e-7, True, False, "", "plain", 'q"uo\\"te', "name",
               '"name"', "Doe, Jane", ' "name" : ',
               "b\\\\", '{"name":1}', ',"name":"x"}', "ünï ☃", "\\u0000", "a/b"]  # fmt: skip
    names = ["name", "grade", "x"]
    lines = []
    for i in range(80):
        value: dict = {}
        for member in rng.sample(["a", *names, "b", "c"], rng.randint(0, 6)):
            kind = rng.random() if seed % 2 else 1.0  # even seeds: scalars only (fast path)
            if kind < 0.08:
                value[member] = {"name": rng.choice(scalars)}  # nested member with the name
            elif kind < 0.12:
                value[member] = [rng.choice(scalars)]
            else:
                value[member] = rng.choice(scalars)
        choice = rng.random()
        line = _dap_line(i, _ABSENT if choice < 0.05 else None if choice < 0.1 else value,
                         "D" if rng.random() < 0.1 else "U")  # fmt: skip
        if seed % 3 == 0 and rng.random() < 0.1:
            line = line.replace(b'"name":', b'"n\\u0061me":')  # escaped: found only by decoding
        if seed % 5 == 0 and rng.random() < 0.1 and b'"x":' in line:
            line = line.replace(b'"value":{', b'"value":{"x":"dup",')  # duplicated member
        if seed % 7 == 0 and rng.random() < 0.2:
            line = line.replace(b',"', b', "').replace(b'":', b'" :')  # JSON whitespace
        lines.append(line)
    picked = rng.sample(names, rng.randint(1, 3))
    dropped = frozenset(picked[: rng.randint(0, len(picked))])
    salt = HashRule(hashlib.sha256, b"", b"pepper", null_ok=seed % 4 != 0)
    hashed = {n: salt if seed % 2 else HashRule(hashlib.md5) for n in picked if n not in dropped}

    def map_line(line: bytes) -> bytes:  # the SDK's map, in miniature
        message = json.loads(line)
        message["record"] = _reference(message["record"], frozenset(), hashed)
        return json.dumps(message).encode() + b"\n"

    encoder = RecordEncoder("s", version=None, where="w", dropped=dropped, hashed=hashed,
                            map_line=map_line)  # fmt: skip
    full = _projected(lines, frozenset())
    try:
        expected = [_reference(r, dropped, hashed) for r in full]
    except TypeError:
        with pytest.raises(TypeError):
            encoder.encode_block(b"".join(line + b"\n" for line in lines), bytearray())
        return
    out = bytearray()
    count = encoder.encode_block(b"".join(line + b"\n" for line in lines), out)
    got = [json.loads(line)["record"] for line in bytes(out).splitlines()]
    assert count == len(got)
    # Absent and null are the same row for a target; compare with absent members as null.
    assert [{**dict.fromkeys(hashed), **g} for g in got] == [
        {**dict.fromkeys(hashed), **e} for e in expected
    ]


def test_clean_rows_are_rewritten_as_bytes_not_decoded() -> None:
    lines = [_dap_line(i, {"a": i, "name": f"n{i}", "grade": "B+", "b": "x"}) for i in range(5)]

    def map_line(line: bytes) -> bytes:
        raise AssertionError("a clean row took the exact path")

    rule = HashRule(hashlib.sha256, b"", b"salt")
    encoder = RecordEncoder("s", version=None, where="w", dropped=frozenset({"name"}),
                            hashed={"grade": rule}, map_line=map_line)  # fmt: skip
    out = bytearray()
    assert encoder.encode_block(b"".join(line + b"\n" for line in lines), out) == 5
    record = json.loads(bytes(out).splitlines()[2])["record"]
    assert record == {"id": 2, "a": 2, "grade": hashlib.sha256(b"B+salt").hexdigest(), "b": "x",
                      "meta": {"action": "U", "ts": "2024-01-01T00:00:00Z"},
                      "_sdc_deleted_at": None}  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        b'{"a":1, "name":"SECRET"}',
        b'{"a":1,"name" :"SECRET"}',
        b'{"a":1,\t"name":"SECRET"}',
        b'{"a":1,"name"\r:"SECRET"}',
        b'{"a":1 ,  "name"  :  "SECRET" }',
        b'{ "a" : "Doe, Jane" , "name" : "SECRET" }',
    ],
)
def test_whitespace_between_members_never_hides_a_dropped_or_hashed_member(value: bytes) -> None:
    """JSON allows whitespace around ',' and ':'; a member spelled with it is still the member,
    and its clear value must not reach the output."""
    line = b'{"key":{"id":1},"value":' + value + b',"meta":{"ts":"2024-01-01T00:00:00Z"}}'

    def map_line(line: bytes) -> bytes:  # the SDK's map, in miniature
        message = json.loads(line)
        message["record"] = _reference(message["record"], frozenset(), hashed)
        return json.dumps(message).encode() + b"\n"

    hashed = {"name": HashRule(hashlib.md5)}
    for dropped, rules in ((frozenset({"name"}), {}), (frozenset(), hashed)):
        encoder = RecordEncoder("s", version=None, where="w", dropped=dropped, hashed=rules,
                                map_line=map_line)  # fmt: skip
        out = bytearray()
        assert encoder.encode_block(line + b"\n", out) == 1
        assert b"SECRET" not in out
        record = json.loads(bytes(out))["record"]
        expected_name = hashlib.md5(b"SECRET").hexdigest() if rules else None
        assert record.get("name") == expected_name and record["a"] in (1, "Doe, Jane")


def test_a_comma_and_space_inside_strings_keeps_rows_on_the_byte_path() -> None:
    lines = [_dap_line(1, {"a": "Doe, Jane", "note": "x :y", "name": "n1"})]

    def map_line(line: bytes) -> bytes:
        raise AssertionError("a compact row took the exact path")

    encoder = RecordEncoder("s", version=None, where="w", dropped=frozenset({"note"}),
                            hashed={"name": HashRule(hashlib.md5)}, map_line=map_line)  # fmt: skip
    out = bytearray()
    assert encoder.encode_block(lines[0] + b"\n", out) == 1
    assert json.loads(bytes(out))["record"]["name"] == hashlib.md5(b"n1").hexdigest()
