"""The physical-limit probes: they run the snapshot job themselves and stream its objects."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
import pytest

from bench.probes import (
    CHUNK,
    ProbeError,
    column_type,
    copy,
    copy_table_ddl,
    count_parsed_lines,
    gunzip_pieces,
    main,
    parse,
    split_header,
)

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
    "properties": {
        "meta": {"type": "object", "properties": {"ts": {"type": "string"}}},
        "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                "required": ["id"]},
        "value": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 10},
            "state": {"type": "string", "enum": ["active", "deleted"]},
            "score": {"type": "number", "format": "float64"},
            "at": {"type": "string", "format": "date-time"},
            "extra": {"type": "object", "properties": {"a": {"type": "integer"}},
                      "additionalProperties": False},
        }},
    },
}


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_column_types_follow_the_official_mapping_enums_as_text() -> None:
    value = SCHEMA["properties"]["value"]["properties"]
    assert [column_type(p) for p in value.values()] == [
        "varchar(10)", "text", "double precision", "timestamp", "jsonb",
    ]
    assert column_type({"type": "number", "multipleOf": 0.01, "exclusiveMinimum": -1e6,
                        "exclusiveMaximum": 1e6}) == "decimal(8, 2)"
    assert copy_table_ddl("t", SCHEMA) == (
        'CREATE TABLE "bench_copy"."t" ("meta_ts" timestamp, "id" bigint, "name" varchar(10), '
        '"state" text, "score" double precision, "at" timestamp, "extra" jsonb, '
        'PRIMARY KEY ("id"))'
    )


def test_gunzip_pieces_are_bounded_lossless_and_span_members() -> None:
    # highly compressible: one downloaded chunk inflates far beyond CHUNK
    first = b"".join(b'{"id": %d, "pad": "%s"}\n' % (i, b"x" * (i % 90)) for i in range(200_000))
    second = b'{"id": "last member"}\n'
    served = gzip.compress(first, 1) + gzip.compress(second)
    pieces = list(gunzip_pieces(pieces_of(served, 100_003)))  # members meet inside a piece
    assert b"".join(pieces) == first + second
    assert max(len(p) for p in pieces) == CHUNK


def test_gunzip_refuses_truncated_and_corrupt_objects() -> None:
    served = gzip.compress(b"a\tb\n" * 1000)
    with pytest.raises(ProbeError, match=r"^object 7: gzip data ends inside a member"):
        list(gunzip_pieces([served[: len(served) // 2]], "object 7"))
    corrupt = served[:10] + bytes(b ^ 0xFF for b in served[10:30]) + served[30:]
    with pytest.raises(ProbeError, match=r"^object 7: corrupt gzip data"):
        list(gunzip_pieces([corrupt], "object 7"))


def test_split_header_across_pieces_keeps_the_rest_byte_exact() -> None:
    header, rest = split_header(iter([b"meta.ts\tke", b"y.id\tvalue.n", b"ame\n1\t", b"x\\ty\n"]))
    assert header == b"meta.ts\tkey.id\tvalue.name"
    assert b"".join(rest) == b"1\tx\\ty\n"
    header, rest = split_header(iter([b"only.header"]))
    assert (header, list(rest)) == (b"only.header", [])


def test_count_parsed_lines_parses_every_line_across_pieces() -> None:
    records = [{"key": {"id": i}, "value": {"name": "x\ny" * i}} for i in range(50)]
    data = b"\n".join(orjson.dumps(r) for r in records) + b"\n\n"  # a blank line is no record
    parsed: list[Any] = []

    def loads(line: bytes) -> Any:
        parsed.append(orjson.loads(line))

    assert count_parsed_lines(pieces_of(data[:-2], 37), loads) == 50  # no final newline
    assert parsed == records
    assert count_parsed_lines(pieces_of(data, 64), orjson.loads) == 50
    with pytest.raises(orjson.JSONDecodeError):
        count_parsed_lines([b'{"key": {"id": 1}}\n{"ke'], orjson.loads)


Factory = Callable[..., Any]


@pytest.fixture
def submissions(emulator_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> Any:
    # 3 objects, so the probes must stream more than one
    emulator = emulator_factory(tables="canvas.submissions", rows=1_200, rows_per_object=500)
    monkeypatch.setenv("DAP_CLIENT_ID", emulator.client_id)
    monkeypatch.setenv("DAP_CLIENT_SECRET", emulator.client_secret)
    return emulator


def test_parse_runs_the_job_and_streams_every_object(submissions: Any) -> None:
    before = time.monotonic()
    marks = parse(submissions.base_url, "canvas", "submissions")
    assert (marks.rows, marks.objects) == (1_200, 3)
    assert before < marks.job_done <= marks.first_data <= marks.end <= time.monotonic()
    assert json.loads(marks.as_json())["rows"] == 1_200


def test_probe_errors_are_one_line_naming_the_table(submissions: Any,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DAP_CLIENT_SECRET", "wrong")
    with pytest.raises(SystemExit) as raised:
        main(["parse", "--base-url", submissions.base_url, "--table", "submissions"])
    message = str(raised.value.code)
    assert message.startswith("bench.probes: parse of canvas.submissions: AuthenticationError: ")
    assert "\n" not in message and "wrong" not in message
    assert capsys.readouterr().out == ""  # no result line: the harness sees no count


@pytest.mark.postgres
def test_copy_loads_the_served_tsv_objects_as_is(submissions: Any, pg_url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    main(["copy", "--base-url", submissions.base_url, "--table", "submissions",
          "--db-url", pg_url])
    printed = json.loads(capsys.readouterr().out)
    assert (printed["rows"], printed["objects"]) == (1_200, 3)
    assert printed["job_done"] <= printed["first_data"] <= printed["end"]

    truth = {r["key"]["id"]: r["value"] for r in submissions.truth("canvas", "submissions")}
    with psycopg.connect(pg_url) as conn:
        got = conn.execute("SELECT id, workflow_state, score::float8, body, url "
                           "FROM bench_copy.submissions").fetchall()
    assert {row[0]: row[1:] for row in got} == {
        key: (v["workflow_state"], v["score"], v["body"], v["url"]) for key, v in truth.items()
    }


@pytest.mark.postgres
def test_copy_into_a_table_that_exists_fails_cleanly(submissions: Any, pg_url: str) -> None:
    copy(submissions.base_url, "canvas", "submissions", pg_url)
    with pytest.raises(ProbeError, match=r'^PostgreSQL: relation "submissions" already exists'):
        copy(submissions.base_url, "canvas", "submissions", pg_url)
