"""What a run must look like when it recovered, and when it failed cleanly."""

from __future__ import annotations

import re
from typing import Any

from tests.reliability.pipeline import PipelineRun, Workdir
from tests.unit.target.dap_messages import dump_pg, dump_sqlite

JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}")


def dump(url: str) -> dict[str, list[tuple]]:
    """Every table's rows: the whole committed state of the database."""
    if url.startswith("sqlite"):
        from pathlib import Path

        path = Path(url.removeprefix("sqlite:///"))
        return dump_sqlite(path) if path.exists() else {}
    return dump_pg(url)


def error_lines(stderr: str, program: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{program}: error:")]


def assert_recovered(workdir: Workdir, run: PipelineRun, tables: list[tuple[str, str]]) -> None:
    assert run.ok, run.explain()
    assert "Traceback" not in run.tap_stderr + run.target_stderr, run.explain()
    workdir.assert_equals_truth(tables)
    bookmarks = workdir.state()["bookmarks"]
    assert sorted(bookmarks) == sorted(f"{ns}-{t}" for ns, t in tables)


def assert_failed_cleanly(run: PipelineRun, before: dict[str, Any], db_url: str,
                          must_mention: str) -> str:
    """Non-zero exit, exactly one final `tap-dap: error:` line, the cause (`must_mention`) in it
    or in the ERROR log lines it points to, no traceback, DB unchanged."""
    assert run.tap_rc != 0, run.explain()
    errors = error_lines(run.tap_stderr, "tap-dap")
    assert len(errors) == 1, run.explain()
    logged = [line for line in run.tap_stderr.splitlines() if "| ERROR " in line]
    assert any(must_mention in line for line in [*errors, *logged]), run.explain()
    assert "Traceback" not in run.tap_stderr + run.target_stderr, run.explain()
    assert dump(db_url) == before, "a failed run changed the committed database"
    return errors[0]
