"""The PostgreSQL codec refuses decimals binary COPY cannot carry (> 16383 digits after the point)
while decoding; its fast path (size and adjusted exponent) must agree with the full check."""

from __future__ import annotations

from decimal import Decimal

import pytest

from target_dap_sql.dialects import pg_codec

LIMIT = 0x3FFF


def full_check_refuses(value: Decimal) -> bool:
    return value.is_finite() and value.as_tuple().exponent < -LIMIT  # type: ignore[operator]


def too_large(value: Decimal) -> bool:
    return value.is_finite() and bool(value) and value.adjusted() >= 131072


CASES = [
    "0", "87.5", "-12.25", "1e10", "1E+400000", "NaN", "Infinity", "-0.0",
    f"1e-{LIMIT}", f"1e-{LIMIT + 1}", "1E-100000",
    "0." + "0" * (LIMIT - 1) + "1",          # exactly the limit
    "0." + "0" * LIMIT + "1",                # one digit beyond
    "0." + "1" * LIMIT,                      # long coefficient, adjusted -1
    "0." + "1" * (LIMIT + 1),                # long coefficient beyond: adjusted alone misses it
    "1" * 76 + "e-" + str(LIMIT + 75 - 75),  # 76 inline digits near the edge
    "1" * 76 + "e-" + str(LIMIT + 1),
    "1" * 77 + "e-" + str(LIMIT - 60),
    "1" * 20000 + "." + "5",                 # huge integer part, scale 1
    f"{'9' * 50}e-{LIMIT + 30}",
    f"{'9' * 50}e-{LIMIT - 80}",
]


@pytest.mark.parametrize("text", CASES, ids=lambda t: t if len(t) < 30 else f"{t[:12]}…({len(t)})")
def test_fast_path_agrees_with_the_full_check(text: str) -> None:
    value = Decimal(text)
    if too_large(value):
        with pytest.raises(ValueError, match="^more than 131072 digits before the decimal point$"):
            pg_codec._check_scale(value)
    elif full_check_refuses(value):
        with pytest.raises(ValueError, match=f"^more than {LIMIT} digits after the decimal point$"):
            pg_codec._check_scale(value)
    else:
        assert pg_codec._check_scale(value) is value


def test_sizes_tell_digits_on_this_interpreter() -> None:
    # The fast path is only taken where an object's size grows with its digits (CPython's
    # _decimal); if that ever stops, every value takes the full check.
    assert pg_codec._SIZE_GROWS
    assert Decimal("1" * 76).__sizeof__() == pg_codec._INLINE_SIZE
    assert Decimal("1" * 77).__sizeof__() > pg_codec._INLINE_SIZE


#: Beyond the other end: the format's weight is an int16 (at most 131072 digits before the point).
LARGE = ["1E+131071", "1E+131072", "-1E+131072", "9" * 131072, "9" * 131073, "1E+400000",
         "0E+400000", "-0E+131072", "9" * 131072 + "." + "9" * LIMIT, "1.5E+131071",
         "NaN", "-Infinity"]


@pytest.mark.parametrize("text", CASES + LARGE,
                         ids=lambda t: t if len(t) < 30 else f"{t[:12]}…({len(t)})")
def test_refuses_exactly_what_binary_copy_cannot_carry(text: str) -> None:
    """The check and psycopg's binary dumper agree: a value the check lets through never fails
    later as a driver error that names no line (in a worker: an error unlike the target's)."""
    from psycopg import adapters, pq
    from psycopg._copy_base import format_row_binary
    from psycopg.adapt import Transformer

    transformer = Transformer()
    transformer.set_dumper_types([adapters.types["numeric"].oid], pq.Format.BINARY)
    value = Decimal(text)
    try:
        format_row_binary((value,), transformer, bytearray())
    except Exception:  # noqa: BLE001 - psycopg's DataError
        with pytest.raises(ValueError, match=r"^more than \d+ digits (after|before) the decimal"):
            pg_codec._check_scale(value)
    else:
        assert pg_codec._check_scale(value) is value

