"""The README, docs/ and the other documents, and every document named in code, point only at
files (and sections) a clone of the repository has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.tooling import ROOT

DOCUMENTS = ["README.md", "bench/README.md", "CHANGELOG.md", "CONTRIBUTING.md",
             *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
TOP_DIRS = ("tests/", "bench/", "scripts/", "requirements/", "tap_dap/", "target_dap_sql/",
            "docs/", ".ci/")
TOP_FILES = {"uv.lock", "meltano.yml", "pyproject.toml", ".env.example", "LICENSE",
             "MANIFEST.in"}
GENERATED = ("output/", "bench/work/", "bench/results/20")  # written by runs, not committed
#: Documents that were never in the repository (internal notes): nothing may cite them.
OUTSIDE = ("DESIGN", "DAP_PROTOCOL", "SINGER_MELTANO")
CODE_DIRS = ("tap_dap", "target_dap_sql", "tests", "bench", "scripts")
#: A document named in code: `docs/x.md`, `bench/README.md` or an upper-case top-level `X.md`,
#: optionally followed by `, Section` (a heading of that document).
CODE_REFERENCE = re.compile(r"((?:docs|bench)/[\w.-]+\.md|\b[A-Z][A-Z_]+\.md)(?:, ([A-Z][\w ]+))?")


def references(text: str) -> set[str]:
    found = set(re.findall(r"\]\(([^)#\s]+)\)", text))
    found |= set(re.findall(r"\]\(([^)#\s]+)#[^)\s]+\)", text))
    found |= set(re.findall(r"`([^`\s]+)`", text))
    return {ref for ref in found if not ref.startswith(("http://", "https://"))
            and (ref.startswith(TOP_DIRS) or ref in TOP_FILES or re.fullmatch(r"[\w-]+\.md", ref))
            and not ref.startswith(GENERATED) and not re.search(r"[<>…*]|\.\.\.", ref)}


def headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in path.read_text().splitlines()
            if line.startswith("#")]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\s-]", "", heading.lower().replace("→", ""))
    return re.sub(r"\s", "-", text.strip())


def test_the_reference_readers_read() -> None:
    text = "see [the wire](dap-wire.md#endpoints), `docs/x.md` and `uv.lock`, not `a/b.md`"
    assert references(text) == {"dap-wire.md", "docs/x.md", "uv.lock"}
    assert slug("The data's path: HTTP bytes → record → SQL row") == (
        "the-datas-path-http-bytes--record--sql-row")
    found = CODE_REFERENCE.findall("(docs/dap-wire.md, Rate limits); see README.md")
    assert found == [("docs/dap-wire.md", "Rate limits"), ("README.md", "")]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_referenced_file_exists(document: str) -> None:
    path = ROOT / document
    text = path.read_text()
    assert not any(name in text for name in OUTSIDE), "cites a file outside the repo"
    refs = references(text)
    missing = sorted(r for r in refs
                     if not (path.parent / r).exists() and not (ROOT / r).exists())
    assert missing == [], f"{document} points at files a clone does not have"
    for target, anchor in re.findall(r"\]\(([\w./-]*\.md)#([^)\s]+)\)", text):
        linked = path.parent / target
        assert anchor in {slug(h) for h in headings(linked)}, f"{target}#{anchor}: no such heading"
    if document == "README.md":
        assert {"uv.lock", "requirements/plugins.txt", "scripts/environments.py"} <= refs
        assert {"docs/architecture.md", "CONTRIBUTING.md"} <= refs


def _code_files() -> list[Path]:
    this = Path(__file__).resolve()
    # bench/work holds the bench's venvs (git-ignored; other projects' code)
    return [p for d in CODE_DIRS for p in sorted((ROOT / d).rglob("*.py"))
            if p.resolve() != this and "work" not in p.relative_to(ROOT / d).parts]


def test_documents_named_in_code_exist() -> None:
    problems = []
    for path in _code_files():
        text = path.read_text()
        where = path.relative_to(ROOT)
        problems += [f"{where}: cites {name}" for name in OUTSIDE if name in text]
        for document, section in CODE_REFERENCE.findall(text):
            target = ROOT / document
            if not target.exists():
                problems.append(f"{where}: {document} does not exist")
            elif section and not any(h.startswith(section.strip()) for h in headings(target)):
                problems.append(f"{where}: {document} has no section {section.strip()!r}")
    assert problems == []
