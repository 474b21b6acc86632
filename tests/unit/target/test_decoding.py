"""RecordDecoder edge cases: hostile column names, bytes that are not UTF-8, escaped NULs."""

from __future__ import annotations

from typing import Any

import pytest

from target_dap_sql.decoding import RecordDecoder, replace_nul_escapes
from target_dap_sql.errors import InputError
from target_dap_sql.layout import Column, LayoutOptions, TableLayout, build_layout

NAMES = ['dq"uote', "back\\slash", "_dap_column_1"]


def _decoder(properties: dict[str, Any], required: list[str] | None = None) -> RecordDecoder:
    layout = build_layout("things", {"properties": properties, "required": required or []},
                          ["id"], LayoutOptions())

    def field_type(column: Column, _: TableLayout) -> Any:
        return {"integer": int, "string": str}[properties[column.name]["type"]]

    return RecordDecoder(layout, field_type, [])


@pytest.mark.parametrize(("line", "expected"), [
    (b'{"a":"x\\u0000y"}', b'{"a":"x\\ufffdy"}'),
    (b'{"a":"\\\\u0000"}', b'{"a":"\\\\u0000"}'),  # an escaped backslash, then text "u0000"
    (b'{"a":"\\\\\\u0000"}', b'{"a":"\\\\\\ufffd"}'),  # an escaped backslash, then a NUL
    ('{"a":"\\u0000\\u0000"}', '{"a":"\\ufffd\\ufffd"}'),
])
def test_replace_nul_escapes_replaces_only_real_nuls(line: Any, expected: Any) -> None:
    assert replace_nul_escapes(line) == expected


def test_column_names_with_quote_and_backslash_decode_and_name_themselves_in_errors() -> None:
    props = {"id": {"type": "integer"}, **{n: {"type": "integer"} for n in NAMES}}
    decoder = _decoder(props)
    raw = b'{"id": 7, "dq\\"uote": 1, "back\\\\slash": 2, "_dap_column_1": 3}'
    assert decoder.decode(raw, "things") == (7, (7, 1, 2, 3), False)
    with pytest.raises(InputError) as raised:
        decoder.decode(b'{"id": 7, "back\\\\slash": "x"}', "things")
    assert str(raised.value) == ("stream 'things': invalid value for 'back\\slash': expected an "
                                 "integer within 64 bits, got \"x\"")


def test_bytes_that_are_not_utf8_are_one_input_error() -> None:
    decoder = _decoder({"id": {"type": "integer"}, "name": {"type": "string"}})
    with pytest.raises(InputError) as raised:
        decoder.decode('{"id": 1, "name": "caf\xe9"}'.encode("latin-1"), "things")
    assert str(raised.value) == ("stream 'things': record is not valid UTF-8 (byte 0xe9 at "
                                 "byte 23 of the record)")


def test_find_nul_names_the_column_and_key_and_ignores_escaped_backslashes() -> None:
    decoder = _decoder({"id": {"type": "integer"}, "name": {"type": "string"}})
    assert decoder.find_nul(b'{"id": 1, "name": "\\\\u0000"}', "things") is None
    error = decoder.find_nul(b'{"id": 1, "name": "a\\u0000"}', "things")
    assert error is not None
    assert str(error).startswith("stream 'things': column 'name' (key 1) contains a NUL")
