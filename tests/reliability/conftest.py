"""Fixtures of the reliability suite: one database URL per dialect under test."""

from __future__ import annotations

from pathlib import Path

import pytest

DIALECTS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh SQLite file or PostgreSQL database; tests using it run once per dialect."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/dap.db"
    return str(request.getfixturevalue("pg_url"))
