"""Bench-only virtual environments under bench/work/venvs/ (git-ignored), created on first use.

The anchors pin their own dependencies (the official client pins aiohttp, asyncpg ...;
target-postgres pins SQLAlchemy and psycopg2), so each gets its own venv instead of the project's.
A venv is reused while its recorded requirement line is unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import SetupError

MARKER = ".bench-requirements"


@dataclass(frozen=True)
class VenvSpec:
    name: str
    requirements: tuple[str, ...]
    executable: str  # the console script the bench runs from it


DAP = VenvSpec("dap", ("instructure-dap-client[postgresql]==2.3.1",), "dap")
TARGET_POSTGRES = VenvSpec("target-postgres", ("meltanolabs-target-postgres==0.8.1",),
                           "target-postgres")
PLOT = VenvSpec("plot", ("matplotlib>=3.8",), "python")


def ensure(spec: VenvSpec, root: Path) -> Path:
    """Return the path of ``spec.executable`` in its venv, creating/installing it if needed."""
    venv = root / spec.name
    marker = venv / MARKER
    wanted = "\n".join(spec.requirements)
    executable = venv / "bin" / spec.executable
    if executable.exists() and marker.exists() and marker.read_text().strip() == wanted:
        return executable
    print(f"bench: installing {', '.join(spec.requirements)} into {venv}", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                       capture_output=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *spec.requirements],
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()[-3:]
        raise SetupError(f"installing {spec.name} venv failed: {' | '.join(tail)}") from None
    if not executable.exists():
        raise SetupError(f"{spec.name} venv has no {executable}")
    marker.write_text(wanted + "\n")
    return executable


def installed_version(venv_executable: Path, distribution: str) -> str:
    python = venv_executable.parent / "python"
    result = subprocess.run(
        [str(python), "-c",
         f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        capture_output=True, text=True,
    )
    return result.stdout.strip() or "?"
