"""No import cycles in mobile_mllm: module-level, TYPE_CHECKING and function-level imports all count.

Why all three: a cycle hidden behind ``TYPE_CHECKING`` or a function-level import still means two
modules each need the other (it breaks type checkers, and becomes an import-time failure as
soon as someone hoists the import). The graph is built from the source with ``ast`` (nothing is
imported), so the test is fast and independent of what happens to be installed. A package's
``__init__`` importing its own submodules is the normal re-export and is not an edge back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mobile_mllm"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``path`` imports, anywhere in the file, resolved to the deepest known module."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            # ``from pkg import sub`` imports the submodule when ``sub`` is one, else a name of pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_mobile_mllm_has_no_import_cycles() -> None:
    cycles = find_cycles(import_graph(_modules()))
    assert cycles == [], "import cycles (move the shared names into a module both can import): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    """The checker itself can fail: two modules importing each other, one only inside a function."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from pkg import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n")
    modules = {_name(p, tmp_path): p for p in pkg.rglob("*.py")}
    assert find_cycles(import_graph(modules)) == [["pkg.a", "pkg.b"]]


def _name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("module", ["mobile_mllm.vision.config", "mobile_mllm.runtime.methods", "mobile_mllm.export.config"])
def test_shared_definitions_import_nothing_from_their_siblings(module: str) -> None:
    """The modules that exist to break cycles stay leaves within their subpackage."""
    modules = _modules()
    package = module.rpartition(".")[0]
    siblings = {m for m in import_graph(modules)[module] if m.startswith(package + ".")}
    assert siblings == set()
