"""Incremental gunzip (with each available inflater) and line re-cutting, byte for byte."""

from __future__ import annotations

import gzip
import random

import pytest

from tap_dap.client import DownloadError, TruncatedObjectError
from tap_dap.client.streams import INFLATERS, gunzip_chunks, line_blocks, split_lines


def _inflater_params() -> list:
    params = [pytest.param(INFLATERS.get(name), id=name) for name in ("isal", "zlib")]
    if "isal" not in INFLATERS:
        params[0] = pytest.param(
            None, id="isal", marks=pytest.mark.skip(reason="python-isal is not installed")
        )
    return params


@pytest.fixture(params=_inflater_params())
def inflater(request):
    return request.param


def _payload(lines: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"\xc3\xa9t\xc3\xa9", b"x" * 40]
    return b"".join(
        b'{"key":{"id":%d},"value":{"w":"%s","n":%d}}\n'
        % (i, b" ".join(rng.choices(words, k=rng.randint(1, 30))), rng.randint(0, 10**9))
        for i in range(lines)
    )


def _cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _gunzip(chunks, inflater, **kw) -> bytes:
    return b"".join(gunzip_chunks(chunks, label="object O", object_id="O", inflater=inflater, **kw))


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 10**9])
def test_concatenated_members_in_any_chunking(inflater, chunk_size: int) -> None:
    parts = [_payload(300, seed) for seed in range(3)]
    body = b"".join(gzip.compress(part, compresslevel=n) for n, part in enumerate(parts, 1))
    assert _gunzip(_cut(body, chunk_size), inflater) == b"".join(parts)


def test_inflaters_agree_on_a_large_object() -> None:
    data = _payload(20_000, 1)
    body = gzip.compress(data)
    outputs = {name: _gunzip(_cut(body, 128 * 1024), module) for name, module in INFLATERS.items()}
    assert all(output == data for output in outputs.values())


def test_pieces_stay_bounded_however_far_data_expands(inflater) -> None:
    data = b"0" * (40 * 1024 * 1024)
    pieces = list(gunzip_chunks([gzip.compress(data, 9)], label="t", inflater=inflater))
    assert b"".join(pieces) == data
    assert max(len(piece) for piece in pieces) <= 1024 * 1024


@pytest.mark.parametrize("chunk_size", [1, 3, 10**9])
def test_zero_padding_after_the_last_member_is_ignored(inflater, chunk_size: int) -> None:
    body = gzip.compress(b"a\n") + gzip.compress(b"b\n") + b"\x00" * 5000
    assert _gunzip(_cut(body, chunk_size), inflater) == b"a\nb\n"


@pytest.mark.parametrize("tail", [b"garbage!", b"\x00" * 10 + b"junk", b"\x1f\x8b\xff" * 9])
def test_data_after_a_member_that_is_no_gzip_is_corrupt(inflater, tail: bytes) -> None:
    with pytest.raises(DownloadError, match=r"^object O: corrupt gzip data \(") as info:
        _gunzip([gzip.compress(b"a\n") + tail], inflater)
    assert not isinstance(info.value, TruncatedObjectError)
    assert info.value.object_id == "O"


def test_a_damaged_member_is_corrupt(inflater) -> None:
    body = bytearray(gzip.compress(_payload(200, 2)))
    body[40:60] = b"\xff" * 20
    with pytest.raises(DownloadError, match=r"^object O: corrupt gzip data") as info:
        _gunzip(_cut(bytes(body), 1000), inflater)
    assert not isinstance(info.value, TruncatedObjectError)


@pytest.mark.parametrize("keep", [3, 12, 500, -9, -1])
def test_a_stream_ending_inside_a_member_is_truncated(inflater, keep: int) -> None:
    first = gzip.compress(_payload(50, 3))
    second = gzip.compress(_payload(50, 4))
    body = first + second[:keep]  # inside the header, just after it, mid-data, in the trailer
    with pytest.raises(TruncatedObjectError) as info:
        _gunzip(_cut(body, 64), inflater)
    assert str(info.value) == (
        "object O: gzip data is truncated (the stream ended inside a compressed member)"
    )
    assert info.value.object_id == "O"


def test_a_stream_without_gzip_magic_passes_through_untouched(inflater) -> None:
    assert list(gunzip_chunks([b"a", b"\tb\n", b"c"], label="t", inflater=inflater)) == [
        b"a\tb\n", b"c"]  # fmt: skip
    assert _gunzip([b"\x1f", b"\x8b" + gzip.compress(b"x")[2:]], inflater) == b"x"


@pytest.mark.parametrize("size", [1, 5, 64, 10**6])
def test_line_blocks_hold_whole_lines_and_every_byte(size: int) -> None:
    stream = b"ab\r\n\nc" + b"d" * 300 + b"\n\n  \nlast-without-ending"
    blocks = list(line_blocks([b""] + _cut(stream, size) + [b""]))
    assert b"".join(blocks) == stream + b"\n"
    assert all(block.endswith(b"\n") for block in blocks)


def test_line_blocks_pass_aligned_pieces_through_and_end_cleanly() -> None:
    pieces = [b"a\nb\n", b"c\n"]
    assert list(line_blocks(pieces)) == pieces
    assert list(line_blocks([b"", b""])) == []
    assert list(line_blocks([b"x" * 10, b"y" * 10])) == [b"x" * 10 + b"y" * 10 + b"\n"]


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_split_lines_drops_endings_and_empty_lines(size: int) -> None:
    stream = b"abc\r\nde\r\r\n\n\r\n  \nf\rg\nlast"
    assert list(split_lines(_cut(stream, size))) == [b"abc", b"de\r", b"  ", b"f\rg", b"last"]


def test_an_empty_object_is_truncated_not_empty(inflater) -> None:
    """0 bytes is never a gzip stream: taking it as "no rows" would move a bookmark past rows."""
    for chunks in ([], [b""], [b"", b""]):
        with pytest.raises(TruncatedObjectError) as info:
            _gunzip(chunks, inflater)
        assert str(info.value) == (
            "object O: the object is empty (0 bytes; a DAP object is a gzip stream, never empty)")
    assert _gunzip([gzip.compress(b"")], inflater) == b""  # an empty gzip member is fine
