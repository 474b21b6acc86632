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
