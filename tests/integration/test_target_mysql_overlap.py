"""Statements sent on a helper thread (dialects/mysql_send.py) must not keep a terminated target
alive: SIGTERM/Ctrl-C while a statement waits in the server (here for a row lock another
connection holds) ends the run at once, as when the load thread sent the statement itself,
and nothing of the batch (nor its bookmark) is kept; the next run converges."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.helpers import SUBMISSIONS, bookmark, submissions_schema_message, upsert
from tests.integration.test_target_mysql import meta, mysql_connect, mysql_query
from tests.unit.target.dap_messages import TARGET, jsonl, run_cli

pytestmark = pytest.mark.mariadb


def _lock_waits(url: str) -> int:
    rows = mysql_query(url, "SELECT COUNT(*) FROM information_schema.innodb_trx "
                            "WHERE trx_state = 'LOCK WAIT'")
    return int(rows[0][0])


@pytest.mark.parametrize(("signum", "rows"), [
    (signal.SIGTERM, 35), (signal.SIGINT, 35),
    # the first 10k-row slice (no bookmark) waits on the load thread; the run's end waits for it
    (signal.SIGTERM, 10_050)])
def test_a_signal_ends_a_run_whose_statement_waits_for_a_lock(
        mariadb_url: str, tmp_path: Path, signum: int, rows: int) -> None:
    first = run_cli({"sqlalchemy_url": mariadb_url},
                    [submissions_schema_message(1), upsert(1), upsert(5),
                     bookmark("2024-01-01T00:00:00Z")], tmp_path)
    assert first.returncode == 0, first.stderr
    holder = mysql_connect(mariadb_url)
    changes = [submissions_schema_message(1), upsert(5, grade="new"),
               *[upsert(i, grade="new") for i in range(6, 6 + rows)],
               bookmark("2024-01-02T00:00:00Z")]
    try:
        with holder.cursor() as cur:  # the run's last batch (with its bookmark) waits for id 5
            cur.execute("SELECT 1 FROM `canvas__submissions` WHERE `id` = 5 FOR UPDATE")
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"sqlalchemy_url": mariadb_url}))
        proc = subprocess.Popen([TARGET, "--config", str(config)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        assert proc.stdin is not None
        proc.stdin.write(jsonl(changes))
        proc.stdin.close()
        deadline = time.monotonic() + 30
        while not _lock_waits(mariadb_url) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _lock_waits(mariadb_url), "the run never waited for the lock"
        time.sleep(1)  # the rest of the input read: the run waits for the load at its end
        proc.send_signal(signum)
        started = time.monotonic()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("the target kept running until its statement's lock wait ended")
        assert time.monotonic() - started < 10
        assert proc.stdout is not None
        out = proc.stdout.read()
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 128 + signum
    assert out == b""  # no STATE: nothing of the batch was committed
    assert mysql_query(mariadb_url, 'SELECT COUNT(*) FROM "canvas__submissions" '
                                    """WHERE "grade" = 'new'""") == [(0,)]
    assert meta(mariadb_url)[0][2].day == 1
    again = run_cli({"sqlalchemy_url": mariadb_url}, changes, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.states[-1]["bookmarks"][SUBMISSIONS]["timestamp"] == "2024-01-02T00:00:00Z"
    assert mysql_query(mariadb_url, 'SELECT COUNT(*) FROM "canvas__submissions" '
                                    """WHERE "grade" = 'new'""") == [(rows + 1,)]
