"""PostgreSQL numeric extremes end to end, with and without record workers: a value with more
than 16383 digits after the point is refused with an error naming its line (the codec's scale
check, fast path included), and the extremes binary COPY can carry round-trip exactly."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from target_dap_sql.target import TargetDapSQL
from tests.unit.target.dap_messages import compact

LIMIT = 0x3FFF
STREAM = "numbers"
SCHEMA = {"type": "SCHEMA", "stream": STREAM, "key_properties": ["id"], "schema": {
    "type": "object", "properties": {"id": {"type": "integer"}, "n": {"type": ["number", "null"]}}}}

#: Extremes the binary COPY format carries (JSON numbers, as written on the line).
VALID = [
    "0." + "0" * (LIMIT - 1) + "1",               # exactly 16383 digits after the point
    "-0." + "9" * LIMIT,                          # 16383 digits, all significant
    "1E-16383", "-1e-16383", "0E-16383", "-0.0", "0",
    "9" * 76 + "E-" + str(LIMIT),                 # 76 digits: the fast path's inline size
    "9" * 77 + "E-" + str(LIMIT),                 # 77 digits: the full check
    "1" * 300 + "." + "1" * 8,                    # within a double's range
    "1.7976931348623157E+308", "-2.2250738585072014E-308", "5E-324",
    "123456789012345678901234567890.123456789012345678901234567890",
]
#: More than 16383 digits after the point.
TOO_FINE = [
    "0." + "0" * LIMIT + "1", "1E-16384", "-1.5E-16383", "0E-16384", "-0E-20000",
    "9" * 76 + "E-" + str(LIMIT + 1), "9" * 77 + "E-" + str(LIMIT + 1),
    "0." + "1" * (LIMIT + 1), "1E-100000",
]


def _line(key: int, number: str) -> bytes:
    return (b'{"type":"RECORD","stream":"' + STREAM.encode() + b'","record":{"id":'
            + str(key).encode() + b',"n":' + number.encode() + b"}}")


def _messages(numbers: list[str]) -> list[Any]:
    """600 records: filler, with `numbers` from the 400th on (in runs the workers take)."""
    lines: list[Any] = [SCHEMA]
    for key in range(600):
        extreme = key - 400
        lines.append(_line(key, numbers[extreme] if 0 <= extreme < len(numbers) else "1.5"))
        if key % 150 == 149:
            lines.append({"type": "STATE", "value": {"n": key}})
    return lines


def _run(server: Any, count: int, lines: list[Any]) -> tuple[str, list[Any], str | None]:
    url = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    config = {"sqlalchemy_url": url, "workers": count, "batch_size_rows": 100}
    out, error = io.StringIO(), None
    try:
        with contextlib.redirect_stdout(out):
            TargetDapSQL(config=config).listen(  # type: ignore[arg-type]
                file_input=(m if isinstance(m, bytes) else compact(m) for m in lines))
    except Exception as exc:  # noqa: BLE001 - compared below
        error = f"{type(exc).__name__}: {exc}"
    return url, [json.loads(line) for line in out.getvalue().splitlines()], error


@pytest.mark.postgres
@pytest.mark.parametrize("count", [1, 2])
def test_extreme_numerics_round_trip_exactly(postgres_server: Any, small_slices: list[int],
                                             count: int) -> None:
    url, states, error = _run(postgres_server, count, _messages(VALID))
    assert error is None
    assert (sum(small_slices) > 400) == (count > 1)
    assert states[-1] == {"n": 599}
    with psycopg.connect(url) as conn:
        stored = dict(conn.execute(f'SELECT id, n::text FROM "{STREAM}" WHERE id >= 400 '
                                   f"AND id < {400 + len(VALID)}").fetchall())
    for i, text in enumerate(VALID):
        sent, got = Decimal(text), Decimal(stored[400 + i])
        assert got == sent, text[:40]
        if sent.as_tuple().exponent < 0:  # type: ignore[operator]
            assert got.as_tuple().exponent == sent.as_tuple().exponent, text[:40]


@pytest.mark.postgres
@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("number", TOO_FINE, ids=lambda t: t if len(t) < 30 else f"{t[:10]}…")
def test_too_many_digits_after_the_point_name_their_line(
        postgres_server: Any, small_slices: list[int], count: int, number: str) -> None:
    lines = _messages(["1.25"] * 101 + [number])  # record 501: input line 506
    url, states, error = _run(postgres_server, count, lines)
    assert error is not None and error.startswith(
        f"InputError: line 506, stream '{STREAM}': invalid value for 'n': more than {LIMIT} "
        "digits after the decimal point"), error
    assert (sum(small_slices) > 400) == (count > 1)
    assert states == []  # STATE lines come at commit points: the input's end, not reached
    with psycopg.connect(url) as conn:
        (top,) = conn.execute(f'SELECT max(id) FROM "{STREAM}"').fetchone()  # type: ignore[misc]
    assert top is None or top < 501
