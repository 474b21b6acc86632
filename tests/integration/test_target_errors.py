"""Bad input and crashes: one clear error line, non-zero exit, nothing uncommitted kept, and STATE
never ahead of the database. Drives the real `target-dap-sql` console script."""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.replica import Replica
from tests.integration.helpers import (
    SUBMISSIONS,
    SUBMISSIONS_V1,
    bookmark,
    delete,
    logged_errors,
    snapshot,
    upsert,
)
from tests.unit.target.dap_messages import TARGET, jsonl, record, run_cli, submission
from tests.unit.target.target_db import TargetDb, db_fixture  # noqa: F401 (fixture)


def _rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute('SELECT "id", "grade" FROM "canvas__submissions" ORDER BY 1').fetchall()


NOT_UTF8_RECORD = jsonl([upsert(9, grade="caf\u00e9")]).replace(b"\\u00e9", b"\xe9", 1)
_RECORD_AT = NOT_UTF8_RECORD.index(b'"record":') + len(b'"record":')


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        (b'{"type": "RECORD", "stream": \n', "line 4: not a valid Singer message: "
         "Input data was truncated"),
        (jsonl([record(SUBMISSIONS, {}, submission(9))]),
         "line 4, stream 'canvas-submissions': record is missing key property 'id'"),
        (jsonl([record(SUBMISSIONS, {"id": None}, submission(9))]),
         "line 4, stream 'canvas-submissions': record is missing key property 'id'"),
        (jsonl([upsert(9, attempt="two")]),
         "line 4, stream 'canvas-submissions': invalid record: Expected `int | null`, got `str` - "
         "at `$.attempt`"),
        (jsonl([upsert(9, workflow_state="bogus")]),
         "line 4, stream 'canvas-submissions': invalid record: Invalid enum value 'bogus' - "
         "at `$.workflow_state`"),
        (jsonl([record("canvas-users", {"id": 9}, {})]),
         "line 4, stream 'canvas-users': RECORD before any SCHEMA for this stream"),
        (b'{"type": "SURPRISE"}\n', "line 4: unknown message type 'SURPRISE'"),
        # not UTF-8: the same message on every msgspec version (0.23 stopped naming the byte)
        (NOT_UTF8_RECORD, "line 4, stream 'canvas-submissions': record is not valid UTF-8 "
         f"(byte 0xe9 at byte {NOT_UTF8_RECORD.index(b'caf') + 4 - _RECORD_AT} of the record)"),
        (b'{"type": "RECORD", "stream": "canvas-subm\xe9ssions", "record": {}}\n',
         "line 4: not valid UTF-8 (byte 0xe9 at byte 42 of the line)"),
    ],
)
def test_bad_input_fails_with_one_line_and_commits_nothing_of_the_batch(
    tmp_path: Path, bad_line: bytes, message: str
) -> None:
    data = jsonl([SUBMISSIONS_V1, upsert(1), bookmark("2024-01-02T00:00:00Z")]) + bad_line
    data += jsonl([upsert(2)])
    run = run_cli({"sqlalchemy_url": "sqlite:///dap.db"}, data, tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [f"target-dap-sql: {message}"]
    assert "Traceback" not in run.stderr
    assert run.states == []
    assert _rows(tmp_path / "dap.db") == []


def test_failure_keeps_earlier_commits_and_state_never_passes_them(tmp_path: Path) -> None:
    data = jsonl([SUBMISSIONS_V1, upsert(1), upsert(2), bookmark("2024-01-02T00:00:00Z"),
                  upsert(3), upsert(4, attempt=2**40)])
    run = run_cli({"sqlalchemy_url": "sqlite:///dap.db", "batch_size_rows": 2}, data, tmp_path)
    assert run.returncode == 1
    assert "Expected `int` <= 2147483647 - at `$.attempt`" in run.stderr
    assert _rows(tmp_path / "dap.db") == [(1, "A1"), (2, "A2")]
    assert run.states == []


#: The end of every refusal of a URL whose password is not percent-encoded.
HINT = ("; a password containing '#', '/', '?', '@' or '%' must be percent-encoded (%23, %2F, "
        "%3F, %40, %25)")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@localhost/db",
         "cannot connect to MySQL at localhost:3306/db: Can't connect to MySQL server on "
         "'localhost' ([Errno 111] Connection refused)"),
        ("oracle://scott:hunter2@host/db",
         "sqlalchemy_url has scheme 'oracle'; expected sqlite:///PATH or "
         "postgresql://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB"),
        ("postgresql://u:hunter2@127.0.0.1:notaport/db",
         "sqlalchemy_url is not a valid PostgreSQL URL (host, port or database cannot be read "
         "from it)"),
        # URL delimiters in a password: parsers cut it there and quote the rest as a port
        *[(f"{scheme}://u:{password}@127.0.0.1:5432/db",
           "sqlalchemy_url: the password holds '#', '/' or '?', which end the host part of a "
           f"URL{HINT}")
          for scheme in ("postgresql", "mysql")
          for password in ("hunter2#x", "hunter2/x", "hun?ter2", "12#hunter2")],
        # An '@': libpq ends the user part at the first one (printing the rest of the password
        # as a host it cannot resolve), urllib and PyMySQL at the last one
        *[(f"{scheme}://{userinfo}@127.0.0.1:5432/db",
           "sqlalchemy_url: the user name or password holds an '@', which ends the user part "
           f"of a URL{HINT}")
          for scheme in ("postgresql", "mysql")
          for userinfo in ("u:hun@ter2", "u:hunter2@x", "u:my%pa55@hunter2", "u@x.edu:hunter2")],
        # A '%' that starts no %XX escape: libpq refuses it quoting the token (the password)
        *[(f"{scheme}://u:{password}@127.0.0.1:5432/db{query}",
           "sqlalchemy_url: the password holds a '%' that does not start a percent-encoded byte "
           f"(%XX){HINT}")
          for scheme in ("postgresql", "mysql")
          for password, query in (("hunter2%zz", ""), ("%hunter2", ""), ("hunter2%4", ""),
                                  ("x", "?password=hunter2%g1"))],
        ("sqlite:///no/such/dir/dap.db",
         "cannot open SQLite database no/such/dir/dap.db: its directory does not exist"),
        ("postgresql://u:hunter2@127.0.0.1:1/db",
         "cannot connect to PostgreSQL at 127.0.0.1:1/db: connection failed: connection to "
         "server at \"127.0.0.1\", port 1 failed: Connection refused"),
    ],
)
def test_bad_or_unreachable_database(tmp_path: Path, url: str, message: str) -> None:
    run = run_cli({"sqlalchemy_url": url}, [SUBMISSIONS_V1, upsert(1)], tmp_path)
    assert run.returncode == 1
    assert logged_errors(run.stderr) == [f"target-dap-sql: {message}"]
    assert not any(piece in run.stderr for piece in ("hunter2", "ter2", "pa55"))
    assert "Traceback" not in run.stderr


def test_kill_9_mid_stream_then_rerun_gives_the_same_database(db: TargetDb,
                                                             tmp_path: Path) -> None:
    first_part = [SUBMISSIONS_V1, *snapshot(1, range(1, 31)), bookmark("2024-01-01T00:00:00Z")]
    second_part = [*[upsert(i, grade="u") for i in range(20, 40)], delete(1),
                   bookmark("2024-01-02T00:00:00Z")]
    config_path = tmp_path / "config.json"
    # batch_max_seconds=0: every message after the STATE is a commit point, so the STATE line
    # appears while the process is still reading.
    config_path.write_text(json.dumps({"sqlalchemy_url": db.url, "batch_max_seconds": 0}))
    proc = subprocess.Popen([TARGET, "--config", str(config_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(jsonl(first_part) + jsonl(second_part[:1]))
    proc.stdin.flush()
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready, "the target wrote no STATE line"
    emitted = json.loads(proc.stdout.readline())
    proc.stdin.write(jsonl(second_part[1:10]))
    proc.stdin.flush()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert emitted == {"bookmarks": {SUBMISSIONS: {"timestamp": "2024-01-01T00:00:00Z",
                                                   "schema_version": 1}}}
    # The meta row is exactly at the emitted STATE; the snapshot rows are all there.
    assert db.meta_rows()[0][2] == db.timestamp("2024-01-01 00:00:00")
    assert {r[0] for r in db.rows("canvas", "submissions", '"id"')} >= set(range(1, 31))

    rerun = run_cli({"sqlalchemy_url": db.url}, [SUBMISSIONS_V1, *second_part], tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    after_crash = db.dump()

    clean = _fresh_clean_run(db, tmp_path, first_part + second_part)
    assert after_crash == clean


def _fresh_clean_run(db: TargetDb, tmp_path: Path, messages: list[dict[str, Any]]) -> Any:
    """The same input applied once, without a crash, to an empty database of the same kind."""
    if db.kind == "sqlite":
        other = TargetDb("sqlite", f"sqlite:///{tmp_path / 'clean.db'}", tmp_path / "clean.db")
    else:
        import psycopg

        name = db.url.rsplit("/", 1)[1] + "_clean"
        admin = db.url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        other = TargetDb("postgres", db.url.rsplit("/", 1)[0] + "/" + name)
    run = run_cli({"sqlalchemy_url": other.url}, messages, tmp_path)
    assert run.returncode == 0, run.stderr
    return other.dump()


@pytest.mark.parametrize(("config", "env", "message"), [
    (None, {}, "--config {tmp}/missing.json: no such file"),
    ("[1, 2]", {}, "--config {tmp}/c.json: not a JSON object, but list"),
    ("{nope", {}, "--config {tmp}/c.json: not a readable JSON file (Expecting property name "
                  "enclosed in double quotes: line 1 column 2 (char 1))"),
    ('{"batch_size_rows": 0}', {}, "setting batch_size_rows must be at least 1, got 0"),
    ('{"batch_max_seconds": -5}', {}, "setting batch_max_seconds must not be negative, got -5"),
    ('{"sqlalchemy_url": ""}', {}, "setting sqlalchemy_url is empty; leave it out for the "
                                   "default sqlite:///dap.db, or give a database URL"),
    ("ENV", {"TARGET_DAP_SQL_BATCH_SIZE_ROWS": "abc"},
     "environment variable TARGET_DAP_SQL_BATCH_SIZE_ROWS='abc': not an integer"),
])
def test_bad_settings_are_one_clear_line(tmp_path: Path, config: str | None,
                                         env: dict[str, str], message: str) -> None:
    if config == "ENV":
        where = "ENV"
    else:
        where = str(tmp_path / ("missing.json" if config is None else "c.json"))
        if config is not None:
            Path(where).write_text(config)
    run = subprocess.run([TARGET, "--config", where], input=jsonl([SUBMISSIONS_V1, upsert(1)]),
                         capture_output=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, **env})
    stderr = run.stderr.decode()
    assert run.returncode == 1
    assert logged_errors(stderr) == [f"target-dap-sql: {message.format(tmp=tmp_path)}"]
    assert "Traceback" not in stderr
    assert not (tmp_path / "dap.db").exists()


@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgres", marks=pytest.mark.postgres)])
def test_state_of_a_generic_stream_is_never_ahead_of_its_rows(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """A STATE line covers every row before it as soon as it is printed: kill -9 right after it
    and every row is there (background slices of other taps' streams were once left in flight:
    20,000 of 29,999 rows after such a kill)."""
    url = (f"sqlite:///{tmp_path}/dap.db" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    rows = 29_999
    schema = {"type": "SCHEMA", "stream": "shop-things", "key_properties": ["id"],
              "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                          "name": {"type": "string"}}}}

    def records(ids: range) -> list[dict]:
        return [{"type": "RECORD", "stream": "shop-things", "record": {"id": i, "name": f"n{i}"}}
                for i in ids]

    state_line = {"type": "STATE", "value": {"bookmarks": {"shop-things": {"position": rows}}}}
    (tmp_path / "c.json").write_text(json.dumps({"sqlalchemy_url": url,
                                                 "batch_max_seconds": 1}))
    target = subprocess.Popen([TARGET, "--config", str(tmp_path / "c.json")], cwd=tmp_path,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    assert target.stdin is not None and target.stdout is not None
    target.stdin.write(jsonl([schema, *records(range(rows)), state_line]))
    target.stdin.flush()
    time.sleep(1.5)
    # the next records find batch_max_seconds passed: commit everything, then print the STATE
    target.stdin.write(jsonl(records(range(rows, rows + 1000))))
    target.stdin.flush()  # and stdin stays open: no end of input, no final commit
    ready, _, _ = select.select([target.stdout], [], [], 120)
    assert ready, "no STATE within 120 s"
    state = json.loads(target.stdout.readline())
    target.send_signal(signal.SIGKILL)
    target.wait(timeout=30)
    assert state == {"bookmarks": {"shop-things": {"position": rows}}}
    stored = {row["id"] for row in Replica(url).rows("shop", "things")}
    assert set(range(rows)) <= stored, f"{rows - len(set(range(rows)) & stored)} rows missing"
