"""The e2e suite's outside tools: Meltano and two generic Singer plugins, each in its own venv.

Meltano 4.4.1 pins SQLAlchemy <2.1 and many other packages, so it never goes into the project's
.venv; the generic plugins pin other singer-sdk versions than ours. All are created on first use
(needs PyPI once, ~25 s) and reused afterwards: the test command stays plain `scripts/test`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MELTANO_VERSION = "4.4.1"
MELTANO_VENV = ROOT / ".venv-meltano"
SINGER_VENVS = ROOT / ".venv-singer"
# name -> pip requirement; SDK-built plugins from PyPI that know nothing about DAP
GENERIC_PLUGINS = {"target-csv": "meltanolabs-target-csv==0.5.0", "tap-jsonl": "tap-jsonl==0.3.1"}
PROJECT_BIN = Path(sys.executable).parent  # the .venv running pytest: tap-dap, target-dap-sql


class ToolSetupError(RuntimeError):
    """A venv could not be created or a package not installed."""


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ToolSetupError(f"{what} failed (exit {done.returncode}):\n{tail}")


def ensure_meltano() -> Path:
    """``.venv-meltano/bin/meltano`` at the pinned version (created if missing)."""
    meltano = MELTANO_VENV / "bin" / "meltano"
    marker = MELTANO_VENV / f".meltano-{MELTANO_VERSION}"
    if not marker.exists():
        _run([sys.executable, "-m", "venv", "--clear", str(MELTANO_VENV)], "creating .venv-meltano")
        _run([str(MELTANO_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
              f"meltano=={MELTANO_VERSION}"], f"pip install meltano=={MELTANO_VERSION}")
        marker.touch()
    return meltano


def ensure_generic_plugin(name: str) -> Path:
    """The executable of one generic plugin, in ``.venv-singer/<name>`` (uv from Meltano's venv)."""
    venv = SINGER_VENVS / name
    executable = venv / "bin" / name
    requirement = GENERIC_PLUGINS[name]
    marker = venv / f".installed-{requirement}"
    if not marker.exists():
        uv = MELTANO_VENV / "bin" / "uv"
        ensure_meltano()
        python = str(MELTANO_VENV / "bin" / "python")
        _run([str(uv), "venv", "-q", "--clear", "--python", python, str(venv)], f"creating {venv}")
        _run([str(uv), "pip", "install", "-q", requirement], f"uv pip install {requirement}",
             env={**os.environ, "VIRTUAL_ENV": str(venv)})
        marker.touch()
    return executable


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
