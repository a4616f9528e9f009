"""The library's module graph has no import cycles (function-level imports included).

A cycle means two modules each need the other to exist (as ``backbones/`` and ``weights.py`` once
did): it makes import order matter and hides which of them is the lower layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the library modules it imports anywhere in its body (``pipeline.x.y`` names)."""
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                # `from . import x` / `from .pkg import sub`: the submodule if it is one, else the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:  # pipeline.x.attr -> pipeline.x
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_sees_a_function_level_cycle(tmp_path):
    pkg = tmp_path / "pipeline"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from .sub.high import g\n")
    (pkg / "sub" / "high.py").write_text("from ..low import f\n")
    (pkg / "other.py").write_text("from pipeline import low\nimport pipeline.sub.high\n")
    (pkg / "typing_only.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .other import x\n")
    graph = import_graph(pkg)
    assert graph["pipeline.low"] == {"pipeline.sub.high"}
    assert graph["pipeline.sub.high"] == {"pipeline.low"}
    assert graph["pipeline.other"] == {"pipeline.low", "pipeline.sub.high"}
    assert graph["pipeline.typing_only"] == set()  # annotations only: not a run-time import
    assert find_cycle(graph) == ["pipeline.low", "pipeline.sub.high", "pipeline.low"]
    (pkg / "low.py").write_text("def f():\n    pass\n")
    assert find_cycle(import_graph(pkg)) is None


def test_the_library_has_no_import_cycle():
    graph = import_graph()
    assert "pipeline.backbones.i3d" in graph and "pipeline.weights" in graph["pipeline.backbones.i3d"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"
