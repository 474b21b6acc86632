"""What `pip install tap-dap` users get: a clean sdist and wheel with license, metadata, data."""

from __future__ import annotations

import subprocess
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

from scripts import environments
from tests.e2e.tooling import ROOT


def test_sdist_and_wheel_hold_the_package_and_nothing_stray(tmp_path: Path) -> None:
    environments.run([environments.uv(), "build", "-q", "--sdist", "--wheel", "-o", tmp_path],
                     "uv build")
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = [n.split("/", 1)[1] for n in archive.getnames() if "/" in n]
    top = {n.split("/")[0] for n in names}
    assert top == {"CHANGELOG.md", "LICENSE", "MANIFEST.in", "PKG-INFO", "README.md",
                   "pyproject.toml", "setup.cfg", "tap_dap", "tap_dap.egg-info", "target_dap_sql",
                   "dap_replicator"}
    assert not [n for n in names if "/tests/" in f"/{n}" or "__pycache__" in n]

    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
        metadata = Parser().parsestr(archive.read(next(
            n for n in files if n.endswith(".dist-info/METADATA"))).decode())
    assert any(n.startswith("tap_dap/emulator/data/") for n in files)  # the emulator's tables
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in files)
    assert {p.split("/")[0] for p in files} <= {"tap_dap", "target_dap_sql", "dap_replicator",
                                                 "tap_dap-0.1.0.dist-info"}
    assert "dap_replicator/replicator.py" in files
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "Programming Language :: Python :: 3.11" in metadata.get_all("Classifier")
    assert metadata["Requires-Python"] == ">=3.11"


def test_build_outputs_are_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "build/x", "dist/x.whl", ".venv-latest/x"],
                             cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == ["build/x", "dist/x.whl", ".venv-latest/x"]
