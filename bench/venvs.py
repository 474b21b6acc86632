"""Bench-only virtual environments, each installed from its lock in requirements/.

The anchors pin their own dependencies (the official client pins aiohttp, asyncpg ...;
target-postgres pins SQLAlchemy and psycopg2), so each gets its own venv instead of the project's.
scripts/environments.py builds them (git-ignored, under bench/work/venvs/ and .venv-dap) and
rebuilds one when its lock file changes.
"""

from __future__ import annotations

import compileall
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.errors import SetupError
from scripts import environments


def _ensure(make: Callable[[], Path]) -> Path:
    try:
        return make()
    except environments.SetupError as exc:
        raise SetupError(str(exc)) from None


def dap() -> Path:
    """The official `dap` CLI (.venv-dap, shared with the compatibility tests)."""
    return _ensure(environments.official_client)


def target_postgres() -> Path:
    return _ensure(lambda: environments.locked_venv(
        "bench/work/venvs/target-postgres", "target-postgres", "target-postgres", floats=False))


def plot_python() -> Path:
    return _ensure(lambda: environments.locked_venv(
        "bench/work/venvs/plot", "plot", "python", floats=False))


def installed_version(venv_executable: Path, distribution: str) -> str:
    python = venv_executable.parent / "python"
    result = subprocess.run(
        [str(python), "-c",
         f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        capture_output=True, text=True,
    )
    return result.stdout.strip() or "?"


def compile_bytecode(executables: list[str]) -> None:
    """Write the .pyc files of each executable's venv and of the project's packages.

    ``pip install`` compiles what it installs, so users start from bytecode; ``uv`` does not by
    default, and with PYTHONDONTWRITEBYTECODE set (as in some CI and sandbox images) nothing
    ever writes them: every process of every variant would then compile all its imports from
    source again (~1 s of CPU for the tap, the target and `dap` each). Done for every tool
    alike, anchors included, before the first timed run; cheap when nothing changed.
    """
    root = Path(__file__).resolve().parent.parent
    trees = {root / "tap_dap", root / "target_dap_sql", root / "bench"}
    for executable in executables:
        if executable:
            venv = Path(executable).parent.parent
            trees.update(venv.glob("lib/python*/site-packages"))
    for tree in sorted(trees):
        # quiet=2: a vendored file that does not compile (test data) is not our business
        compileall.compile_dir(tree, quiet=2, workers=0)
