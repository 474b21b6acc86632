"""The README and the other documents point only at files a clone of the repository has."""

from __future__ import annotations

import re

import pytest

from tests.e2e.tooling import ROOT

DOCUMENTS = ["README.md", "bench/README.md", "CHANGELOG.md"]
TOP_DIRS = ("tests/", "bench/", "scripts/", "requirements/", "tap_dap/", "target_dap_sql/",
            "docs/", ".ci/")
TOP_FILES = {"uv.lock", "meltano.yml", "pyproject.toml", ".env.example", "LICENSE",
             "MANIFEST.in"}
GENERATED = ("output/", "bench/work/", "bench/results/20")  # written by runs, not committed


def references(text: str) -> set[str]:
    found = set(re.findall(r"\]\(([^)#\s]+)\)", text))
    found |= set(re.findall(r"`([^`\s]+)`", text))
    return {ref for ref in found if not ref.startswith(("http://", "https://"))
            and (ref.startswith(TOP_DIRS) or ref in TOP_FILES or re.fullmatch(r"[\w-]+\.md", ref))
            and not ref.startswith(GENERATED) and not re.search(r"[<>…*]|\.\.\.", ref)}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_referenced_file_exists(document: str) -> None:
    path = ROOT / document
    text = path.read_text()
    assert "DESIGN" not in text and "DAP_PROTOCOL" not in text, "cites a file outside the repo"
    refs = references(text)
    missing = sorted(r for r in refs
                     if not (path.parent / r).exists() and not (ROOT / r).exists())
    assert missing == [], f"{document} points at files a clone does not have"
    if document == "README.md":
        assert {"uv.lock", "requirements/plugins.txt", "scripts/environments.py"} <= refs
