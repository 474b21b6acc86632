"""PostgreSQL layout = the official replicator's (docs/database-layout.md), read from pg_catalog."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.unit.target.dap_messages import (
    activate,
    record,
    run_in_process,
    singer_schema,
    state,
    submission,
    submissions_schema,
)

pytestmark = pytest.mark.postgres
S = "canvas-submissions"
DAP_CLI = Path(__file__).resolve().parents[2] / ".venv-dap" / "bin" / "dap"

# Expected types straight from the official mapping table (docs/database-layout.md).
OFFICIAL_V1 = [
    ("id", "bigint", True),
    ("assignment_id", "bigint", False),
    ("attempt", "integer", False),
    ("workflow_state", "canvas.submissions__workflow_state", True),
    ("grade", "character varying(255)", False),
    ("score", "double precision", False),
    ("excused", "boolean", False),
    ("submitted_at", "timestamp without time zone", False),
    ("lti_id", "uuid", False),
    ("body", "text", False),
    ("media", "jsonb", False),
    ("tags", "text[]", False),
]


def _columns(url: str, table: str = "canvas.submissions") -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (table,)).fetchall()


def _one(url: str, sql: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


def _load(url: str, version: int, **config: object) -> None:
    run_in_process({"sqlalchemy_url": url, **config}, [
        singer_schema("canvas", "submissions", version, submissions_schema(version)),
        record(S, {"id": version}, submission(version)),
        state({S: (f"2024-01-0{version}T00:00:00Z", version)}),
    ])


def test_columns_pk_enums_and_comments_match_the_official_layout(pg_url: str) -> None:
    _load(pg_url, 1)
    assert _columns(pg_url) == OFFICIAL_V1
    assert _one(pg_url, "SELECT conname FROM pg_constraint WHERE contype = 'p' "
                        "AND conrelid = 'canvas.submissions'::regclass") == "pk_submissions"
    assert _one(pg_url, "SELECT enum_range(NULL::canvas.submissions__workflow_state)::text"
                ) == "{submitted,graded,__dap_unspecified__}"
    assert _one(pg_url, "SELECT obj_description('canvas.submissions'::regclass, 'pg_class')"
                ) == "Submissions\n\nSubmissions of assignments."
    assert _one(pg_url, "SELECT col_description('canvas.submissions'::regclass, 2)"
                ) == "The assignment this submission is for."
    assert _columns(pg_url, "instructure_dap.table_sync") == [
        ("id", "bigint", True),
        ("source_namespace", "character varying(64)", True),
        ("source_table", "character varying(64)", True),
        ("timestamp", "timestamp without time zone", True),
        ("schema_version", "bigint", True),
        ("target_schema", "character varying(64)", False),
        ("target_table", "character varying(64)", True),
        ("schema_description_format", "character varying(64)", True),
        ("schema_description", "text", True),
    ]
    assert _one(pg_url, "SELECT attidentity FROM pg_attribute WHERE attname = 'id' AND "
                        "attrelid = 'instructure_dap.table_sync'::regclass") == "d"


def test_schema_evolution_alters_types_in_place(pg_url: str) -> None:
    _load(pg_url, 1)
    _load(pg_url, 2)
    _load(pg_url, 3)
    columns = {name: (kind, not_null) for name, kind, not_null in _columns(pg_url)}
    assert columns["grade"] == ("character varying(1024)", False)   # widened
    assert columns["late_days"] == ("integer", False)                # added
    assert columns["body"] == ("text", False)                        # removed upstream, kept
    assert _one(pg_url, "SELECT enum_range(NULL::canvas.submissions__workflow_state)::text"
                ) == "{submitted,graded,__dap_unspecified__,pending_review}"


def test_drop_removed_columns_setting(pg_url: str) -> None:
    _load(pg_url, 2)
    _load(pg_url, 3, drop_removed_columns=True)
    assert "body" not in [c[0] for c in _columns(pg_url)]


def test_enum_type_text(pg_url: str) -> None:
    _load(pg_url, 1, enum_type="text")
    assert ("workflow_state", "text", True) in _columns(pg_url)
    assert _one(pg_url, "SELECT count(*) FROM pg_type WHERE typtype = 'e'") == 0


def test_official_dap_cli_drops_a_table_we_created(pg_url: str, tmp_path: Path) -> None:
    if not DAP_CLI.exists():
        pytest.fail(f"official client missing at {DAP_CLI}")
    _load(pg_url, 1)
    proc = subprocess.run(
        [str(DAP_CLI), "--non-interactive", "dropdb", "--namespace", "canvas", "--table",
         "submissions", "--connection-string", pg_url],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "DAP_TRACKING": "false"})
    assert proc.returncode == 0, proc.stderr
    assert _one(pg_url, "SELECT to_regclass('canvas.submissions')") is None
    assert _one(pg_url, "SELECT count(*) FROM instructure_dap.table_sync") == 0
    assert _one(pg_url, "SELECT version FROM instructure_dap.database_version") == 1


def _flat_arrays(url: str) -> list[str]:
    """Array columns of canvas.submissions whose catalog lost the dimension (attndims = 0)."""
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = 'canvas.submissions'::regclass AND a.attnum > 0 "
            "AND t.typcategory = 'A' AND a.attndims = 0 ORDER BY 1").fetchall()]


def test_array_columns_keep_their_dimension_like_dap_initdb(pg_url: str) -> None:
    """attndims = 1 on arrays, as `dap initdb` has it; 0 makes `dap syncdb` ALTER the table."""
    _load(pg_url, 1)  # fresh table
    schema = submissions_schema(1)
    schema["properties"]["value"]["properties"]["codes"] = {
        "type": "array", "items": {"type": "integer", "format": "int32"}}
    snapshot = [singer_schema("canvas", "submissions", 1, schema), activate(S, 7),
                record(S, {"id": 1}, submission(1, codes=[1, 2])), activate(S, 7),
                state({S: ("2024-01-02T00:00:00Z", 1)})]
    run_in_process({"sqlalchemy_url": pg_url}, snapshot)  # evolution adds codes, then LIKE
    with psycopg.connect(pg_url) as conn:
        dims = dict(conn.execute(
            "SELECT attname, attndims FROM pg_attribute WHERE attrelid = "
            "'canvas.submissions'::regclass AND attname IN ('tags', 'codes')").fetchall())
        assert dims == {"tags": 1, "codes": 1}
        # a table an older target-dap-sql snapshotted: repaired in place, no rewrite
        conn.execute("CREATE TABLE canvas.flat (LIKE canvas.submissions INCLUDING ALL)")
        conn.execute("DROP TABLE canvas.submissions")
        conn.execute("ALTER TABLE canvas.flat RENAME TO submissions")
        conn.execute("INSERT INTO canvas.submissions (id, workflow_state, tags) "
                     "VALUES (5, 'graded', '{a}')")
    assert _flat_arrays(pg_url) == ["codes", "tags"]
    with psycopg.connect(pg_url) as conn:
        node = conn.execute("SELECT relfilenode FROM pg_class WHERE oid = "
                            "'canvas.submissions'::regclass").fetchone()
    run_in_process({"sqlalchemy_url": pg_url}, [
        singer_schema("canvas", "submissions", 1, schema),
        record(S, {"id": 2}, submission(2, codes=[])), state({S: ("2024-01-03T00:00:00Z", 1)})])
    assert _flat_arrays(pg_url) == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT relfilenode FROM pg_class WHERE oid = "
                            "'canvas.submissions'::regclass").fetchone() == node
        assert conn.execute("SELECT id, tags, codes FROM canvas.submissions ORDER BY id"
                            ).fetchall() == [(2, ["late", "ü"], []), (5, ["a"], None)]


def test_a_view_on_a_flat_array_column_is_no_reason_to_fail(pg_url: str) -> None:
    _load(pg_url, 1)
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE canvas.flat (LIKE canvas.submissions INCLUDING ALL)")
        conn.execute("DROP TABLE canvas.submissions")
        conn.execute("ALTER TABLE canvas.flat RENAME TO submissions")
        conn.execute("CREATE VIEW canvas.tagged AS SELECT id, tags FROM canvas.submissions")
    _load(pg_url, 1)  # warns and loads
    assert _flat_arrays(pg_url) == ["tags"]
    assert _one(pg_url, "SELECT tags::text FROM canvas.tagged") == "{late,ü}"
