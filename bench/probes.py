"""The two physical limits the pipeline is compared with, each run as its own measured process.

    python -m bench.probes copy  --data DIR --schema FILE --db-url URL
        raw PostgreSQL ``COPY FROM`` of the DAP TSV objects in DIR (gunzipped in-process, header
        line dropped, bytes passed through untouched): what the database alone costs.
    python -m bench.probes parse --data DIR
        gunzip + orjson parse of every line of the DAP JSONL objects in DIR: the ceiling for a tap
        that must at least decode what it emits.

Each prints the number of rows it handled as its only stdout line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
READ = 1 << 16
GZIP_WBITS = 16 + zlib.MAX_WBITS
COPY_SCHEMA = "bench_copy"


def gunzip_chunks(path: Path) -> Iterator[bytes]:
    """Decompressed bytes in pieces of at most CHUNK: synthetic rows compress ~20:1, so an
    unbounded ``decompress(block)`` would hold tens of MB per block."""
    decompressor = zlib.decompressobj(GZIP_WBITS)
    with path.open("rb") as handle:
        while block := handle.read(READ):
            while block:
                if data := decompressor.decompress(block, CHUNK):
                    yield data
                block = decompressor.unconsumed_tail
    if tail := decompressor.flush():
        yield tail


def gunzip_lines(path: Path) -> Iterator[bytes]:
    pending = b""
    for chunk in gunzip_chunks(path):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def object_files(directory: Path, suffix: str) -> list[Path]:
    files = sorted(directory.glob(f"*{suffix}"))
    if not files:
        raise SystemExit(f"bench.probes: no *{suffix} files in {directory}")
    return files


def parse(directory: Path) -> int:
    import orjson

    rows = 0
    loads = orjson.loads
    for path in object_files(directory, ".jsonl.gz"):
        for line in gunzip_lines(path):
            if line:
                loads(line)
                rows += 1
    return rows


def column_type(prop: dict[str, Any]) -> str:
    """Roughly the official replicator's PostgreSQL type; enums become text.

    The proxy only needs a table of the same physical width, not the exact layout: JSON arrays
    and objects land in jsonb because the TSV carries them as JSON text.
    """
    kind, fmt = prop.get("type"), prop.get("format")
    if kind == "integer":
        return {"int32": "integer", "int16": "smallint"}.get(fmt, "bigint")
    if kind == "number":
        if "multipleOf" in prop and "exclusiveMaximum" in prop:
            scale = -round(math.log10(prop["multipleOf"]))
            return f"decimal({round(math.log10(prop['exclusiveMaximum'])) + scale}, {scale})"
        return "real" if fmt == "float32" else "double precision"
    if kind == "boolean":
        return "boolean"
    if kind in ("object", "array"):
        return "jsonb"
    formats = {"date-time": "timestamp", "date": "date", "time": "time", "uuid": "uuid",
               "ipv4": "inet", "ipv6": "inet"}
    if fmt in formats:
        return formats[fmt]
    if "maxLength" in prop and "enum" not in prop:
        return f"varchar({prop['maxLength']})"
    return "text"


def copy_table_ddl(table: str, schema: dict[str, Any]) -> str:
    props = schema["properties"]
    columns = ['"meta_ts" timestamp']
    key_names = list(props["key"]["properties"])
    for part in ("key", "value"):
        for name, prop in props[part]["properties"].items():
            columns.append(f'"{name}" {column_type(prop)}')
    quoted_keys = ", ".join(f'"{k}"' for k in key_names)
    columns.append(f"PRIMARY KEY ({quoted_keys})")
    return f'CREATE TABLE "{COPY_SCHEMA}"."{table}" ({", ".join(columns)})'


def copy(directory: Path, schema_file: Path, db_url: str) -> int:
    import psycopg

    versioned = json.loads(schema_file.read_text())
    table = schema_file.name.split(".")[0]
    rows = 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{COPY_SCHEMA}"')
        conn.execute(copy_table_ddl(table, versioned["schema"]))
        for path in object_files(directory, ".tsv.gz"):
            chunks = gunzip_chunks(path)
            first = next(chunks, b"")
            header, _, rest = first.partition(b"\n")
            labels = header.decode().split("\t")
            names = ["meta_ts" if lab == "meta.ts" else lab.split(".", 1)[1] for lab in labels]
            column_list = ", ".join(f'"{n}"' for n in names)
            with conn.cursor() as cur:
                with cur.copy(f'COPY "{COPY_SCHEMA}"."{table}" ({column_list}) FROM STDIN') as cp:
                    cp.write(rest)
                    for chunk in chunks:
                        cp.write(chunk)
                rows += cur.rowcount
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    parse_cmd = commands.add_parser("parse")
    parse_cmd.add_argument("--data", type=Path, required=True)
    copy_cmd = commands.add_parser("copy")
    copy_cmd.add_argument("--data", type=Path, required=True)
    copy_cmd.add_argument("--schema", type=Path, required=True)
    copy_cmd.add_argument("--db-url", required=True)
    args = parser.parse_args(argv)
    if args.command == "parse":
        rows = parse(args.data)
    else:
        rows = copy(args.data, args.schema, args.db_url)
    print(rows)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
