"""The two physical limits the pipeline is compared with, each run as its own measured process.

    python -m bench.probes copy  --base-url URL --table T --db-url URL
        raw PostgreSQL ``COPY FROM`` of a TSV snapshot: what the database alone costs.
    python -m bench.probes parse --base-url URL --table T
        gunzip + orjson parse of every line of a JSONL snapshot: the ceiling for a tap that must
        at least decode what it emits.

Each does the remote work every other variant does, in its own fresh process: creates the
snapshot job through ``tap_dap.client`` (credentials from DAP_CLIENT_ID / DAP_CLIENT_SECRET),
waits for it, and streams each object (download → gunzip → COPY / parse) without touching the
disk. ``copy`` hands the gunzipped bytes to ``COPY … FROM STDIN`` untouched (header line
dropped): no Python per record. ``parse`` calls ``orjson.loads`` once per line.

Each prints one JSON line: ``rows``, and monotonic times ``job_done`` (the job completed),
``first_data`` (the first gunzipped bytes were in hand) and ``end`` (the last row was loaded or
parsed), so the harness can time the streaming part on its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError

if TYPE_CHECKING:
    from tap_dap.client import DAPClient, DAPSession, Format, Resource

CHUNK = 1 << 20
GZIP_WBITS = 16 + zlib.MAX_WBITS
COPY_SCHEMA = "bench_copy"
# The job is the same for every variant; the probe only learns sooner that it is done. A lower
# bound should not pay a poll interval.
POLL_INTERVAL = 0.1


class ProbeError(BenchError):
    """The probe could not do its work; the message names what and where."""


@dataclass
class Marks:
    """Monotonic times of a probe run, printed for the harness."""

    rows: int = 0
    job_done: float = 0.0
    first_data: float | None = None
    end: float = 0.0
    objects: int = 0

    def stamp_first(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            if self.first_data is None:
                self.first_data = time.monotonic()
            yield piece

    def as_json(self) -> str:
        return json.dumps({"rows": self.rows, "objects": self.objects,
                           "job_done": self.job_done, "first_data": self.first_data,
                           "end": self.end})


# ---- byte streams --------------------------------------------------------------------------


def gunzip_pieces(chunks: Iterable[bytes], label: str = "object") -> Iterator[bytes]:
    """Decompressed bytes in pieces of at most CHUNK, across concatenated gzip members.

    Bounded pieces: synthetic rows compress ~20:1, so an unbounded ``decompress(block)`` would
    hold tens of MB per downloaded MiB.
    """
    decompressor = zlib.decompressobj(GZIP_WBITS)
    member_open = False
    try:
        for block in chunks:
            while block:
                member_open = True
                if data := decompressor.decompress(block, CHUNK):
                    yield data
                if decompressor.eof:
                    block = decompressor.unused_data  # another gzip member may follow
                    decompressor = zlib.decompressobj(GZIP_WBITS)
                    member_open = False
                else:
                    block = decompressor.unconsumed_tail
        if member_open and (tail := decompressor.flush()):
            yield tail
    except zlib.error as exc:
        raise ProbeError(f"{label}: corrupt gzip data ({exc})") from None
    if member_open and not decompressor.eof:
        raise ProbeError(f"{label}: gzip data ends inside a member (truncated download)")


def split_header(pieces: Iterable[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first line (without its newline) and every byte after it, unchanged."""
    iterator = iter(pieces)
    head = b""
    for piece in iterator:
        head += piece
        if b"\n" in head:
            break
    header, _, rest = head.partition(b"\n")
    return header, itertools.chain((rest,) if rest else (), iterator)


def count_parsed_lines(pieces: Iterable[bytes], loads: Callable[[bytes], Any]) -> int:
    """Parse every non-empty line with ``loads``; returns how many there were."""
    rows = 0
    pending = b""
    for piece in pieces:
        lines = (pending + piece if pending else piece).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line:
                loads(line)
                rows += 1
    if pending:
        loads(pending)
        rows += 1
    return rows


# ---- the DAP side --------------------------------------------------------------------------


def snapshot_resources(session: DAPSession, namespace: str, table: str,
                       fmt: Format) -> list[Resource]:
    """Run a condensed snapshot job and return its objects' URLs, in the job's order."""
    from tap_dap.client import Mode, SnapshotQuery

    job = session.execute_job(namespace, table, SnapshotQuery(fmt, Mode.CONDENSED))
    urls = session.get_resources(job.objects)
    return [urls[obj.id] for obj in job.objects]


def object_pieces(session: DAPSession, resource: Resource, marks: Marks) -> Iterator[bytes]:
    label = f"object {resource.object_id}"
    with session.stream_resource(resource) as raw:
        yield from marks.stamp_first(gunzip_pieces(raw, label))


def open_session(base_url: str) -> DAPClient:
    from tap_dap.client import DAPClient

    return DAPClient(base_url, poll_interval=POLL_INTERVAL, poll_growth=1.0)


# ---- the probes ----------------------------------------------------------------------------


def parse(base_url: str, namespace: str, table: str) -> Marks:
    import orjson

    from tap_dap.client import Format

    marks = Marks()
    loads = orjson.loads
    with open_session(base_url) as session:
        resources = snapshot_resources(session, namespace, table, Format.JSONL)
        marks.job_done = time.monotonic()
        for resource in resources:
            try:
                marks.rows += count_parsed_lines(object_pieces(session, resource, marks), loads)
            except orjson.JSONDecodeError as exc:
                raise ProbeError(f"object {resource.object_id}: a line is not JSON ({exc})"
                                 ) from None
            marks.objects += 1
        marks.end = time.monotonic()
    return marks


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


def copy_column_list(header: bytes) -> str:
    """COPY's column list from a DAP TSV header (``meta.ts``, ``key.id``, ``value.x`` ...)."""
    labels = header.decode().split("\t")
    names = ["meta_ts" if label == "meta.ts" else label.split(".", 1)[1] for label in labels]
    return ", ".join(f'"{name}"' for name in names)


def copy(base_url: str, namespace: str, table: str, db_url: str) -> Marks:
    import psycopg

    marks = Marks()
    try:
        with open_session(base_url) as session, psycopg.connect(db_url, autocommit=True) as conn:
            _copy_objects(session, conn, namespace, table, marks)
    except psycopg.Error as exc:
        raise ProbeError(f"PostgreSQL: {exc}") from None
    return marks


def _copy_objects(session: DAPSession, conn: Any, namespace: str, table: str,
                  marks: Marks) -> None:
    from tap_dap.client import Format

    schema = session.get_table_schema(namespace, table).schema
    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{COPY_SCHEMA}"')
    conn.execute(copy_table_ddl(table, schema))
    resources = snapshot_resources(session, namespace, table, Format.TSV)
    marks.job_done = time.monotonic()
    for resource in resources:
        header, rest = split_header(object_pieces(session, resource, marks))
        if not header:
            continue  # an empty object
        columns = copy_column_list(header)
        with conn.cursor() as cur:
            with cur.copy(f'COPY "{COPY_SCHEMA}"."{table}" ({columns}) FROM STDIN') as cp:
                for piece in rest:
                    cp.write(piece)
            marks.rows += cur.rowcount
        marks.objects += 1
    marks.end = time.monotonic()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("parse", "copy"):
        command = commands.add_parser(name)
        command.add_argument("--base-url", required=True)
        command.add_argument("--namespace", default="canvas")
        command.add_argument("--table", required=True)
        if name == "copy":
            command.add_argument("--db-url", required=True)
    args = parser.parse_args(argv)
    from tap_dap.client import DAPClientError

    try:
        if args.command == "parse":
            marks = parse(args.base_url, args.namespace, args.table)
        else:
            marks = copy(args.base_url, args.namespace, args.table, args.db_url)
    except (DAPClientError, ProbeError) as exc:
        what = f"{args.command} of {args.namespace}.{args.table}"
        sys.exit(f"bench.probes: {what}: {type(exc).__name__}: {exc}")
    print(marks.as_json())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
