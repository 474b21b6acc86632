"""Every environment installs exactly what the locks say, and the locks agree with each other.

A fresh machine must test the same program CI tested: the project venv holds uv.lock's versions,
the plugin venvs `meltano install` builds hold them too (pip_url `-c requirements/plugins.txt`),
the tool venvs hold requirements/<name>.txt, and pyproject.toml's lower bounds are the locked
versions (so CI tests the lower bounds; `scripts/test --latest` tests the newest releases).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from scripts import environments
from tests.e2e.tooling import MELTANO_DIR, ROOT

LOCKED = not environments.LATEST
needs_lock = pytest.mark.skipif(not LOCKED, reason="scripts/test --latest installs no lock")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def uv_lock_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {_canonical(p["name"]): p["version"] for p in lock["package"]
            if p.get("source", {}).get("editable") != "."}


def pins(requirements: Path) -> dict[str, str]:
    """name -> version of every `name==version` line whose marker holds on this machine."""
    found = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)\s*(?:;(.*))?$", line)
        if match and (not match.group(4) or Marker(match.group(4)).evaluate()):
            found[_canonical(match.group(1))] = match.group(3)
    return found


def installed(python: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m\n"
            "for d in m.distributions(): print(d.metadata['Name'], d.version)")
    done = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True,
                          check=True)
    return {_canonical(name): version for name, version in
            (line.split() for line in done.stdout.splitlines())}


@needs_lock
def test_project_venv_holds_uv_lock() -> None:
    locked = uv_lock_versions()
    here = {_canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    assert here.pop("tap-dap") == tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "project"]["version"]
    # nothing in .venv outside the lock or at another version (what the lock lists only for
    # other platforms, e.g. colorama on Windows, is not installed here)
    assert {name: v for name, v in here.items() if locked.get(name) != v} == {}


def test_lower_bounds_are_the_locked_versions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = uv_lock_versions()
    for requirement in requirements:
        name = _canonical(re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0))
        bound = re.search(r"(>=|~=)([0-9][^,\s\"]*)", requirement)
        assert bound, f"{requirement}: no lower bound"
        assert bound.group(2) == locked[name], (
            f"{requirement}: lower bound {bound.group(2)} is not the tested version "
            f"{locked[name]} (run scripts/lock and move the bound)")


def test_plugin_constraints_are_uv_lock_runtime_dependencies() -> None:
    constraints = pins(ROOT / "requirements" / "plugins.txt")
    locked = uv_lock_versions()
    assert {n: v for n, v in constraints.items() if locked.get(n) != v} == {}
    for runtime in ("singer-sdk", "msgspec", "psycopg", "orjson", "sqlalchemy"):
        assert runtime in constraints
    for dev_only in ("pytest", "ruff", "requests-mock"):
        assert dev_only not in constraints


@needs_lock
@pytest.mark.parametrize("plugin", ["extractors/tap-dap", "loaders/target-dap-sql"])
def test_meltano_plugin_venvs_hold_the_lock(meltano_bin: Path, plugin: str) -> None:
    """`meltano install` (pip_url `-e . -c requirements/plugins.txt`) gives the locked versions."""
    venv_python = MELTANO_DIR / plugin / "venv" / "bin" / "python"
    versions = installed(venv_python)
    constraints = pins(ROOT / "requirements" / "plugins.txt")
    assert versions.pop("tap-dap", None) is not None
    assert {n: v for n, v in versions.items() if constraints.get(n) != v} == {}


@needs_lock
@pytest.mark.parametrize(("venv", "lock"), [
    (".venv-meltano", "meltano"), (".venv-dap", "dap"),
    (".venv-singer/target-csv", "target-csv"), (".venv-singer/tap-jsonl", "tap-jsonl"),
    (".venv-singer/meltano-map-transform", "meltano-map-transform"),
])
def test_tool_venvs_hold_their_lock(venv: str, lock: str) -> None:
    # scripts/test built them before pytest started; a plain `pytest` builds what is missing
    {".venv-meltano": environments.meltano, ".venv-dap": environments.official_client}.get(
        venv, lambda: environments.generic_plugin(lock))()
    versions = installed(ROOT / venv / "bin" / "python")
    locked = pins(ROOT / "requirements" / f"{lock}.txt")
    assert {n: v for n, v in locked.items() if versions.get(n) != v} == {}
    assert set(versions) - set(locked) <= {"pip", "setuptools", "wheel"}


def test_every_requirements_in_has_a_current_lock() -> None:
    """Each requirements/<name>.txt pins what its .in asks for (else: run scripts/lock)."""
    for source in sorted((ROOT / "requirements").glob("*.in")):
        lock = source.with_suffix(".txt")
        assert lock.exists(), f"{source.name} has no {lock.name}: run scripts/lock"
        pinned = pins(lock)
        for line in source.read_text().splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            wanted = Requirement(line)
            version = pinned.get(_canonical(wanted.name))
            assert version is not None, f"{lock.name} does not pin {wanted.name}"
            assert wanted.specifier.contains(version, prereleases=True), (
                f"{lock.name} pins {wanted.name}=={version}, outside {source.name}'s "
                f"'{wanted.specifier}': run scripts/lock")


def test_readme_tested_versions_are_the_locked_ones() -> None:
    table = (ROOT / "README.md").read_text().split("Tested versions")[1].split("\n\n")[1]
    rows = {cells[1].strip(): cells[2].strip() for cells in
            (line.split("|") for line in table.splitlines()) if len(cells) > 3}
    meltano = pins(ROOT / "requirements" / "meltano.txt")["meltano"]
    dap = pins(ROOT / "requirements" / "dap.txt")["instructure-dap-client"]
    assert rows["Meltano"] == meltano
    assert rows["singer-sdk"] == uv_lock_versions()["singer-sdk"]
    assert rows["instructure-dap-client (compatibility judge)"] == dap
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert rows["Python"].startswith(requires.removeprefix(">="))
