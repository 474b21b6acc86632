"""The e2e suite's outside tools: Meltano and generic Singer plugins, each in its own venv.

Meltano pins SQLAlchemy <2.1 and many other packages, so it never goes into the project's .venv;
the generic plugins pin other singer-sdk versions than ours. scripts/test installs them from their
locks (scripts/environments.py) before pytest starts; a plain `pytest` creates what is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts import environments
from scripts.environments import SetupError as ToolSetupError

ROOT = environments.ROOT
PROJECT_BIN = Path(sys.executable).parent  # the .venv running pytest: tap-dap, target-dap-sql
GENERIC_PLUGINS = ("target-csv", "tap-jsonl", "meltano-map-transform")  # SDK-built, know no DAP
# Meltano's system dir (plugin venvs, systemdb) of the test session: `--latest` runs may bring a
# newer Meltano whose migrations would make the locked Meltano refuse a shared database.
MELTANO_DIR = ROOT / (".meltano-latest" if environments.LATEST else ".meltano")

__all__ = ["ROOT", "PROJECT_BIN", "MELTANO_DIR", "ToolSetupError", "ensure_meltano",
           "ensure_generic_plugin"]


def ensure_meltano() -> Path:
    """``.venv-meltano/bin/meltano`` from requirements/meltano.txt (created if missing)."""
    return environments.meltano()


def ensure_generic_plugin(name: str) -> Path:
    """The executable of one generic plugin, in ``.venv-singer/<name>``."""
    if name not in GENERIC_PLUGINS:
        raise ToolSetupError(f"no lock for the generic plugin {name!r}")
    return environments.generic_plugin(name)


@dataclass
class MeltanoResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-25:])
        return f"`{' '.join(self.argv)}` exited {self.returncode}:\n{tail}"


class MeltanoProject:
    """Runs the repository's own meltano.yml, with per-test state DB, environment and settings.

    Plugins were installed by ``meltano install`` once per session (``pip_url: -e .`` into
    .meltano/, uv); runs use ``--no-install`` so a test never reinstalls behind our back.
    """

    def __init__(self, meltano: Path, env: dict[str, str]) -> None:
        self.meltano = meltano
        self.env = env

    def command(self, *args: str) -> list[str]:
        return [str(self.meltano), *args]

    def start(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        env = {**self.env, **(extra_env or {})}
        return subprocess.Popen(self.command(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, *args: str, extra_env: dict[str, str] | None = None,
            check: bool = True) -> MeltanoResult:
        process = self.start(*args, extra_env=extra_env)
        stdout, stderr = process.communicate(timeout=300)
        result = MeltanoResult(self.command(*args), process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            raise AssertionError(result.explain())
        return result


def base_env(tmp: Path) -> dict[str, str]:
    """The environment for Meltano and plain pipes: offline, isolated, our plugins on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TAP_DAP_", "TARGET_DAP_SQL_", "MELTANO_"))}
    env.update({
        "PATH": f"{PROJECT_BIN}{os.pathsep}{env.get('PATH', '')}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        # state (systemdb) per test, never the developer's .meltano/meltano.db
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp}/meltano.db",
        "PYTHONUNBUFFERED": "1",
    })
    return env
