"""What the dialects share around their one DB-API connection.

The connection opens on first use. Every unit of database work runs in a transaction of its own
that either commits or is rolled back and reported as ONE `DatabaseError` line naming the work
("loading stream 'x': <driver message>"), so a failure never leaves half a batch and never
prints a driver traceback. A batch and its meta row commit together; snapshot batches may load
on a worker thread (background.py) while the next batch is decoded.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from target_dap_sql.dialects import lanes
from target_dap_sql.dialects.background import BackgroundJob
from target_dap_sql.dialects.base import Batch, Dialect, logger
from target_dap_sql.errors import DatabaseError
from target_dap_sql.layout import TableLayout
from target_dap_sql.meta import MetaRow


class DbApiConnection(Protocol):
    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


ConnT = TypeVar("ConnT", bound=DbApiConnection)
#: What a dialect prepares once per (layout, live or staging table) to load batches with.
StatementsT = TypeVar("StatementsT")
ResultT = TypeVar("ResultT")


class ConnectionDialect(Dialect, Generic[ConnT, StatementsT]):
    """A dialect over one DB-API connection: transactions, errors and the shared load paths."""

    #: The driver's exception base class; its errors become one DatabaseError line.
    driver_error: ClassVar[type[Exception]]

    def __init__(self, *, loads: BackgroundJob | None = None) -> None:
        self._conn: ConnT | None = None
        #: Where snapshot batches load while the next one is decoded (None: always in the
        #: foreground). Every other use of the connection settles it first, so the order of
        #: database work and its transactions is what it would be without the thread.
        self._loads = loads
        self._statements: dict[tuple[int, bool], StatementsT] = {}
        #: A second connection for half the keys of each slice of DAP changes (lanes.py); made on
        #: first use by `_new_lane`, False when the dialect has none.
        self._lane: ConnectionDialect[Any, Any] | None | bool = None
        self._keys: dict[int, Callable[[tuple], Any]] = {}

    # --- hooks of each dialect ----------------------------------------------------------------

    @abstractmethod
    def _close_connection(self, conn: ConnT) -> None:
        """Roll back whatever is uncommitted and close."""

    @abstractmethod
    def _roll_back(self) -> None:
        """Roll back the open transaction, if there is one."""

    @abstractmethod
    def _failure_text(self, exc: Exception) -> str:
        """One line of what the driver reported, without the password."""

    def _begin(self) -> None:
        """Start a transaction; drivers that start one implicitly need nothing here."""

    def _commit(self) -> None:
        self.conn.commit()

    def _without_durable_commit(self) -> None:
        """In the open transaction: its commit need not wait for the disk (nothing relies on it
        surviving a server crash). Dialects that cannot say so per transaction do nothing."""

    @abstractmethod
    def _build_statements(self, layout: TableLayout, staging: bool) -> StatementsT:
        """The SQL that loads a batch of the layout into its live or staging table."""

    @abstractmethod
    def _apply(self, layout: TableLayout, batch: Batch, staging: bool) -> None:
        """Upsert, then delete, the rows of a batch inside the caller's transaction."""

    @abstractmethod
    def _upsert_meta(self, meta: MetaRow) -> None:
        """Write a stream's table_sync row inside the caller's transaction."""

    def _new_lane(self) -> ConnectionDialect[Any, Any] | None:
        """A dialect like this one, for the same database, that will open a connection of its
        own (lanes.py); None: every batch loads on this one connection."""
        return None

    # --- connection ---------------------------------------------------------------------------

    @property
    def conn(self) -> ConnT:
        if self._conn is None:
            self.connect()
        assert self._conn is not None
        return self._conn

    def close(self) -> None:
        try:
            self._settle_loads()
        finally:
            conn, self._conn = self._conn, None
            lane, self._lane = self._lane, None
            try:
                if conn is not None:
                    self._close_connection(conn)
            finally:
                if isinstance(lane, ConnectionDialect):
                    lane.close()

    def settle(self) -> None:
        self._settle_loads()

    def _settle_loads(self) -> None:
        """Wait for the background loads in flight (this connection's and the lane's), if any,
        and raise the first error."""
        try:
            if self._loads is not None:
                self._loads.settle()
        finally:
            if isinstance(self._lane, ConnectionDialect):
                self._lane.settle()

    # --- prepared statements ------------------------------------------------------------------

    def _statements_for(self, layout: TableLayout, staging: bool) -> StatementsT:
        """The load statements of a layout, built on first use (once per table shape)."""
        key = (layout.uid, staging)
        statements = self._statements.get(key)
        if statements is None:
            statements = self._statements[key] = self._build_statements(layout, staging)
        return statements

    def _forget_statements(self, layout: TableLayout) -> None:
        """Drop the statements built for a table whose shape may have changed."""
        self._statements = {k: v for k, v in self._statements.items() if k[0] != layout.uid}
        if isinstance(self._lane, ConnectionDialect):
            self._lane._forget_statements(layout)

    # --- transactions -------------------------------------------------------------------------

    def _run_or_roll_back(self, what: str, fn: Callable[..., ResultT], *args: Any) -> ResultT:
        """Run fn; on any failure roll back, and turn a driver error into one DatabaseError."""
        try:
            return fn(*args)
        except self.driver_error as exc:
            self._roll_back()
            raise DatabaseError(f"{what}: {self._failure_text(exc)}") from None
        except BaseException:
            self._roll_back()
            raise

    def _run_in_transaction(self, what: str, work: Callable[[], ResultT]) -> ResultT:
        """work() in a transaction of its own. Does not settle a background load: it is also
        what the background job runs."""
        def run() -> ResultT:
            self._begin()
            result = work()
            self._commit()
            return result

        return self._run_or_roll_back(what, run)

    def _transaction(self, what: str, work: Callable[[], ResultT]) -> ResultT:
        """work() in a transaction of its own, after the background load in flight."""
        self._settle_loads()
        return self._run_in_transaction(what, work)

    def _read(self, what: str, work: Callable[[], ResultT]) -> ResultT:
        """Read-only work(), after the background load in flight; it takes no write lock, and
        the transaction the driver may have opened for it ends with it."""
        self._settle_loads()
        result = self._run_or_roll_back(what, work)
        self._roll_back()
        return result

    # --- loading ------------------------------------------------------------------------------

    def write_batch(self, layout: TableLayout, batch: Batch, *, staging: bool,
                    meta: MetaRow | None) -> None:
        lane = self._lane_for(layout, batch, staging)
        if lane is not None:
            self._write_in_lanes(lane, layout, batch, meta)
            return
        self._settle_loads()
        self._write(layout, batch, staging, meta)

    def _write(self, layout: TableLayout, batch: Batch, staging: bool, meta: MetaRow | None,
               before_meta: Callable[[], None] | None = None) -> None:
        """Load the batch (and the meta row) on this connection, after its own load in flight;
        ``before_meta`` runs inside the transaction before the meta row is written."""
        def load() -> None:
            if meta is None and layout.dap is not None:
                # A DAP slice that moves no bookmark: lost in a server crash, it is fetched
                # again (its bookmark moves only with a later, durable meta-row commit). Other
                # taps' STATE may cover a slice as soon as it is committed: those stay durable.
                self._without_durable_commit()
            if len(batch):
                self._apply(layout, batch, staging)
            if before_meta is not None:
                before_meta()
            if meta is not None:
                self._upsert_meta(meta)

        what = f"loading stream '{layout.stream}'"
        if meta is None and self._loads is not None:
            # Nothing waits on a commit that moves no bookmark (a snapshot's staging slice, or a
            # slice of changes: STATE does not cover them yet), so it loads in the background;
            # the next use of the connection settles it.
            self._loads.start(lambda: self._run_in_transaction(what, load))
        else:
            if self._loads is not None:
                self._loads.settle()
            self._run_in_transaction(what, load)

    def _lane_for(self, layout: TableLayout, batch: Batch,
                  staging: bool) -> ConnectionDialect[Any, Any] | None:
        """The second connection for this batch, or None to load it on this one: only slices
        of DAP changes (their commits need not be durable or in step, see lanes.py) that are
        big enough, into the live table of a keyed stream."""
        if (staging or layout.dap is None or not layout.key_columns or self._loads is None
                or len(batch) < lanes.MIN_LANE_ROWS or self._lane is False):
            return None
        if self._lane is None:
            lane = self._new_lane()
            if lane is not None:
                lane._lane = False  # one second connection, not a chain of them
                lane.connect()  # here, not lazily on its worker thread (connect may settle)
            self._lane = lane or False
        return self._lane or None

    def _write_in_lanes(self, lane: ConnectionDialect[Any, Any], layout: TableLayout,
                        batch: Batch, meta: MetaRow | None) -> None:
        key = self._keys.get(layout.uid)
        if key is None:
            key = self._keys[layout.uid] = lanes.key_of(layout)
        mine, theirs = lanes.split(batch, key)
        if len(theirs):
            lane.write_batch(layout, theirs, staging=False, meta=None)
        if meta is None:
            if len(mine):
                self._write(layout, mine, False, None)
            return
        # The meta row commits after the lane's half: waiting for it inside this transaction
        # overlaps both halves, and an error of either rolls this one back. (The lane's commit
        # is not durable on its own; this durable commit comes after it in the server's log.)
        self._write(layout, mine, False, meta, before_meta=lane.settle)

    def update_meta(self, meta: MetaRow) -> None:
        self._transaction(f"updating {self.meta_table_label}", lambda: self._upsert_meta(meta))

    def _swap_in_one_transaction(self, layout: TableLayout, batch: Batch, meta: MetaRow | None,
                                 replace_live_table: Callable[[], None]) -> None:
        """Load the last batch into staging, let it replace the live table and move the meta
        row, all in one transaction: readers see the old table or the new one, never a mix."""
        def swap() -> None:
            if len(batch):
                self._apply(layout, batch, True)
            replace_live_table()
            if meta is not None:
                self._upsert_meta(meta)

        self._transaction(f"replacing table of stream '{layout.stream}' by its snapshot", swap)
        logger.info("Snapshot of '%s' swapped in", layout.stream)
