"""Fetch one table's snapshot objects (TSV and JSONL, as served) for the probes.

The probes must see exactly the bytes the pipelines download, so the files come from the same
emulator through the project's own DAP client, gzipped as served. Not measured.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench.errors import SetupError


@dataclass(frozen=True)
class TableFiles:
    tsv_dir: Path
    jsonl_dir: Path
    schema_file: Path  # <table>.schema.json: the VersionedSchema
    job_seconds: dict[str, float]  # format -> seconds from query to complete job (server side)


def fetch(base_url: str, client_id: str, client_secret: str, namespace: str, table: str,
          directory: Path) -> TableFiles:
    from tap_dap.client import (
        Credentials,
        DAPClient,
        DAPClientError,
        Format,
        Mode,
        SnapshotQuery,
    )

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    credentials = Credentials.create(client_id=client_id, client_secret=client_secret)
    job_seconds: dict[str, float] = {}
    try:
        with DAPClient(base_url, credentials, poll_interval=0.2) as session:
            schema = session.get_table_schema(namespace, table)
            schema_file = directory / f"{table}.schema.json"
            schema_file.write_text(json.dumps({"schema": schema.schema, "version": schema.version}))
            dirs = {}
            for fmt in (Format.TSV, Format.JSONL):
                started = time.perf_counter()
                job = session.execute_job(namespace, table, SnapshotQuery(fmt, Mode.CONDENSED))
                job_seconds[fmt.value] = time.perf_counter() - started
                target = directory / fmt.value
                session.download_objects(job.objects, str(target), False)
                dirs[fmt.value] = target
    except DAPClientError as exc:
        raise SetupError(f"fetching {namespace}.{table} objects from {base_url}: {exc}") from None
    return TableFiles(dirs["tsv"], dirs["jsonl"], schema_file, job_seconds)
