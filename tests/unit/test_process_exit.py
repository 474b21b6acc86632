"""The console scripts' quick exit after success: outputs flushed, profilers and tracers kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = ("tap_dap.tuning", "target_dap_sql.process_exit")

SCRIPT = """
import atexit, logging, sys
from {module} import exit_at_once_on_success
{setup}
atexit.register(lambda: print("atexit ran"))
logging.basicConfig(stream=sys.stderr, format="%(message)s")
logging.getLogger("x").warning("logged")
sys.stdout.write("written, not flushed")
exit_at_once_on_success(SystemExit({code}))
print(" / normal exit")
"""


def run(module: str, code: int = 0, setup: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(module=module, code=code,
                                                                  setup=setup)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", MODULES)
def test_success_leaves_at_once_with_everything_flushed(module: str) -> None:
    done = run(module)
    assert (done.returncode, done.stdout, done.stderr) == (0, "written, not flushed", "logged\n")


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("setup", ["sys.settrace(lambda *a: None)",
                                   "import cProfile; cProfile.Profile().enable()"])
def test_a_tracer_or_profiler_gets_the_normal_exit(module: str, setup: str) -> None:
    done = run(module, setup=setup)
    assert done.stdout == "written, not flushed / normal exit\natexit ran\n"


@pytest.mark.parametrize("module", MODULES)
def test_a_failure_takes_the_normal_way_out(module: str) -> None:
    assert run(module, code=1).stdout == "written, not flushed / normal exit\natexit ran\n"
