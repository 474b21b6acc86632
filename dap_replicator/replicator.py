"""SQLReplicator and SQLDrop: the official library's replicator classes, on tap-dap and
target-dap-sql.

``initialize`` takes a snapshot of a table the database does not replicate yet, ``synchronize``
applies the changes since the table's meta row, ``replicate`` does whichever is needed. Each runs
`tap-dap | target-dap-sql` for that one table in this process (dap_replicator.pipeline), so the
database is the one the CLI pipeline and the official `dap` CLI write, and either can continue
it. Unlike the official library the methods are synchronous (from asyncio code:
``await asyncio.to_thread(replicator.synchronize, ns, table)``) and return a ReplicationResult.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dap_replicator.connection import DatabaseConnection
from dap_replicator.errors import (
    ReplicationFailedError,
    ReplicatorError,
    SnapshotRequiredError,
    TableAlreadyInitializedError,
    TableNotFoundError,
    TableNotInitializedError,
)
from dap_replicator.pipeline import run_pipeline
from dap_replicator.table_lock import table_lock
from tap_dap.client import DAPClientError
from tap_dap.errors import StreamsFailedError, TapDapError
from target_dap_sql.admin import export_state
from target_dap_sql.errors import TargetDapSQLError
from target_dap_sql.meta import MetaRow
from target_dap_sql.replica_db import ReplicaDatabase

logger = logging.getLogger("dap_replicator")

#: DAP error types of a refused incremental query (the official client: OutOfRangeError).
REFUSALS = frozenset({"SnapshotRequired", "OutOfRange"})
#: Glob characters, the list separator and blanks never occur in DAP names.
_NOT_IN_NAMES = frozenset("*?[], \t\n")
#: DAP names are database identifiers (PostgreSQL: 63 bytes, MariaDB: 64); 255 is generous.
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class ReplicationResult:
    """What one call did. ``timestamp`` (naive UTC, as in the meta row) is where the next
    synchronize starts; ``snapshot`` says whether the table was (re)loaded from a snapshot."""

    namespace: str
    table: str
    rows_written: int
    timestamp: datetime
    schema_version: int
    snapshot: bool


class SQLReplicator:
    """``SQLReplicator(session, DatabaseConnection(url))``; ``session`` is a tap_dap.client
    DAPSession (``with DAPClient(base_url, credentials) as session: ...``), which may be shared
    by replicators running in parallel threads. ``tap_settings`` / ``target_settings`` are extra
    tap-dap / target-dap-sql settings (e.g. ``{"poll_interval": 1}``, ``{"enum_type": "text"}``);
    the table, namespace and database always come from the call and the connection."""

    def __init__(
        self, session: Any, connection: DatabaseConnection, *,
        tap_settings: dict[str, Any] | None = None,
        target_settings: dict[str, Any] | None = None,
    ) -> None:
        self._session = session
        self._connection = connection
        self._tap_settings = dict(tap_settings or {})
        self._target_settings = dict(target_settings or {})

    def __repr__(self) -> str:
        return f"SQLReplicator({self._session!r}, {self._connection!r})"

    def version_upgrade(self) -> None:
        """Create the instructure_dap meta tables (and their version row) if missing."""
        dialect = self._connection.open_dialect()
        try:
            dialect.ensure_meta_tables()
        except TargetDapSQLError as exc:
            raise ReplicationFailedError(f"creating the meta tables: {exc}") from exc
        finally:
            dialect.close()

    def initialize(self, namespace: str, table_name: str) -> ReplicationResult:
        """Snapshot a table the database does not replicate yet (`dap initdb`)."""
        with self._locked(namespace, table_name):
            if self._meta_row(namespace, table_name) is not None:
                raise TableAlreadyInitializedError(
                    f"{namespace}.{table_name}: Table already initialized. Please run syncdb "
                    "(synchronize) to update it.")
            return self._run(namespace, table_name, state=None, on_refusal="fail")

    def synchronize(self, namespace: str, table_name: str) -> ReplicationResult:
        """Apply the changes since the table's meta row (`dap syncdb`). A refused incremental
        query raises SnapshotRequiredError (replicate() re-snapshots instead)."""
        with self._locked(namespace, table_name):
            row = self._meta_row(namespace, table_name)
            if row is None:
                raise TableNotInitializedError(
                    f"{namespace}.{table_name}: Table not initialized. Please run initdb "
                    "(initialize) first.")
            return self._run(namespace, table_name, state=export_state([row]),
                             on_refusal="fail")

    def replicate(self, namespace: str, table_name: str) -> ReplicationResult:
        """initialize() or synchronize(), whichever the table needs; a refused incremental
        query re-snapshots the table (as tap-dap does by default)."""
        with self._locked(namespace, table_name):
            row = self._meta_row(namespace, table_name)
            state = None if row is None else export_state([row])
            return self._run(namespace, table_name, state=state, on_refusal="resnapshot")

    # -- internals --------------------------------------------------------------------------------

    def _locked(self, namespace: str, table: str) -> AbstractContextManager[None]:
        """The table's lock: a second call for a table being replicated raises TableBusyError."""
        _check_names(namespace, [table])
        return table_lock(self._connection, namespace, [table])

    def _check_table_exists(self, namespace: str, table: str) -> None:
        # Said here in the caller's terms: the tap would phrase it as a bad `tables` setting.
        try:
            tables = self._session.get_tables(namespace)
        except DAPClientError as exc:
            raise ReplicationFailedError(f"{namespace}.{table}: listing the tables of "
                                         f"namespace {namespace!r}: {exc}") from exc
        if table not in tables:
            raise TableNotFoundError(f"{namespace}.{table}: DAP has no table {table!r} in "
                                     f"namespace {namespace!r}")

    def _meta_row(self, namespace: str, table: str) -> MetaRow | None:
        _check_names(namespace, [table])
        dialect = self._connection.open_dialect()
        try:
            rows = dialect.read_meta_rows()
        except TargetDapSQLError as exc:
            raise ReplicationFailedError(f"reading the meta table: {exc}") from exc
        finally:
            dialect.close()
        return next((r for r in rows
                     if r.source_namespace == namespace and r.source_table == table), None)

    def _run(self, namespace: str, table: str, *, state: dict[str, Any] | None,
             on_refusal: str) -> ReplicationResult:
        self._check_table_exists(namespace, table)
        stream = f"{namespace}-{table}"
        tap_config = {
            "poll_interval": 1, **self._tap_settings,
            "base_url": self._session.settings.base_url,
            # The tap uses the caller's session; its credentials are never read.
            "client_id": "(caller's session)", "client_secret": "(caller's session)",
            "namespaces": [namespace], "tables": [table],
            "on_snapshot_required": on_refusal,
        }
        # No record worker processes unless asked: a library call that loads tables on threads
        # of its caller should not start N processes per table.
        target_config = {"workers": 1, **self._target_settings,
                         "sqlalchemy_url": self._connection.url}
        logger.info("%s.%s: %s", namespace, table,
                    "synchronizing" if state else "taking a snapshot")
        try:
            outcome = run_pipeline(self._session, tap_config, state, target_config, stream)
        except StreamsFailedError as exc:
            raise _stream_failure(namespace, table, exc) from exc
        except (TapDapError, DAPClientError, TargetDapSQLError, OSError) as exc:
            raise ReplicationFailedError(f"{namespace}.{table}: {exc}") from exc
        row = self._meta_row(namespace, table)
        if row is None:
            raise ReplicationFailedError(
                f"{namespace}.{table}: the run ended without a meta row for the table "
                "(see the log above)")
        result = ReplicationResult(
            namespace, table, outcome.rows_written, row.timestamp, row.schema_version,
            snapshot=bool(outcome.snapshot) if outcome.snapshot is not None else state is None)
        logger.info("%s.%s: %d rows written, now at %s (schema version %d)", namespace, table,
                    result.rows_written, result.timestamp.isoformat(), result.schema_version)
        return result


class SQLDrop:
    """``SQLDrop(DatabaseConnection(url)).drop(namespace, "a,b" | ["a", "b"] | "all")``: drop
    replicated tables with their meta rows (and, on PostgreSQL, their enum types)."""

    def __init__(self, connection: DatabaseConnection) -> None:
        self._connection = connection

    def __repr__(self) -> str:
        return f"SQLDrop({self._connection!r})"

    def drop(self, namespace: str, table_names: str | Sequence[str]) -> list[str]:
        """Drop the tables (all checked before anything is dropped); the names dropped."""
        if isinstance(table_names, str):
            names = [n.strip() for n in table_names.split(",") if n.strip()]
        elif isinstance(table_names, Sequence):
            names = list(table_names)
        else:
            raise ReplicatorError(f"{table_names!r} is not a table name, a list of table names "
                                  "or 'all'")
        if not names:
            raise ReplicatorError(f"{table_names!r}: no table names to drop (give names or 'all')")
        _check_names(namespace, names)
        dialect = self._connection.open_dialect()
        try:
            db = ReplicaDatabase(dialect)
            rows = {r.source_table: r for r in db.meta_rows() if r.source_namespace == namespace}
            if names == ["all"]:
                names = list(rows)
                if not names:
                    logger.warning("no tables to drop in namespace %s", namespace)
            unknown = [n for n in names if n not in rows]
            if unknown:
                listed = ", ".join(f"{namespace}.{n}" for n in unknown)
                raise TableNotInitializedError(
                    f"{listed}: Table not initialized (not replicated in this database); "
                    "nothing was dropped")
            with table_lock(self._connection, namespace, names):  # none is being replicated
                for name in names:
                    db.drop(rows[name])
                    logger.info("dropped %s.%s (%s)", namespace, name, db.qualified(rows[name]))
        except TargetDapSQLError as exc:
            raise ReplicationFailedError(f"dropping from namespace {namespace}: {exc}") from exc
        finally:
            dialect.close()
        return names


def _check_names(namespace: str, tables: Sequence[str]) -> None:
    """One table each: a glob or a list would make the tap replicate several."""
    for name in [namespace, *tables]:
        if not isinstance(name, str) or not name or _NOT_IN_NAMES & set(name):
            raise ReplicatorError(f"{name!r} is not a namespace or table name")
        if len(name) > MAX_NAME_LENGTH:
            raise ReplicatorError(f"{name[:40]!r}... ({len(name)} characters) is not a "
                                  "namespace or table name")


def _stream_failure(namespace: str, table: str, exc: StreamsFailedError) -> ReplicatorError:
    failure = exc.failures[0]
    if failure.error_type in REFUSALS:
        # The tap's text names its own setting; say what a library caller can do instead.
        detail = failure.reason.split(" is 'fail': ", 1)[-1]
        return SnapshotRequiredError(
            f"{namespace}.{table}: DAP refused the incremental query ({detail}); the table "
            "needs a new snapshot: call replicate(), or drop and initialize it",
            error_type=failure.error_type, job_id=failure.job_id)
    message = f"{namespace}.{table}: {failure.reason}"
    if failure.job_id:
        message += f" (job {failure.job_id})"
    return ReplicationFailedError(message, error_type=failure.error_type, job_id=failure.job_id)
