"""The package's shape: no import cycle anywhere in src/, and the CLI's help without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import netscope

PACKAGE = Path(netscope.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Returns module -> the netscope modules it imports (top-level or inside a function); a
    package's own submodules are not counted (importing them is what a package does)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {
            m for m in found & set(modules) if m != name and not m.startswith(name + ".")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Returns every cycle reachable in `graph` as the path that closes it (depth-first)."""
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "netscope.train" in graph["netscope.demo"]  # the graph sees what it should
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_nothing_but_training_imports_the_trainer():
    graph = import_graph()
    importers = {name for name, imports in graph.items() if "netscope.train" in imports}
    assert importers <= {"netscope.cli", "netscope.demo", "netscope.lessons.biology",
                         "netscope.lessons.gan"}, importers  # fmt: skip


def test_cli_help_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys\n"
        "from netscope.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "inspect" in result.stdout and "attack" in result.stdout
