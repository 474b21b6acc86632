"""Record worker processes: decoding, validating and encoding RECORD runs on every core.

The target's own process reads the input, keeps rows per key, commits, and prints STATE; most of
its CPU goes to decoding records and (PostgreSQL) encoding them as binary COPY tuples, which
depend on nothing but the lines themselves. With `workers` > 1, runs of a stream's RECORD lines
go to worker processes (record_worker.py), round robin, and their results come back and are
added to the stream's rows strictly in input order, so every batch, commit and STATE is what the
in-process path would make:

- a run goes to a worker only when nothing but RECORD runs of parallel streams came before it
  since the last result was added: any other message, and a run decoded in-process, first waits
  for every run in flight (`drain`). A STATE therefore always follows its records' rows;
- a run a worker cannot decode (bad input) is handled again line by line in this process, with
  its own line numbers, so the error names the stream and the line exactly as without workers;
- a worker that dies or fails stops the run with one error line: nothing it had is lost
  silently, and no STATE covers rows it never returned; so does one that stays silent for
  `STALL_SECONDS` (stopped, stuck), instead of the target waiting for it forever.

Workers start on first use, when a stream that its dialect can encode rows for (`row_codec`) has
received `MIN_ROWS` records: small inputs never pay for starting processes. They end when the
target closes their stdin (end of input, error, signal) or when the target dies (their stdin
ends). They get neither the database URL nor the settings: not in their tasks, not in their
environment (`worker_environment`).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import pickle
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from target_dap_sql.decoding import Decoded
from target_dap_sql.errors import TargetDapSQLError
from target_dap_sql.record_worker import RESULT_HEADER, TASK_HEADER
from target_dap_sql.settings import MAX_WORKERS
from target_dap_sql.sinks import SLICE_ROWS, StreamSink

#: A stream goes to the workers after this many records (decoded here until then, ~0.3 s):
#: starting a worker costs ~0.3 s of CPU (the interpreter and its imports). The environment
#: variable is for tests that run workers on small inputs.
MIN_ROWS = int(os.environ.get("DAP_TARGET_WORKERS_MIN_ROWS", 3 * SLICE_ROWS))
#: Fewer cores than this: no workers unless the `workers` setting asks for them. Workers cost
#: ~5 µs of CPU per row more than decoding in-process (pipes, pickling, their start), which only
#: pays when the tap, PostgreSQL, this process and its workers do not share 2 cores
#: (docs/performance.md, "Record workers": on 2 cores workers=2 was slower).
MIN_CORES = 3
#: The most workers the setting may ask for (and the default on a machine with more cores):
#: each is an interpreter of ~20 MB, and more of them than cores only adds switching; a
#: setting like 1000 would start a thousand processes before the first row.
#: Runs in flight per worker: one being decoded and one waiting, so no worker idles while this
#: process adds a result.
IN_FLIGHT_PER_WORKER = 2
#: Pipe size asked for (a run is up to 1 MiB; the default 64 KiB costs many wake-ups per run).
PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: A worker that takes no bytes and sends none for this long fails the run (it was stopped,
#: e.g. SIGSTOP, or is stuck): without a bound the target would wait for it forever, silently.
#: A run takes well under a second to decode. The environment variable is for tests.
STALL_SECONDS = float(os.environ.get("DAP_TARGET_WORKERS_TIMEOUT", 300))


#: The worker's start: singer_sdk as a bare package, so that `singer_sdk.exceptions` (the base
#: classes of our errors, all a worker needs of the SDK) loads without the package's __init__,
#: which imports the whole SDK (~0.3 s of CPU per worker). `-P`: no script directory on sys.path.
#: A worker that cannot start says so in one line (the target then names the exit code),
#: written at once: the workers start together, and pieces of their lines would interleave.
_BOOTSTRAP = """\
import importlib.util, os, sys, types
try:
    spec = importlib.util.find_spec('singer_sdk')
    sdk = sys.modules['singer_sdk'] = types.ModuleType('singer_sdk')
    sdk.__path__, sdk.__spec__ = list(spec.submodule_search_locations), spec
    from target_dap_sql.record_worker import main
except Exception as exc:
    text = f'target-dap-sql record worker cannot start: {type(exc).__name__}: {exc}'
    os.write(2, (' '.join(text.splitlines()) + '\\n').encode(errors='replace'))
    sys.exit(1)
main()
"""


#: Environment variables a worker is not given (it needs none of them): the settings of the
#: target, the tap and Meltano (Meltano hands them over as variables, the database URL too) and
#: anything named like a secret. A variable whose value holds a given secret is dropped too.
_NOT_FOR_WORKERS = re.compile(
    r"^(TARGET_|TAP_|MELTANO_)|PASSW|SECRET|TOKEN|CREDENTIAL|_URL$|_URI$|_DSN$", re.IGNORECASE)


def worker_environment(secrets: Sequence[str]) -> dict[str, str]:
    """This process's environment without settings and secrets (workers.py module docs)."""
    return {name: value for name, value in os.environ.items()
            if not _NOT_FOR_WORKERS.search(name) and not any(s in value for s in secrets)}


class WorkerError(TargetDapSQLError):
    """A record worker process died or failed."""


def default_workers() -> int:
    """The cores this process may run on, or 1 (no workers) below `MIN_CORES`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(cores, MAX_WORKERS) if cores >= MIN_CORES else 1


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    codecs_sent: set[int]


@dataclass
class _Run:
    worker: _Worker
    sink: StreamSink
    lines: list[bytes]
    first_line: int


class ParallelRuns:
    """Hands RECORD runs to worker processes and adds their results in input order.

    ``apply(sink, decoded)`` adds a worker's rows to a sink (as the in-process path adds its
    own); ``replay(lines, first_line)`` handles a run line by line, numbering its lines from
    ``first_line``.
    """

    def __init__(self, workers: int, apply: Callable[[StreamSink, list[Decoded]], None],
                 replay: Callable[[list[bytes], int], None], secrets: Sequence[str] = ()) -> None:
        self._count = workers
        # (a password of a few characters would match PATH or PYTHONPATH by chance: too short
        # to hide by its value anyway)
        self._secrets = [s for s in secrets if len(s) >= 4]
        self._apply = apply
        self._replay = replay
        self._workers: list[_Worker] = []
        self._next = 0
        self._pending: collections.deque[_Run] = collections.deque()
        #: Per sink: (codec id, pickled codec) once it goes to the workers, None if it never does.
        self._plans: dict[StreamSink, tuple[int, bytes] | None] = {}

    def take(self, sink: StreamSink, lines: list[bytes], first_line: int) -> bool:
        """Send the run to a worker (True), or return False once the runs in flight are added
        (the caller handles this run itself, after them)."""
        plan = self._plan(sink) if self._count > 1 else None
        if plan is None:
            self.drain()
            return False
        if len(self._pending) >= IN_FLIGHT_PER_WORKER * self._count:
            self._add_oldest()
        if not self._workers:
            self._workers = [self._start() for _ in range(self._count)]
        worker = self._workers[self._next % self._count]
        self._next += 1
        self._send(worker, plan, lines, sink.stream)
        self._pending.append(_Run(worker, sink, lines, first_line))
        return True

    def drain(self) -> None:
        """Add every run in flight, in order."""
        while self._pending:
            self._add_oldest()

    def close(self) -> None:
        """Stop the workers (runs in flight are dropped: only an error or a signal leaves any)
        and wait for them, so none outlives the target."""
        self._pending.clear()
        workers, self._workers = self._workers, []
        for worker in workers:
            # Results nobody reads: a worker blocked writing one gets EPIPE and ends, instead
            # of waiting 5 s for the kill below (per worker, on every error and signal).
            for pipe in (worker.process.stdout, worker.process.stdin):
                with contextlib.suppress(OSError):
                    assert pipe is not None
                    pipe.close()
        for worker in workers:
            try:
                worker.process.wait(5)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()

    # --- internals ----------------------------------------------------------------------------

    def _plan(self, sink: StreamSink) -> tuple[int, bytes] | None:
        if sink in self._plans:
            return self._plans[sink]
        if sink.records_received < MIN_ROWS:
            return None  # not yet: the stream may be small
        codec = sink.dialect.row_codec(sink.layout)
        plan = None
        if codec is not None and not sink.decoder.renames_columns:
            sink.use_codec(codec)
            plan = (len(self._plans) + 1, pickle.dumps(codec, protocol=pickle.HIGHEST_PROTOCOL))
        self._plans[sink] = plan
        return plan

    def _start(self) -> _Worker:
        process = subprocess.Popen(
            [sys.executable, "-P", "-c", _BOOTSTRAP],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
            env=worker_environment(self._secrets),
            # not in a session of its own: a signal to the pipeline's process group ends it too
        )
        for pipe in (process.stdin, process.stdout):
            assert pipe is not None
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)
            # non-blocking: every wait for a worker is a poll with a bound (_wait)
            os.set_blocking(pipe.fileno(), False)
        return _Worker(process, set())

    def _send(self, worker: _Worker, plan: tuple[int, bytes], lines: list[bytes],
              stream: str) -> None:
        codec_id, codec = plan
        if codec_id in worker.codecs_sent:
            codec = b""
        data = b"\n".join(lines)
        pipe = worker.process.stdin
        assert pipe is not None
        try:
            for piece in (TASK_HEADER.pack(codec_id, len(codec), len(data)), codec, data):
                view = memoryview(piece)
                while view:
                    try:
                        view = view[os.write(pipe.fileno(), view):]
                    except BlockingIOError:  # the pipe is full: the worker is busy
                        self._wait(worker, pipe.fileno(), select.POLLOUT, stream)
        except (BrokenPipeError, ValueError):
            raise self._died(worker, stream) from None
        worker.codecs_sent.add(codec_id)

    def _read(self, worker: _Worker, size: int, stream: str) -> bytearray | None:
        """``size`` bytes from the worker, or None if its output ended (it died)."""
        pipe = worker.process.stdout
        assert pipe is not None
        data = bytearray()
        while len(data) < size:
            try:
                chunk = os.read(pipe.fileno(), min(size - len(data), PIPE_BYTES))
            except BlockingIOError:  # nothing yet: the worker is decoding
                self._wait(worker, pipe.fileno(), select.POLLIN, stream)
                continue
            if not chunk:
                return None
            data += chunk
        return data

    def _wait(self, worker: _Worker, fd: int, event: int, stream: str) -> None:
        """Until ``fd`` is ready for ``event``; a worker that stays silent fails the run."""
        poller = select.poll()
        poller.register(fd, event)
        if not poller.poll(STALL_SECONDS * 1000):
            raise WorkerError(
                f"stream '{stream}': record worker process {worker.process.pid} sent nothing "
                f"for {STALL_SECONDS:g} s (stopped or stuck); rows after the last STATE are "
                "loaded again by the next run")

    def _add_oldest(self) -> None:
        run = self._pending.popleft()
        stream = run.sink.stream
        header = self._read(run.worker, RESULT_HEADER.size, stream)
        payload = header and self._read(run.worker, RESULT_HEADER.unpack(header)[0], stream)
        if not payload:
            raise self._died(run.worker, stream)
        status, value = pickle.loads(payload)
        if status == "error":
            raise WorkerError(f"stream '{stream}': a record worker failed: {value}")
        if status == "ok":
            assert run.sink.codec is not None
            self._apply(run.sink, run.sink.codec.unpack(value))
        else:  # bad input somewhere in the run: this process names the line
            self._replay(run.lines, run.first_line)

    def _died(self, worker: _Worker, stream: str) -> WorkerError:
        try:
            code = worker.process.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        how = f"exit code {code}"
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                how = f"killed by signal {-code} ({signal.Signals(-code).name})"
        return WorkerError(f"stream '{stream}': record worker process {worker.process.pid} "
                           f"ended unexpectedly ({how}); rows after the last STATE are "
                           "loaded again by the next run")
