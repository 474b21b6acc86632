"""Background download of the objects of upcoming streams, within a fixed memory budget.

Output order is (stream order, object order). The object being written (the *head*) is exempt from
the shared budget and, if no worker has claimed it yet, is downloaded by the writer itself; so the
writer always makes progress however workers are blocked on later objects. Workers only claim
objects of streams whose jobs are complete, earliest in output order first.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tap_dap.client import DownloadInterruptedError, RetryPolicy
from tap_dap.errors import TapDapError
from tap_dap.output import RecordEncoder, encode_object

logger = logging.getLogger("tap-dap.prefetch")

#: Upper bound for the head object's own queue (it is not limited by the shared budget).
HEAD_QUEUE_BYTES = 4 * 1024 * 1024
#: An object's data as blocks of whole lines, each ending with b"\n" (see output.encode_object).
BlockSource = Callable[[object], Iterator[bytes]]


class PrefetchCancelled(TapDapError):
    """An object's prefetch was stopped (stream discarded or re-queried, or shutdown).

    Stored as the object's error, so a cut-short object can never pass as complete and advance
    a bookmark.
    """


@dataclass(eq=False)
class _Slot:
    stream: str
    index: int
    obj: object
    encoder: RecordEncoder
    claimed: bool = False
    cancelled: bool = False
    done: bool = False
    error: BaseException | None = None
    buffered: int = 0
    chunks: deque[tuple[bytearray, int]] = field(default_factory=deque)


class Prefetcher:
    """Encodes RECORD chunks per object ahead of the writer, within ``budget`` bytes."""

    def __init__(
        self, blocks_of: BlockSource, stream_order: list[str], *, workers: int, budget: int
    ) -> None:
        self._blocks_of = blocks_of
        self._order = list(stream_order)
        self._slots: dict[str, list[_Slot]] = {}
        self._discarded: set[str] = set()
        self._budget = budget
        self._used = 0
        self._head: _Slot | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"dap-prefetch-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def add(
        self, stream: str, objects: list[object], encoder_for: Callable[[object], RecordEncoder]
    ) -> None:
        """Register a stream's objects once its job is complete (may be called from any thread)."""
        with self._cond:
            if stream in self._slots or stream in self._discarded:
                return
            self._slots[stream] = [
                _Slot(stream, i, obj, encoder_for(obj)) for i, obj in enumerate(objects)
            ]
            if stream not in self._order:
                self._order.append(stream)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def discard(self, stream: str) -> None:
        """Drop a stream's buffered and future data (after it was written, failed or cut short)."""
        with self._cond:
            self._discarded.add(stream)
            self._drop_slots(stream)

    def forget(self, stream: str) -> None:
        """Drop what was prefetched for a stream's job; its next job may be ``add``-ed again."""
        with self._cond:
            self._drop_slots(stream)

    def _drop_slots(self, stream: str) -> None:
        for slot in self._slots.pop(stream, []):
            slot.cancelled = True
            self._used -= slot.buffered
            slot.buffered = 0
            slot.chunks.clear()
        self._cond.notify_all()

    def chunks(self, stream: str) -> Iterator[tuple[bytearray, int]]:
        """Yield ``(encoded records, count)`` of a registered stream in order (writer thread)."""
        with self._cond:
            slots = list(self._slots[stream])
        for slot in slots:
            with self._cond:
                self._head = slot
                self._cond.notify_all()
                inline = not slot.claimed
                slot.claimed = True
            if inline:
                yield from encode_object(slot.encoder, self._blocks_of(slot.obj))
                continue
            yield from self._drain(slot)

    def _drain(self, slot: _Slot) -> Iterator[tuple[bytearray, int]]:
        while True:
            with self._cond:
                while not slot.chunks and not slot.done:
                    self._cond.wait()
                if slot.chunks:
                    chunk = slot.chunks.popleft()
                    slot.buffered -= len(chunk[0])
                    self._used -= len(chunk[0])
                    self._cond.notify_all()
                elif slot.error is not None:
                    raise slot.error
                else:
                    return
            yield chunk

    # -- workers --------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                slot = self._claim()
                if slot is None:
                    return
            try:
                for chunk in encode_object(slot.encoder, self._blocks_of(slot.obj)):
                    self._put(slot, chunk)
            except BaseException as exc:  # handed to the writer, which raises it in order
                with self._cond:
                    slot.error = exc
            with self._cond:
                slot.done = True
                self._cond.notify_all()

    def _claim(self) -> _Slot | None:
        # Half the budget free before starting another object: a started download that then
        # stalls on a full budget keeps its connection idle.
        while not self._closed:
            if self._used < self._budget // 2:
                for stream in self._order:
                    for slot in self._slots.get(stream, ()):
                        if not slot.claimed:
                            slot.claimed = True
                            return slot
            self._cond.wait()
        return None

    def _put(self, slot: _Slot, chunk: tuple[bytearray, int]) -> None:
        size = len(chunk[0])
        with self._cond:
            while True:
                if slot.cancelled or self._closed:
                    raise PrefetchCancelled(
                        f"{slot.encoder.where}: prefetch stopped before the object was complete"
                    )
                if slot is self._head:
                    if slot.buffered < HEAD_QUEUE_BYTES:
                        break
                elif self._used + size <= self._budget:
                    break
                self._cond.wait()
            slot.chunks.append(chunk)
            slot.buffered += size
            self._used += size
            self._cond.notify_all()


def restartable_blocks(
    open_blocks: Callable[[], Iterator[bytes]],
    label: str,
    *,
    policy: RetryPolicy | None = None,
) -> Iterator[bytes]:
    """Blocks of whole lines of one object; a transfer that breaks midway is restarted.

    The client raises DownloadInterruptedError once it has handed out data (it cannot retry
    then); anything else was already retried by the client, or is permanent. Objects are
    immutable, so byte N of a new transfer is byte N of the broken one: the bytes already
    delivered are skipped, and as every block ends with a line ending, the first new block
    starts with a whole line. Nothing is emitted twice and nothing is lost, whatever the block
    boundaries of either transfer. Restarts wait (with jitter, as the client's retries do) and
    go on while `policy`'s retry budget lasts, counted from the first break without new data
    in between: a link that is down for a minute is ridden out as it is before the first
    byte, and a long object on a flaky link that keeps making progress still completes.
    """
    policy = policy or RetryPolicy()
    delivered = 0
    restarts = 0
    stalled_since = 0.0
    while True:
        skip = delivered
        delivered_before = delivered
        try:
            for block in open_blocks():
                if skip:
                    if skip >= len(block):
                        skip -= len(block)
                        continue
                    block = block[skip:]
                    skip = 0
                delivered += len(block)
                yield block
            return
        except DownloadInterruptedError as exc:
            if exc.attempts > 1:
                raise  # the client retried this transfer itself until its retry budget ran out
            now = time.monotonic()
            if restarts == 0 or delivered > delivered_before:
                restarts, stalled_since = 0, now
            restarts += 1
            spent = now - stalled_since
            if spent >= policy.max_time:
                exc.attempts, exc.elapsed, exc.budget = restarts, spent, policy.max_time
                raise
            ceiling = min(policy.max_delay, policy.base_delay * 2 ** (restarts - 1))
            wait = min(random.uniform(ceiling / 2, ceiling), policy.max_time - spent)
            logger.warning(
                "%s: download broke after %d bytes of data (%s); reading it again from the "
                "start in %.1f s (restart %d, %.1f s of the %g s retry budget spent)",
                label, delivered, exc, wait, restarts, spent, policy.max_time,
            )  # fmt: skip
            time.sleep(wait)
