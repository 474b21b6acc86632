"""An error while the target ends its input (process_endofpipe: the last commit) is raised as the
target's one-line error, not replaced by what closing the broken connection raises, and the
connection and the record workers are closed all the same."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import psycopg
import pytest

from target_dap_sql.errors import DatabaseError
from target_dap_sql.target import TargetDapSQL


@pytest.mark.postgres
def test_connection_lost_at_the_last_commit_is_one_clear_error(
        postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    target = TargetDapSQL(config={"sqlalchemy_url": url}, parse_env_config=False)
    commit_all = TargetDapSQL._commit_all

    def server_gone_first(self: TargetDapSQL) -> None:
        pid = self._dialect._conn.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        commit_all(self)

    monkeypatch.setattr(TargetDapSQL, "_commit_all", server_gone_first)
    closed: list[bool] = []
    monkeypatch.setattr(target._runs, "close", lambda: closed.append(True))
    messages = [{"type": "SCHEMA", "stream": "s", "key_properties": ["id"], "schema": {
        "type": "object", "properties": {"id": {"type": "integer"}}}},
        *({"type": "RECORD", "stream": "s", "record": {"id": n}} for n in range(10)),
        {"type": "STATE", "value": {"n": 10}}]
    with pytest.raises(DatabaseError, match="terminating connection due to administrator"):
        target.listen(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    assert target._dialect._conn is None  # type: ignore[attr-defined]
    assert closed


@pytest.mark.parametrize("stop", [SystemExit(143), KeyboardInterrupt()], ids=repr)
def test_a_signal_at_the_last_commit_rolls_back_and_closes(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, stop: BaseException) -> None:
    """SIGTERM (the SDK's handler: SystemExit) or Ctrl-C while the last batch commits: no STATE,
    nothing of the batch committed, the connection and the workers closed."""
    import contextlib
    import sqlite3

    path = tmp_path / "dap.db"
    target = TargetDapSQL(config={"sqlalchemy_url": f"sqlite:///{path}"}, parse_env_config=False)
    commit = target._dialect._commit  # type: ignore[attr-defined]

    def interrupted() -> None:  # the batch is written, its transaction not committed yet
        if not target._sinks:  # the table is prepared first
            return commit()
        raise stop

    monkeypatch.setattr(target._dialect, "_commit", interrupted)
    closed: list[bool] = []
    monkeypatch.setattr(target._runs, "close", lambda: closed.append(True))
    messages = [{"type": "SCHEMA", "stream": "s", "key_properties": ["id"], "schema": {
        "type": "object", "properties": {"id": {"type": "integer"}}}},
        *({"type": "RECORD", "stream": "s", "record": {"id": n}} for n in range(10)),
        {"type": "STATE", "value": {"n": 10}}]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(type(stop)):
        target.listen(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    assert out.getvalue() == ""
    assert target._dialect._conn is None  # type: ignore[attr-defined]
    assert closed
    with contextlib.closing(sqlite3.connect(path, timeout=0)) as other:
        other.execute("BEGIN IMMEDIATE")
        assert other.execute("SELECT count(*) FROM s").fetchone() == (0,)
