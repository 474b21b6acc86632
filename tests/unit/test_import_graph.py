"""No import circles in tap_dap or target_dap_sql, and every module imports on its own.

The graph is read from the source: every `import`, also those inside functions and under
TYPE_CHECKING, relative ones, and module names given as strings (`importlib.import_module`,
the dialect table), so a circle hidden behind a lazy import counts too. `from pkg import name` is
an edge to the submodule `pkg.name` when there is one, else to the package. Importing `a.b.c`
runs `a/__init__.py` and `a/b/__init__.py` first, so it is an edge to those packages too, except
to the importing module's own packages (they are already running when it runs).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tap_dap", "target_dap_sql")


def find_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = find_modules(ROOT, PACKAGES)


def _packages_of(module: str) -> list[str]:
    """`a.b.c` → [`a`, `a.b`]: the packages Python imports before the module."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imported(node: ast.AST, name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The modules one AST node imports (or names as a string), as written."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the module's package (a package's own for __init__)
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join([*package, *([base] if base else [])])
        submodules = [f"{base}.{alias.name}" for alias in node.names]
        found = [m for m in submodules if m in modules]
        return found + [base] if len(found) < len(submodules) else found
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
        return [node.value]
    return []


def import_graph(modules: dict[str, Path] = MODULES) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        own = {*_packages_of(name), name}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, name, path, modules):
                graph[name] |= {m for m in (*_packages_of(target), target)
                                if m in modules and m not in own}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_the_graph_reader_sees_every_way_of_importing(tmp_path: Path) -> None:
    sources = {
        "p/__init__.py": "from p.sub import thing\n",
        "p/sub.py": "import q.mod\n",  # runs q/__init__ first
        "p/rel.py": "def lazy():\n    from . import sub\n    from ..q import mod\n",
        "q/__init__.py": "import importlib\nDRIVER = 'p.rel'\n",  # a module named by a string
        "q/mod.py": "from q import other\n",
        "q/other.py": "from p import sub as _s\n",
    }
    for file, text in sources.items():
        (tmp_path / file).parent.mkdir(exist_ok=True)
        (tmp_path / file).write_text(text)
    graph = import_graph(find_modules(tmp_path, ("p", "q")))
    assert graph == {"p": {"p.sub"}, "p.sub": {"q", "q.mod"}, "p.rel": {"p.sub", "q", "q.mod"},
                     "q": {"p", "p.rel"}, "q.mod": {"q.other"}, "q.other": {"p", "p.sub"}}
    assert circles(graph) == [["p", "p.rel", "p.sub", "q", "q.mod", "q.other"]]


def test_no_import_circles() -> None:
    graph = import_graph()
    # The graph is real: the modules that once formed circles are in it with their edges.
    assert "tap_dap.streams" in graph["tap_dap.tap"]
    assert "target_dap_sql.dialects" in graph["target_dap_sql.admin"]
    assert circles(graph) == []


#: The modules that once formed circles, and the console scripts' modules: each must import as
#: the first module of an interpreter (static analysis cannot see a name used before it is set).
FIRST_IMPORTS = ["tap_dap.streams", "tap_dap.tap", "target_dap_sql.admin", "target_dap_sql.target",
                 "target_dap_sql.replica_db", "target_dap_sql.dialects.postgresql",
                 "target_dap_sql.dialects.mysql", "target_dap_sql.dialects.sqlite",
                 "tap_dap.emulator.cli"]


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    assert module in MODULES
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
