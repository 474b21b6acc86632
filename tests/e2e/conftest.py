"""Fixtures for the end-to-end tests: real Meltano, real processes, the emulator, real databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.replica import Replica, diff_all, fetch_truth
from tests.e2e.tooling import (
    MELTANO_DIR,
    MeltanoProject,
    ToolSetupError,
    base_env,
    ensure_generic_plugin,
    ensure_meltano,
)
from tests.emulator_fixture import RunningEmulator

# A handful of canvas tables: enough variety (nested objects, enums, floats, booleans, uuids)
# while keeping every Meltano run at a few seconds.
TABLES = ("accounts", "courses", "enrollments", "submissions", "users")
NS_TABLES = [("canvas", t) for t in TABLES]


@pytest.fixture(scope="session")
def meltano_bin() -> Path:
    """Meltano in .venv-meltano, and the project's plugins installed by ``meltano install``."""
    try:
        meltano = ensure_meltano()
    except ToolSetupError as exc:
        pytest.fail(f"cannot set up Meltano for the e2e tests: {exc}")
    env = {**base_env(MELTANO_DIR), "MELTANO_SYS_DIR_ROOT": str(MELTANO_DIR)}
    project = MeltanoProject(meltano, env)
    # the real user path: pip_url `-e .` into .meltano/<type>s/<name>/venv (skipped when current)
    project.run("install")
    return meltano


@pytest.fixture(scope="session")
def generic_plugin() -> Callable[[str], Path]:
    def get(name: str) -> Path:
        try:
            return ensure_generic_plugin(name)
        except ToolSetupError as exc:
            pytest.fail(f"cannot install the generic Singer plugin {name}: {exc}")
    return get


@pytest.fixture
def dap_emulator(emulator_factory: Callable[..., RunningEmulator]) -> RunningEmulator:
    return emulator_factory(tables=",".join(TABLES), rows=40, seed=7)


@pytest.fixture
def meltano_project(meltano_bin: Path, tmp_path: Path,
                    dap_emulator: RunningEmulator) -> MeltanoProject:
    """meltano.yml's `emulator` environment, pointed at this test's emulator (SQLite by default).

    Each test gets its own `.meltano` (MELTANO_SYS_DIR_ROOT) whose plugin venvs link to the
    session's installed ones: Meltano's per-plugin run directory (config with secrets, catalog)
    is then never shared with a concurrent `scripts/demo` or another test.
    """
    sys_dir = tmp_path / ".meltano"
    sys_dir.mkdir()
    for kind in ("extractors", "loaders"):
        (sys_dir / kind).symlink_to(MELTANO_DIR / kind, target_is_directory=True)
    env = base_env(tmp_path)
    env.update({
        "MELTANO_SYS_DIR_ROOT": str(sys_dir),
        "MELTANO_ENVIRONMENT": "emulator",
        "TAP_DAP_BASE_URL": dap_emulator.base_url,
        "TAP_DAP_CLIENT_ID": dap_emulator.client_id,
        "TAP_DAP_CLIENT_SECRET": dap_emulator.client_secret,
        "TARGET_DAP_SQL_SQLALCHEMY_URL": f"sqlite:///{tmp_path}/dap.db",
    })
    return MeltanoProject(meltano_bin, env)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target_url(request: pytest.FixtureRequest, meltano_project: MeltanoProject) -> str:
    """The target database of `meltano_project`: its SQLite file, or a fresh PostgreSQL one."""
    if request.param == "sqlite":
        return meltano_project.env["TARGET_DAP_SQL_SQLALCHEMY_URL"]
    url = request.getfixturevalue("pg_url")
    meltano_project.env["TARGET_DAP_SQL_SQLALCHEMY_URL"] = url
    return url


def advance_all(emulator: RunningEmulator, tables: tuple[str, ...] = TABLES) -> None:
    """Inserts, updates and deletes on every table, after the current bookmarks."""
    for table in tables:
        emulator.advance("canvas", table, inserts=5, updates=4, deletes=3)


def assert_equals_truth(url: str, emulator: RunningEmulator,
                        tables: list[tuple[str, str]] = NS_TABLES) -> None:
    diffs = diff_all(Replica(url), tables, lambda ns, t: fetch_truth(emulator.base_url, ns, t))
    assert diffs == [], "\n".join(map(str, diffs))


#: The state ID `meltano run tap-dap target-dap-sql` uses in the `emulator` environment.
STATE_ID = "emulator:tap-dap-to-target-dap-sql"


def meltano_state(project: MeltanoProject, state_id: str) -> dict:
    return json.loads(project.run("state", "get", state_id).stdout)
