"""One database job at a time on a worker thread, so the next batch is decoded while this one loads.

Decoding records is Python work on the main thread; loading a batch is mostly waiting for the
server (COPY, index updates, WAL). Running the load on a thread overlaps the two. Only one job is
ever in flight, and every other use of the connection first waits for it (`settle`), so the
order of database work and its transactions is exactly what it would be without the thread.
A job's error is raised by the next `settle`, on the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundJob:
    """Runs at most one callable at a time on a daemon thread; `settle` waits and re-raises."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None
        #: Set when the job in flight has finished (not Thread.join: on Python 3.11 a join a
        #: signal handler interrupts marks the still running thread as stopped).
        self._done = threading.Event()
        self._error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the worker thread, after the previous job has finished."""
        self.settle()

        done = threading.Event()

        def run() -> None:
            try:
                job()
            except BaseException as exc:  # raised again by settle() on the caller's thread
                self._error = exc
            finally:
                done.set()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._done = done
        try:
            self._thread.start()
        except BaseException:
            self._thread = None  # never started: nothing to wait for
            raise

    def settle(self) -> None:
        """Wait for the job in flight, if any; raise its error."""
        if self._thread is threading.current_thread():
            raise RuntimeError(f"{self._name}: a background job cannot wait for itself")
        if self._thread is not None:
            self._done.wait()  # interrupted, the job is still waited for by the next settle
        self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error
