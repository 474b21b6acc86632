"""Issue 9.2 under Meltano: kill -9 of `meltano run` itself, of its whole process group, or of
one of its plugins, at seeded points of a snapshot and of incrementals.

A kill point is "the N-th log line the tap or the target wrote since the sync began, plus a few
milliseconds": Meltano relays plugin stderr line by line, so this lands between known events
(job done, rows written, staging table swapped) whatever the machine's speed, while the seeded
delay spreads the kills inside those stretches. After the kill, neither Meltano's partial nor its
completed state may be ahead of the data; `meltano run --force` again must reach the truth with
no duplicate keys and `meltano state get` equal to the `table_sync` meta rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import assert_equals_truth, meltano_bin, meltano_project, meltano_state
from tests.e2e.replica import Replica, as_utc, diff_all, fetch_truth
from tests.e2e.tooling import ROOT, MeltanoProject
from tests.emulator_fixture import RunningEmulator
from tests.reliability.test_kill9 import TABLES, assert_meta_never_ahead, assert_no_duplicates

__all__ = ["meltano_bin", "meltano_project"]  # fixtures of the e2e suite, used here

STATE_ID = "emulator:tap-dap-to-target-dap-sql"
RUN = ("run", "--no-install", "tap-dap", "target-dap-sql")
# A job whose Meltano was killed stays "running" (fresh heartbeat) for 5 minutes, and every plain
# `meltano run` of it refuses until then, even after a successful forced one: kill runs and reruns
# here are forced, as an operator recovering by hand would do (one test checks the refusal).
FORCED_RUN = (*RUN[:1], "--force", *RUN[1:])
# 200 rows a table in objects of 40, committed every 25 rows: each stream spans several commits
# (and, for snapshots, a staging table) while a whole run stays at ~4 s, most of it Meltano.
SERVE = {"tables": ",".join(t for _, t in TABLES), "rows": 200, "rows_per_object": 40,
         "seed": 13}
# (not TARGET_DAP_SQL_BATCH_MAX_SECONDS: Meltano 4.4.1 turns a `kind: decimal` setting from the
# environment into a Decimal and then fails to JSON-dump the plugin's config)
TARGET_ENV = {"TARGET_DAP_SQL_BATCH_SIZE_ROWS": "25"}
CHANGES = {"inserts": 40, "updates": 40, "deletes": 15}
VICTIMS = ("group", "meltano", "tap", "target")
PLUGINS = {"tap": "tap-dap", "target": "target-dap-sql"}
SYNC_BEGINS = "Beginning sync of"
PLUGIN_LINE = re.compile(r"\] (tap-dap|target-dap-sql) ")
# Plugin lines a run logs from the first "Beginning sync of" on before the target's last data
# commit (measured: 24 in a snapshot, 24 in an incremental, both interleaving job, write, staging
# and commit lines of the three tables); kills are drawn below, so each interrupts data.
LINES_BEFORE_LAST_COMMIT = {"snapshot": 20, "incremental": 18}
MAX_DELAY_MS = 60
TIMEOUT = 120


@dataclass(frozen=True)
class KillPoint:
    phase: str
    victim: str
    after_lines: int
    delay_ms: int

    def __str__(self) -> str:
        return f"{self.phase}-{self.victim}-line{self.after_lines}+{self.delay_ms}ms"


def kill_points(phase: str, count: int, seed: int) -> list[KillPoint]:
    """Victims rotate (each phase meets all four), line and delay are drawn."""
    rng = random.Random(seed)
    return [KillPoint(phase, VICTIMS[i % len(VICTIMS)],
                      rng.randrange(LINES_BEFORE_LAST_COMMIT[phase]), rng.randrange(MAX_DELAY_MS))
            for i in range(count)]


SNAPSHOT_POINTS = kill_points("snapshot", 4, seed=92)
INCREMENTAL_POINTS = kill_points("incremental", 4, seed=93)
PG_POINTS = kill_points("snapshot", 2, seed=94)


@pytest.fixture
def dap_emulator(emulator_factory: Callable[..., RunningEmulator]) -> RunningEmulator:
    """Overrides the e2e suite's emulator (which meltano_project points at): our tables."""
    return emulator_factory(**SERVE)


@dataclass
class KilledRun:
    meltano_rc: int
    stderr: str
    victim_pids: list[int]

    def explain(self) -> str:
        return f"meltano exit {self.meltano_rc}\n{self.stderr[-4000:]}"


def group_members(pgid: int) -> dict[int, str]:
    """Live (non-zombie) processes of a process group: pid -> command line."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the command name (field 2) may hold spaces and parentheses: split after it
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                members[int(entry.name)] = cmdline
    return members


def plugin_pids(pgid: int, plugin: str) -> list[int]:
    """The syncing plugin's processes (not `--discover`), found by executable name."""
    return [pid for pid, cmd in group_members(pgid).items()
            if f"/{plugin} " in f"{cmd} " and "--discover" not in cmd]


def kill(process: subprocess.Popen, victim: str) -> list[int]:
    """kill -9 ``victim`` of the run; returns the pids hit (each alive just before)."""
    if victim == "group":
        assert process.poll() is None, "meltano had already exited"
        os.killpg(process.pid, signal.SIGKILL)
        return [process.pid]
    pids = [process.pid] if victim == "meltano" else plugin_pids(process.pid, PLUGINS[victim])
    assert pids, f"no running {victim} process to kill"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def run_and_kill(project: MeltanoProject, point: KillPoint) -> KilledRun:
    """`meltano run` in its own session, killed at ``point``; returns once every process of its
    group is gone (after a kill of the parent alone, its orphaned plugins must exit by themselves:
    their pipes to Meltano are broken)."""
    process = subprocess.Popen(project.command(*FORCED_RUN), cwd=ROOT, env=project.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    watchdog = threading.Timer(TIMEOUT, kill, (process, "group"))
    watchdog.start()
    lines: list[str] = []
    victims: list[int] = []
    plugin_lines = -1  # counting starts at the first "Beginning sync of"
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if plugin_lines < 0 and SYNC_BEGINS in line:
                plugin_lines = 0
            if plugin_lines >= 0 and PLUGIN_LINE.search(line):
                plugin_lines += 1
            if not victims and plugin_lines > point.after_lines:
                time.sleep(point.delay_ms / 1000)
                victims = kill(process, point.victim)
        process.wait(timeout=TIMEOUT)
        deadline = time.monotonic() + 30
        while (left := group_members(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"processes outlived the kill of {point.victim} by 30 s: {left}"
    finally:
        watchdog.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    run = KilledRun(process.returncode, "".join(lines), victims)
    assert victims, f"the run ended before the kill point {point}:\n{run.explain()}"
    if point.victim in ("group", "meltano"):
        assert run.meltano_rc == -signal.SIGKILL, run.explain()
    else:  # Meltano outlived its plugin and must report the failure
        assert run.meltano_rc not in (0, -signal.SIGKILL), run.explain()
    return run


@dataclass
class SavedState:
    """The two things test_kill9.assert_meta_never_ahead reads of a pipeline."""

    db_url: str
    saved: dict[str, Any]

    def state(self) -> dict[str, Any]:
        return self.saved


def saved_states(project: MeltanoProject) -> list[dict[str, Any]]:
    """Meltano's partial and completed state for the job, read from its system database: a
    killed run leaves its progress in the partial one, and both must be safe to resume from."""
    path = project.env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT partial_state, completed_state FROM state WHERE state_id = ?",
                           (STATE_ID,)).fetchone()
    return [json.loads(s).get("singer_state", {}) for s in row or () if s]


def assert_not_yet_truth(url: str, emulator: RunningEmulator, point: KillPoint) -> None:
    """The kill interrupted data: right after it the database is not the truth yet."""
    try:
        diffs = diff_all(Replica(url), TABLES, lambda ns, t: fetch_truth(emulator.base_url, ns, t))
    except Exception:  # noqa: BLE001 (a table not created yet: certainly not the truth)
        return
    assert diffs, f"{point}: the database already equalled the truth when killed"


def kill_then_recover(project: MeltanoProject, emulator: RunningEmulator, url: str,
                      point: KillPoint, changed_at: str | None, check_refusal: bool = False
                      ) -> None:
    killed = run_and_kill(project, point)
    assert_not_yet_truth(url, emulator, point)
    states = saved_states(project)
    # an incremental resumes from the completed state of the runs before it: never lost
    assert changed_at is None or any(s.get("bookmarks") for s in states), states
    for saved in states:
        assert_meta_never_ahead(SavedState(url, saved), emulator, changed_at)  # type: ignore[arg-type]

    if check_refusal:
        assert point.victim in ("group", "meltano"), "only a dead Meltano leaves a running job"
        refused = project.run(*RUN, check=False)
        assert refused.returncode != 0, refused.explain()
        assert "is already running" in refused.stderr, refused.explain()
    rerun = project.run(*FORCED_RUN, check=False)
    assert rerun.returncode == 0, f"{point}: {rerun.explain()}\n--- killed run\n{killed.explain()}"
    assert_equals_truth(url, emulator, TABLES)
    assert_no_duplicates(url)
    bookmarks = meltano_state(project, STATE_ID)["singer_state"]["bookmarks"]
    synced = Replica(url).table_sync()
    assert {f"{ns}-{t}": ts for (ns, t), (ts, _) in synced.items()} == {
        stream: as_utc(b["timestamp"]) for stream, b in bookmarks.items()}, point


def use_database(project: MeltanoProject, url: str) -> None:
    project.env.update({"TARGET_DAP_SQL_SQLALCHEMY_URL": url, **TARGET_ENV})


@pytest.mark.parametrize("point", SNAPSHOT_POINTS, ids=map(str, SNAPSHOT_POINTS))
def test_kill9_meltano_snapshot_sqlite(point: KillPoint, meltano_project: MeltanoProject,
                                       dap_emulator: RunningEmulator) -> None:
    url = meltano_project.env["TARGET_DAP_SQL_SQLALCHEMY_URL"]
    use_database(meltano_project, url)
    kill_then_recover(meltano_project, dap_emulator, url, point, None)


def test_kill9_meltano_incrementals_sqlite(meltano_project: MeltanoProject,
                                           dap_emulator: RunningEmulator) -> None:
    """One replica through four incrementals, each after inserts, updates and deletes on every
    table and each killed once (chained: a snapshot per point would double the runtime)."""
    url = meltano_project.env["TARGET_DAP_SQL_SQLALCHEMY_URL"]
    use_database(meltano_project, url)
    meltano_project.run(*RUN)
    for i, point in enumerate(INCREMENTAL_POINTS):
        changed_at = ""
        for namespace, table in TABLES:
            changed_at = dap_emulator.advance(namespace, table, **CHANGES)
        kill_then_recover(meltano_project, dap_emulator, url, point, changed_at,
                          check_refusal=i == 0)


@pytest.mark.postgres
@pytest.mark.parametrize("point", PG_POINTS, ids=map(str, PG_POINTS))
def test_kill9_meltano_snapshot_postgres(point: KillPoint, meltano_project: MeltanoProject,
                                         dap_emulator: RunningEmulator, pg_url: str) -> None:
    use_database(meltano_project, pg_url)
    kill_then_recover(meltano_project, dap_emulator, pg_url, point, None)
