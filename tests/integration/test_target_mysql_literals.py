"""Hostile values reach MariaDB as themselves through the fast row literals (mysql_literals.py),
whatever `sql_mode` the server defaults to: the target's session sets its own, and the text
escaping follows the session (NO_BACKSLASH_ESCAPES would make `\\'` end a string)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from target_dap_sql.dialects import dialect_for_url
from target_dap_sql.dialects.base import Batch
from target_dap_sql.layout import LayoutOptions, TableLayout, build_layout
from tests.integration.test_target_mysql import mysql_query
from tests.unit.target.dap_messages import META, singer_schema

HOSTILE = ["it's", "back\\slash", "\\'; DROP TABLE x; --", "q\"uote", "nul\x00byte", "ctrl-z\x1a",
           "\\Z\\0\\n", "🎓 4-byte ☃", "'", "\\", "", "line\r\nbreak", "%s %(x)s"]


def _layout() -> TableLayout:
    dap = {"type": "object", "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "string", "maxLength": 64}},
                "required": ["id"]},
        "value": {"type": "object", "properties": {
            "body": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "uid": {"type": "string", "format": "uuid"},
            "flag": {"type": "boolean"}, "ratio": {"type": "number", "format": "float64"}}},
        "meta": META}}
    message = singer_schema("canvas", "hostile", 1, dap)
    return build_layout(message["stream"], message["schema"], message["key_properties"],
                        LayoutOptions())


@pytest.mark.mariadb
@pytest.mark.parametrize("server_mode", ["NO_BACKSLASH_ESCAPES", ""])
def test_hostile_values_round_trip_whatever_the_server_sql_mode(
        mariadb_url: str, server_mode: str) -> None:
    (old_mode,), = mysql_query(mariadb_url, "SELECT @@GLOBAL.sql_mode")
    mysql_query(mariadb_url, f"SET GLOBAL sql_mode = '{server_mode}'")
    try:
        layout = _layout()
        dialect = dialect_for_url(mariadb_url)
        dialect.ensure_meta_tables()
        dialect.prepare_table(layout, drop_removed_columns=False)
        names = [c.name for c in layout.record_columns]
        at = dt.datetime(2024, 1, 2, 3, 4, 5, 60)
        uid = uuid.UUID("56d0c6e2-3260-4a64-bd82-3871b4e9a334")
        values: dict[str, Any] = {"at": at, "day": dt.date(1, 1, 1), "uid": uid.bytes,
                                  "flag": True, "ratio": -0.0}
        rows = [tuple(text if n in ("id", "body") else values.get(n) for n in names)
                for text in HOSTILE]
        dialect.write_batch(layout, Batch(rows, []), staging=False, meta=None)
        dialect.settle()
        stored = mysql_query(mariadb_url, 'SELECT "id", "body", "at", "day", "uid", "flag" '
                             'FROM "canvas__hostile"')
        whole = at.replace(microsecond=0)  # DAP's MySQL `datetime` keeps whole seconds
        assert sorted(stored) == sorted((t, t, whole, dt.date(1, 1, 1), uid.bytes, 1)
                                        for t in HOSTILE)
        # deletes by a hostile key delete exactly that row
        gone = [r for r in rows if r[0] in ("it's", "\\", "'")]
        dialect.write_batch(layout, Batch([], gone), staging=False, meta=None)
        dialect.settle()
        left = {r[0] for r in mysql_query(mariadb_url, 'SELECT "id" FROM "canvas__hostile"')}
        assert left == set(HOSTILE) - {"it's", "\\", "'"}
        dialect.close()
    finally:
        mysql_query(mariadb_url, f"SET GLOBAL sql_mode = '{old_mode}'")
