"""Record worker processes under the real console scripts: the same database as one process and as
the emulator's truth; kill -9 of the target, kill -9 of a worker and SIGTERM leave a consistent
database, no process behind, and a rerun that converges.

Workers start after DAP_TARGET_WORKERS_MIN_ROWS records (30,000 by default); these tests set it
low so that the emulator's small tables go through them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixture import RunningEmulator
from tests.reliability import test_kill9
from tests.reliability.outcomes import assert_recovered, dump
from tests.reliability.pipeline import TAP, TARGET, Workdir
from tests.reliability.test_kill9 import (
    TABLES,
    assert_meta_never_ahead,
    kill_and_rerun,
    point_id,
)

SERVE = {"tables": "accounts,courses,users", "rows": 400, "rows_per_object": 100, "seed": 21}
MIN_ROWS = {"DAP_TARGET_WORKERS_MIN_ROWS": "50"}


@pytest.fixture(autouse=True)
def workers_early(monkeypatch: pytest.MonkeyPatch) -> str:
    """Workers from the 50th record of a stream; a mark in the environment that finds them."""
    mark = uuid.uuid4().hex
    for name, value in {**MIN_ROWS, "DAP_TEST_MARK": mark}.items():
        monkeypatch.setenv(name, value)
    return mark


def workers_alive(mark: str) -> list[int]:
    """Record worker processes of this test that have not ended (zombies count as alive)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"DAP_TEST_MARK={mark}".encode() in environ and b"record_worker" in cmdline:
            found.append(int(proc.name))
    return found


def wait_until(condition: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    return condition()


@pytest.mark.postgres
def test_workers_reach_the_truth_and_one_process_database(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path,
        postgres_server: Any, workers_early: str) -> None:
    emu = emulator_factory(**SERVE)
    jobs = {}
    for count in (1, 2, 3):
        url = postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
        jobs[count] = Workdir(tmp_path / f"workers-{count}", emu, url)
        jobs[count].target_config.update(workers=count, batch_size_rows=150)
    for phase in ("snapshot", "changes"):
        if phase == "changes":
            for _, table in TABLES:
                emu.advance("canvas", table, inserts=40, updates=150, deletes=60)
        for job in jobs.values():
            assert_recovered(job, job.run(), TABLES)
    # every table alike; the meta rows' timestamps are each run's own DAP job's
    tables = [{name: rows for name, rows in dump(job.db_url).items()
               if name != "instructure_dap.table_sync"} for job in jobs.values()]
    assert len(tables[0]) == 4 and tables[0] == tables[1] == tables[2]
    assert workers_alive(workers_early) == []


# kill -9 of the target (or the whole pipeline) while workers decode: as tests/reliability's own
@pytest.mark.postgres
@pytest.mark.parametrize("point", [("snapshot", "target", 60_000, False),
                                   ("incremental", "pipeline", 20_000, False)], ids=point_id)
def test_kill9_with_workers_then_rerun(point: tuple[str, str, int, bool],
                                       emulator_factory: Callable[..., RunningEmulator],
                                       tmp_path: Path, pg_url: str, workers_early: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAP_TARGET_WORKERS_MIN_ROWS", "5")  # its tables have 30 rows
    monkeypatch.setitem(test_kill9.TARGET_SETTINGS, "workers", 2)  # whatever the cores
    kill_and_rerun(emulator_factory, tmp_path, pg_url, point)
    # the killed target's workers saw their input end and left
    assert wait_until(lambda: workers_alive(workers_early) == [])


def _two_worker_job(emulator_factory: Callable[..., RunningEmulator], tmp_path: Path,
                    url: str) -> tuple[RunningEmulator, Workdir, bytes]:
    """An emulator, a job directory whose target runs 2 workers, and the tap's output."""
    emu = emulator_factory(**SERVE)
    workdir = Workdir(tmp_path / "job", emu, url)
    workdir.target_config.update(workers=2)
    return emu, workdir, _tap_output(emu, workdir)


def _one_error_line(stderr: str) -> str:
    """The run's only ERROR line (no traceback anywhere)."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, stderr
    return errors[0]


def _tap_output(emu: RunningEmulator, workdir: Workdir) -> bytes:
    (workdir.path / "tap.json").write_text(__import__("json").dumps(workdir.tap_config))
    return subprocess.run([TAP, "--config", str(workdir.path / "tap.json")], check=True,
                          capture_output=True, timeout=120).stdout


def _interrupted_target(workdir: Workdir, data: bytes, mark: str,
                        interrupt: Callable[[subprocess.Popen, list[int]], None]
                        ) -> tuple[int, str, list[int]]:
    """The target fed two thirds of ``data``, then ``interrupt``-ed once its workers run, then
    the rest; returns its exit code, stderr, and the workers it had."""
    (workdir.path / "target.json").write_text(__import__("json").dumps(workdir.target_config))
    target = subprocess.Popen([TARGET, "--config", str(workdir.path / "target.json")],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, cwd=workdir.path)
    assert target.stdin is not None and target.stderr is not None
    cut = data.index(b"\n", len(data) * 2 // 3) + 1
    target.stdin.write(data[:cut])
    target.stdin.flush()
    workers = wait_until(lambda: len(workers_alive(mark)) == 2 and workers_alive(mark))
    assert workers, "no workers started"
    interrupt(target, workers)
    try:
        target.stdin.write(data[cut:])
        target.stdin.close()
    except BrokenPipeError:  # the target already stopped
        pass
    stderr = target.stderr.read().decode()
    return target.wait(60), stderr, workers


@pytest.mark.postgres
def test_a_killed_worker_fails_the_run_with_one_line_and_the_rerun_converges(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, pg_url: str,
        workers_early: str) -> None:
    emu, workdir, data = _two_worker_job(emulator_factory, tmp_path, pg_url)

    def kill_a_worker(target: subprocess.Popen, workers: list[int]) -> None:
        os.kill(workers[0], signal.SIGKILL)

    code, stderr, workers = _interrupted_target(workdir, data, workers_early, kill_a_worker)
    assert code == 1, stderr
    assert _one_error_line(stderr).endswith(
        f"record worker process {workers[0]} ended unexpectedly (killed by signal 9 (SIGKILL)); "
        "rows after the last STATE are loaded again by the next run"), stderr
    assert workers_alive(workers_early) == []  # the other worker ended, every one was reaped
    assert_meta_never_ahead(workdir, emu, None)
    assert_recovered(workdir, workdir.run(), TABLES)


@pytest.mark.postgres
def test_sigterm_ends_the_target_and_its_workers(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, pg_url: str,
        workers_early: str) -> None:
    emu, workdir, data = _two_worker_job(emulator_factory, tmp_path, pg_url)

    def terminate(target: subprocess.Popen, workers: list[int]) -> None:
        target.send_signal(signal.SIGTERM)
        target.wait(60)

    code, stderr, _ = _interrupted_target(workdir, data, workers_early, terminate)
    assert code == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert workers_alive(workers_early) == []
    assert_meta_never_ahead(workdir, emu, None)


@pytest.mark.postgres
def test_a_stopped_worker_fails_the_run_within_the_bound(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, pg_url: str,
        workers_early: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that never answers (SIGSTOP) must not hang the target forever: after
    DAP_TARGET_WORKERS_TIMEOUT seconds without a byte from it, one error line, exit 1."""
    monkeypatch.setenv("DAP_TARGET_WORKERS_TIMEOUT", "3")
    emu, workdir, data = _two_worker_job(emulator_factory, tmp_path, pg_url)
    started = time.monotonic()

    def stop_a_worker(target: subprocess.Popen, workers: list[int]) -> None:
        os.kill(workers[0], signal.SIGSTOP)

    code, stderr, workers = _interrupted_target(workdir, data, workers_early, stop_a_worker)
    assert time.monotonic() - started < 60
    assert code == 1, stderr
    assert _one_error_line(stderr).endswith(
        f"record worker process {workers[0]} sent nothing for 3 s (stopped or stuck); "
        "rows after the last STATE are loaded again by the next run"), stderr
    assert wait_until(lambda: workers_alive(workers_early) == [])
    assert_meta_never_ahead(workdir, emu, None)
    assert_recovered(workdir, workdir.run(), TABLES)


@pytest.mark.postgres
def test_workers_get_no_secret_in_their_environment(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, pg_url: str,
        workers_early: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Meltano hands settings over as environment variables (TARGET_DAP_SQL_SQLALCHEMY_URL,
    MELTANO_LOAD_…): a worker, which needs none of them, must not hold the password."""
    url = pg_url.replace("postgres@", "postgres:Pw-1n-URL@")  # trust auth: ignored, accepted
    secrets = {"TARGET_DAP_SQL_SQLALCHEMY_URL": url, "MELTANO_LOAD_SQLALCHEMY_URL": url,
               "PGPASSWORD": "Pw-0f-PG", "SOME_APP_DSN": url, "TAP_DAP_CLIENT_SECRET": "Cs-1"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    _, workdir, data = _two_worker_job(emulator_factory, tmp_path, url)
    seen: list[bytes] = []

    def look(target: subprocess.Popen, workers: list[int]) -> None:
        for pid in workers:
            seen.append(Path(f"/proc/{pid}/environ").read_bytes()
                        + Path(f"/proc/{pid}/cmdline").read_bytes())

    code, stderr, _ = _interrupted_target(workdir, data, workers_early, look)
    assert code == 0, stderr
    assert len(seen) == 2 and all(b"DAP_TEST_MARK" in s for s in seen)
    for text in seen:
        for secret in (b"Pw-1n-URL", b"Pw-0f-PG", b"Cs-1"):
            assert secret not in text


@pytest.mark.postgres
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_to_the_process_group_ends_the_target_and_its_workers(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, pg_url: str,
        workers_early: str, signum: signal.Signals) -> None:
    """Ctrl-C, or SIGTERM to the pipeline's process group (`timeout`, a service manager), reach
    the target and its workers: workers ignore it and end when the target closes their stdin,
    so the target reports the signal (not a worker killed by it); nothing is left behind."""
    emu, workdir, data = _two_worker_job(emulator_factory, tmp_path, pg_url)

    def interrupt(target: subprocess.Popen, workers: list[int]) -> None:
        for pid in (*workers, target.pid):  # the workers first: the race the target must win
            os.kill(pid, signum)
        target.wait(60)

    code, stderr, _ = _interrupted_target(workdir, data, workers_early, interrupt)
    assert code == 128 + signum, stderr
    assert _one_error_line(stderr).endswith(
        f"Terminated by signal {int(signum)}; nothing after the last commit is kept (the last "
        "STATE line covers what was committed)"), stderr
    assert wait_until(lambda: workers_alive(workers_early) == [])
    assert_meta_never_ahead(workdir, emu, None)
    assert_recovered(workdir, workdir.run(), TABLES)


@pytest.mark.postgres
def test_sigterm_while_waiting_for_a_stopped_worker(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, pg_url: str,
        workers_early: str) -> None:
    """The target waits on a worker that will not answer (SIGSTOP); SIGTERM still ends it with
    its own line, and the stopped worker is killed, not left behind."""
    emu, workdir, data = _two_worker_job(emulator_factory, tmp_path, pg_url)

    def stop_then_terminate(target: subprocess.Popen, workers: list[int]) -> None:
        os.kill(workers[0], signal.SIGSTOP)
        cut = data.index(b"\n", len(data) * 2 // 3) + 1  # where _interrupted_target cut

        def feed() -> None:  # blocks once the target stops reading (it waits on the worker)
            with contextlib.suppress(BrokenPipeError, ValueError):
                target.stdin.write(data[cut:])  # type: ignore[union-attr]

        threading.Thread(target=feed, daemon=True).start()
        time.sleep(1)
        target.send_signal(signal.SIGTERM)
        target.wait(30)

    code, stderr, _ = _interrupted_target(workdir, data, workers_early, stop_then_terminate)
    assert code == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert wait_until(lambda: workers_alive(workers_early) == [])
    assert_meta_never_ahead(workdir, emu, None)
    assert_recovered(workdir, workdir.run(), TABLES)
