"""`target-dap-sql drop|list|export-state|dbt-sources` on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from target_dap_sql.admin import admin_command
from tests.e2e.replica import Replica
from tests.integration.test_target_mysql import mysql_query, tables
from tests.unit.target.dap_messages import (
    TARGET,
    record,
    run_in_process,
    singer_schema,
    state,
    submission,
    submissions_schema,
    web_logs_schema,
)

S, W = "canvas-submissions", "canvas_logs-web_logs"


@pytest.fixture(name="url", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                                    pytest.param("mariadb", marks=pytest.mark.mariadb)])
def url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/dap.db"
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "mariadb_url")


def _replicate(url: str) -> None:
    run_in_process({"sqlalchemy_url": url}, [
        singer_schema("canvas", "submissions", 2, submissions_schema(2)),
        record(S, {"id": 1}, submission(1)), record(S, {"id": 2}, submission(2)),
        singer_schema("canvas_logs", "web_logs", 1, web_logs_schema()),
        record(W, {"id": "a"}, {"url": "/x", "http_method": "get"}),
        state({S: ("2024-01-02T03:04:05Z", 2), W: ("2024-01-03T00:00:00Z", 1)})])


def admin(tmp_path: Path, url: str, *args: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"sqlalchemy_url": url}))
    # Meltano's order: `--config FILE` before the command.
    return subprocess.run([TARGET, "--config", str(config), *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120, env={**os.environ, **(env or {})})


def _tables(url: str) -> list[str]:
    if url.startswith("mysql"):
        return tables(url)
    if url.startswith("sqlite"):
        _, rows = Replica(url).query("SELECT name FROM sqlite_master WHERE type = 'table' "
                                     "ORDER BY 1")
        return [r[0] for r in rows]
    _, rows = Replica(url).query("SELECT table_schema || '.' || table_name FROM "
                                 "information_schema.tables WHERE table_schema NOT IN "
                                 "('pg_catalog', 'information_schema') ORDER BY 1")
    return [r[0] for r in rows]


def test_list_and_export_state(url: str, tmp_path: Path) -> None:
    _replicate(url)
    listing = admin(tmp_path, url, "list", "--json")
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout) == [
        {"namespace": "canvas", "table": "submissions", "timestamp": "2024-01-02T03:04:05Z",
         "schema_version": 2, "rows": 2},
        {"namespace": "canvas_logs", "table": "web_logs", "timestamp": "2024-01-03T00:00:00Z",
         "schema_version": 1, "rows": 1}]
    text = admin(tmp_path, url, "list").stdout.splitlines()
    assert text == [
        "namespace    table        timestamp             schema_version  rows",
        "canvas       submissions  2024-01-02T03:04:05Z  2               2",
        "canvas_logs  web_logs     2024-01-03T00:00:00Z  1               1"]
    exported = admin(tmp_path, url, "export-state")
    assert json.loads(exported.stdout) == {"bookmarks": {
        S: {"timestamp": "2024-01-02T03:04:05Z", "schema_version": 2},
        W: {"timestamp": "2024-01-03T00:00:00Z", "schema_version": 1}}}


def test_drop_table_enums_and_meta_row(url: str, tmp_path: Path) -> None:
    _replicate(url)
    before = _tables(url)
    unknown = admin(tmp_path, url, "drop", "--namespace", "canvas", "--table",
                    "submissions,nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "target-dap-sql drop: not replicated in this database: canvas.nope")
    assert _tables(url) == before
    done = admin(tmp_path, url, "drop", "--namespace", "canvas", "--table", "submissions")
    assert done.returncode == 0, done.stderr
    assert sorted(set(before) - set(_tables(url))) == [
        {"sqlite": "canvas__submissions", "postgresql": "canvas.submissions",
         "mysql": "canvas__submissions"}[Replica(url).dialect if not url.startswith("mysql")
                                         else "mysql"]]
    assert json.loads(admin(tmp_path, url, "export-state").stdout) == {"bookmarks": {
        W: {"timestamp": "2024-01-03T00:00:00Z", "schema_version": 1}}}
    if url.startswith("postgresql"):
        _, enums = Replica(url).query("SELECT typnamespace::regnamespace::text || '.' || typname "
                                      "FROM pg_type WHERE typtype = 'e' ORDER BY 1")
        assert [e[0] for e in enums] == ["canvas_logs.web_logs__http_method"]
    gone = admin(tmp_path, url, "drop", "--namespace", "canvas", "--table", "all")
    assert (gone.returncode, gone.stderr.strip()) == (
        1, "target-dap-sql drop: namespace 'canvas' has no replicated tables")


def test_dbt_sources(url: str, tmp_path: Path) -> None:
    _replicate(url)
    done = admin(tmp_path, url, "dbt-sources", "--output", str(tmp_path / "sources.yml"))
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load((tmp_path / "sources.yml").read_text())
    canvas = doc["sources"][0]
    schema = {"sqlite": "main", "postgresql": "canvas"}.get(
        Replica(url).dialect if not url.startswith("mysql") else "",
        url.rsplit("/", 1)[-1])
    assert (doc["version"], canvas["name"], canvas["schema"]) == (2, "canvas", schema)
    table = canvas["tables"][0]
    assert table["name"] == "submissions"
    assert table.get("identifier") == (None if url.startswith("postgresql")
                                       else "canvas__submissions")
    assert table["description"] == "Submissions — Submissions of assignments."
    assert table["columns"][:2] == [
        {"name": "id", "data_tests": ["unique", "not_null"]},
        {"name": "assignment_id", "description": "The assignment this submission is for."}]
    assert [c["name"] for c in table["columns"]][-1] == "late_days"
    assert [s["name"] for s in doc["sources"]] == ["canvas", "canvas_logs"]


def test_config_from_env_and_bad_config(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    run_in_process({"sqlalchemy_url": f"sqlite:///{db}"}, [
        singer_schema("canvas", "submissions", 1, submissions_schema(1)),
        record(S, {"id": 1}, submission(1)), state({S: ("2024-01-01T00:00:00Z", 1)})])
    env = {**os.environ, "TARGET_DAP_SQL_SQLALCHEMY_URL": f"sqlite:///{db}"}
    done = subprocess.run([TARGET, "export-state", "--config", "ENV"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=60)
    assert json.loads(done.stdout) == {"bookmarks": {
        S: {"timestamp": "2024-01-01T00:00:00Z", "schema_version": 1}}}
    missing = subprocess.run([TARGET, "--config", "nope.json", "list"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=60)
    assert (missing.returncode, missing.stderr.strip()) == (
        1, "target-dap-sql list: --config nope.json: no such file")


def test_command_detection_leaves_the_sdk_cli_alone(tmp_path: Path) -> None:
    assert admin_command(["--config", "list", "--input", "x"]) is None  # option values
    assert admin_command(["--config", "c.json", "list", "--json"]) == "list"
    assert admin_command(["drop", "--namespace", "canvas"]) == "drop"
    assert admin_command(["--about", "--format", "json"]) is None
    about = subprocess.run([TARGET, "--about", "--format", "json"], capture_output=True,
                           text=True, timeout=60)
    assert json.loads(about.stdout)["name"] == "target-dap-sql"


@pytest.mark.mariadb
def test_mariadb_drop_keeps_other_tables(mariadb_url: str, tmp_path: Path) -> None:
    _replicate(mariadb_url)
    admin(tmp_path, mariadb_url, "drop", "--namespace", "canvas_logs", "--table", "all")
    assert mysql_query(mariadb_url, 'SELECT "source_table" FROM '
                                    '"instructure_dap__table_sync"') == [("submissions",)]
    assert tables(mariadb_url) == ["canvas__submissions", "instructure_dap__database_version",
                                   "instructure_dap__table_sync"]


def test_help_lists_every_admin_command() -> None:
    from target_dap_sql.admin import _parser

    done = subprocess.run([str(TARGET), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    commands = next(a for a in _parser()._actions if a.dest == "command").choices
    listed = {line.split()[0] for line in done.stdout.split("Admin commands")[1].splitlines()[1:]
              if line.strip()}
    assert listed == set(commands)
