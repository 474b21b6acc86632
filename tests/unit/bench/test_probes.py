"""The physical-limit probes: gunzip+parse counts, and raw COPY loads DAP TSV unchanged."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import psycopg
import pytest

from bench.probes import CHUNK, column_type, copy, copy_table_ddl, gunzip_chunks, parse

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


def test_parse_counts_every_record_across_objects(tmp_path: Path) -> None:
    for part, ids in (("part-00000.jsonl.gz", range(3)), ("part-00001.jsonl.gz", range(3, 5))):
        lines = [json.dumps({"key": {"id": i}, "value": {"name": "x\ny"}}) for i in ids]
        (tmp_path / part).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    assert parse(tmp_path) == 5


def test_gunzip_pieces_are_bounded_and_lossless(tmp_path: Path) -> None:
    # highly compressible: one 64 KiB read inflates far beyond CHUNK
    data = b"".join(b'{"id": %d, "pad": "%s"}\n' % (i, b"x" * (i % 90)) for i in range(200_000))
    path = tmp_path / "part-00000.jsonl.gz"
    path.write_bytes(gzip.compress(data, 1))
    pieces = list(gunzip_chunks(path))
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) == CHUNK


def test_parse_rejects_a_broken_line(tmp_path: Path) -> None:
    (tmp_path / "part-00000.jsonl.gz").write_bytes(gzip.compress(b'{"key": {"id": 1}}\n{"ke'))
    with pytest.raises(ValueError):
        parse(tmp_path)


@pytest.mark.postgres
def test_copy_loads_dap_tsv_as_is(tmp_path: Path, pg_url: str) -> None:
    data = tmp_path / "tsv"
    data.mkdir()
    header = "meta.ts\tkey.id\tvalue.name\tvalue.state\tvalue.score\tvalue.at\tvalue.extra\n"
    rows = [
        "2024-01-01T00:00:00Z\t1\tmulti\\nline\tactive\t1.5\t2024-02-03T04:05:06.5Z\t{\"a\":1}\n",
        "2024-01-01T00:00:00Z\t2\t\\N\tdeleted\t\\N\t\\N\t\\N\n",
    ]
    (data / "part-00000.tsv.gz").write_bytes(gzip.compress((header + rows[0]).encode()))
    (data / "part-00001.tsv.gz").write_bytes(gzip.compress((header + rows[1]).encode()))
    schema_file = tmp_path / "sample.schema.json"
    schema_file.write_text(json.dumps({"schema": SCHEMA, "version": 1}))

    assert copy(data, schema_file, pg_url) == 2

    with psycopg.connect(pg_url) as conn:
        got = conn.execute(
            'SELECT id, name, state, score, at::text, extra::text FROM bench_copy.sample '
            "ORDER BY id").fetchall()
    assert got == [(1, "multi\nline", "active", 1.5, "2024-02-03 04:05:06.5", '{"a": 1}'),
                   (2, None, "deleted", None, None, None)]
