"""Worked example: one Dagster op per DAP table, replicating into one database.

`list_tables` fans out one `replicate_table` op per table; each op runs
`SQLReplicator.replicate` for its table (a snapshot the first time, changes afterwards, a new
snapshot if DAP asks for one). With Dagster's default multiprocess executor the ops run in
separate processes, in parallel; the replicator's DDL lock and per-table meta rows make that
safe. A failed op is retried on its own and leaves the other tables alone.

Settings come from the environment, as for the `dap` CLI: DAP_API_URL, DAP_CLIENT_ID,
DAP_CLIENT_SECRET, DAP_CONNECTION_STRING; DAP_NAMESPACE (default canvas) and DAP_TABLES (comma
separated; default every table of the namespace).

    pip install dagster tap-dap
    dagster job execute -f examples/dagster_replicator.py -j dap_replication
"""

# No `from __future__ import annotations`: Dagster reads the op annotations at definition time.

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import DynamicOut, DynamicOutput, OpExecutionContext, RetryPolicy, job, op

from dap_replicator import DatabaseConnection, SQLReplicator
from tap_dap.client import DAPClient, DAPSession


@contextmanager
def dap_session() -> Iterator[DAPSession]:
    """A DAP session from DAP_API_URL / DAP_CLIENT_ID / DAP_CLIENT_SECRET."""
    with DAPClient() as session:
        yield session


def table_names() -> list[str]:
    wanted = os.environ.get("DAP_TABLES", "")
    if wanted.strip():
        return [t.strip() for t in wanted.split(",") if t.strip()]
    with dap_session() as session:
        return session.get_tables(namespace())


def namespace() -> str:
    return os.environ.get("DAP_NAMESPACE", "canvas")


def replicate_one(table: str) -> dict[str, Any]:
    """The work of one task: bring one table up to date (usable from any orchestrator)."""
    with dap_session() as session:
        replicator = SQLReplicator(session, DatabaseConnection())  # DAP_CONNECTION_STRING
        result = replicator.replicate(namespace(), table)
    return {"table": result.table, "rows_written": result.rows_written,
            "timestamp": result.timestamp.isoformat(), "schema_version": result.schema_version,
            "snapshot": result.snapshot}


@op(out=DynamicOut(str))
def list_tables(context: OpExecutionContext) -> Iterator[DynamicOutput[str]]:
    for table in table_names():
        yield DynamicOutput(table, mapping_key=table)


@op(retry_policy=RetryPolicy(max_retries=2, delay=30))
def replicate_table(context: OpExecutionContext, table: str) -> dict[str, Any]:
    outcome = replicate_one(table)
    context.log.info(f"{namespace()}.{table}: {outcome}")
    return outcome


@job
def dap_replication() -> None:
    list_tables().map(replicate_table)
