"""Every virtual environment the project creates, each installed from its lock.

Locks (refreshed by `scripts/lock`, see README "Locked dependencies"):
  uv.lock                    the project venv .venv (runtime + dev), `uv sync --locked`
  requirements/plugins.txt   constraints for the plugin venvs `meltano install` builds (pip_url)
  requirements/<name>.txt    .venv-meltano, .venv-dap, .venv-singer/<plugin>, bench venvs
  requirements/uv.txt        uv itself, bootstrapped with pip into .venv-uv

With TAP_DAP_TEST_LATEST=1 (`scripts/test --latest`) the project and the tools go into separate
`*-latest` venvs with the newest releases the ranges allow (pyproject.toml, requirements/*.in),
so drift is seen on purpose and never mixes with the locked venvs.

Standard library only: scripts/demo and scripts/test import it before any venv exists.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036 - said before a 3.11-only import fails
    sys.exit(f"tap-dap needs Python 3.11 or newer; {sys.executable} is "
             f"{sys.version.split()[0]} (run the script with python3.11)")

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"
LATEST = os.environ.get("TAP_DAP_TEST_LATEST") == "1"
STAMP = ".installed-from"  # in each venv: what it was installed from


class SetupError(RuntimeError):
    """A venv could not be created or a package not installed; the message says which."""


def base_python() -> str:
    """The interpreter venvs are made from (the base one, also when we run inside a venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _uv_env() -> dict[str, str]:
    # Never download a Python (only PyPI is reachable from CI); no progress bars in logs.
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


def run(argv: list[str | Path], what: str, *, cwd: Path = ROOT,
        env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or _uv_env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SetupError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _fingerprint(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _is_current(venv: Path, fingerprint: str, executable: str) -> bool:
    """Installed from this very lock, by this interpreter, and still able to run."""
    stamp = venv / STAMP
    if not ((venv / "bin" / executable).exists() and stamp.exists()
            and stamp.read_text().strip() == f"{fingerprint} {_interpreter()}"):
        return False
    # a deleted package or a base Python that moved away breaks a venv without touching it
    probe = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", "import sys"],
                           capture_output=True)
    return probe.returncode == 0


def _interpreter() -> str:
    return f"{base_python()}/{platform.python_version()}"


def _stamp(venv: Path, fingerprint: str) -> None:
    (venv / STAMP).write_text(f"{fingerprint} {_interpreter()}\n")


def uv() -> Path:
    """uv at the version requirements/uv.txt pins, in .venv-uv (pip bootstraps it once)."""
    venv = ROOT / ".venv-uv"
    lock = LOCKS / "uv.txt"
    fingerprint = _fingerprint(lock)
    if not _is_current(venv, fingerprint, "uv"):
        run([base_python(), "-m", "venv", "--clear", venv], "creating .venv-uv")
        run([venv / "bin" / "python", "-m", "pip", "install", "-q",
             "--disable-pip-version-check", "-r", lock], "pip install -r requirements/uv.txt")
        _stamp(venv, fingerprint)
    return venv / "bin" / "uv"


def project_venv() -> Path:
    """The project, editable, with its dev tools: .venv from uv.lock (.venv-latest: newest).

    Returns the venv's bin directory (tap-dap, target-dap-sql, pytest, ruff).
    """
    if LATEST:
        venv = ROOT / ".venv-latest"
        run([uv(), "venv", "-q", "--clear", "--python", base_python(), venv],
            "creating .venv-latest")
        run([uv(), "pip", "install", "-q", "--refresh", "--upgrade", "--python",
             venv / "bin" / "python", "-e", ".[dev]"], "uv pip install --upgrade -e .[dev]")
        return venv / "bin"
    # --locked: fails when uv.lock no longer matches pyproject.toml (run scripts/lock);
    # a no-op taking milliseconds when .venv already holds the lock.
    try:
        run([uv(), "sync", "-q", "--locked", "--extra", "dev", "--python", base_python()],
            "uv sync --locked --extra dev (into .venv)",
            env={**_uv_env(), "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv")})
    except SetupError as exc:
        if "needs to be updated" in str(exc):  # uv's words for a stale lock
            raise SetupError(f"{exc}\nuv.lock does not match pyproject.toml: run scripts/lock "
                             "(it also refreshes requirements/plugins.txt), then commit both"
                             ) from None
        raise
    return ROOT / ".venv" / "bin"


def locked_venv(directory: str, lock: str, executable: str, *, floats: bool = True) -> Path:
    """``ROOT/directory`` holding exactly ``requirements/<lock>.txt``; the path of ``executable``.

    Rebuilt when the lock file changes. In latest mode a venv that ``floats`` is built in
    ``<directory>-latest`` from ``requirements/<lock>.in`` with the newest releases instead.
    """
    if LATEST and floats:
        source = LOCKS / f"{lock}.in"
        venv = ROOT / f"{directory}-latest"
        install = ["pip", "install", "-q", "--refresh", "--upgrade", "-r", source]
        fingerprint = f"latest {_fingerprint(source)} {time.strftime('%Y-%m-%d')}"
    else:
        source = LOCKS / f"{lock}.txt"
        venv = ROOT / directory
        install = ["pip", "sync", "-q", source]
        fingerprint = _fingerprint(source)
    if not _is_current(venv, fingerprint, executable):
        venv.parent.mkdir(parents=True, exist_ok=True)
        name = venv.relative_to(ROOT)
        run([uv(), "venv", "-q", "--clear", "--python", base_python(), venv],
            f"creating {name}")
        run([uv(), *install, "--python", venv / "bin" / "python"],
            f"installing {source.relative_to(ROOT)} into {name}")
        _stamp(venv, fingerprint)
    return venv / "bin" / executable


def meltano() -> Path:
    """.venv-meltano/bin/meltano (Meltano 4.x; its pins never meet the project's)."""
    return locked_venv(".venv-meltano", "meltano", "meltano")


def official_client() -> Path:
    """.venv-dap/bin/dap: the official client, the judge of the emulator's fidelity.

    Always the lock: instructure-dap-client 2.3.1 pins its dependencies exactly anyway.
    """
    return locked_venv(".venv-dap", "dap", "dap", floats=False)


def generic_plugin(name: str) -> Path:
    """One generic SDK-built Singer plugin from PyPI, in .venv-singer/<name>."""
    return locked_venv(f".venv-singer/{name}", name, name)


def dagster_example() -> Path:
    """.venv-dagster/bin/python: Dagster from its lock plus the project, editable, at uv.lock's
    runtime versions; only the test of the worked example (examples/dagster_replicator.py)
    uses it."""
    python = locked_venv(".venv-dagster", "dagster", "python")
    run([uv(), "pip", "install", "-q", "--python", python, "-e", ROOT, "-c",
         LOCKS / "plugins.txt"], "installing the project into .venv-dagster")
    return python


def _timed(label: str, setup) -> object:
    started = time.monotonic()
    result = setup()
    print(f"    {label:<40} {time.monotonic() - started:6.1f} s", flush=True)
    return result


def set_up_for_tests() -> Path:
    """Everything the test suite runs: returns the project venv's bin directory."""
    started = time.monotonic()
    mode = "newest releases (--latest)" if LATEST else "locked versions"
    print(f"setting up the test environments from {mode}:", flush=True)
    bin_dir = _timed("uv + .venv (project, dev tools)", project_venv)
    _timed(".venv-dap (official client)", official_client)
    _timed(".venv-meltano (Meltano)", meltano)
    for plugin in ("target-csv", "tap-jsonl", "meltano-map-transform"):
        _timed(f".venv-singer/{plugin}", lambda p=plugin: generic_plugin(p))
    _timed(".venv-dagster (worked example)", dagster_example)
    print(f"set-up took {time.monotonic() - started:.1f} s", flush=True)
    return bin_dir  # type: ignore[return-value]


if __name__ == "__main__":
    # scripts/test: set up what the suite needs (it then runs .venv[-latest]/bin/pytest)
    try:
        set_up_for_tests()
    except SetupError as exc:
        sys.exit(f"set-up failed: {exc}")
