"""No import circles in tap_dap or target_dap_sql, and every module imports on its own.

The graph is read from the source (every `import`, also those inside functions and under
TYPE_CHECKING), so a circle hidden behind a lazy import counts too. `from pkg import name` is an
edge to the submodule `pkg.name` when there is one, else to the package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tap_dap", "target_dap_sql")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [m for m in submodules if m in MODULES]
                if len(targets) < len(submodules):
                    targets.append(node.module)
            graph[name] |= {t for t in targets if t in MODULES and t != name}
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
