"""Our own layers, read from every first-party import (ast; imports inside functions count, imports
under `if TYPE_CHECKING:` do not, since they never run): the plain types (model/core/) <- the engine
(model/engine/) <- the analyses (model/analyses/) <- the package's face (model/__init__.py) <- viz <-
pages <- app. No module imports a layer above its own, and no
modules import each other in a circle."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOPS = ("model", "viz", "pages", "app")  # the first-party top-level packages (app: app.py)
# Each layer may import only those before it (and itself); "model" is the package's face, model/__init__.py.
LAYERS = ("model.core", "model.engine", "model.analyses", "model", "viz", "pages", "app")


def layer(module: str) -> str:
    """The layer a dotted module name belongs to: the longest layer name it starts with."""
    return max((name for name in LAYERS if module == name or module.startswith(name + ".")), key=len)


def _modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file for every first-party module under `root`."""
    found = {}
    for path in [*root.glob("*.py"), *(p for top in TOPS for p in (root / top).rglob("*.py"))]:
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """First-party modules `name` imports at run time -> first line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            if target in modules and target != name:
                found.setdefault(target, node.lineno)
    return found


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    modules = _modules(root)
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a circle (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, dict[str, int]]) -> list[str]:
    rank = {name: n for n, name in enumerate(LAYERS)}
    return [f"{a} (line {line}) imports {b}, a layer above it" for a, targets in graph.items()
            for b, line in targets.items() if rank[layer(b)] > rank[layer(a)]]


def test_no_layer_imports_one_above_it() -> None:
    assert not upward(import_graph()), "\n".join(upward(import_graph()))


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert not cycles(import_graph()), cycles(import_graph())


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    """A circle hidden in a function, the engine reaching up into pages or into an analysis, and a
    plain type reaching into the engine are all caught."""
    for folder in ("model/core", "model/engine", "model/analyses", "pages"):
        (tmp_path / folder).mkdir(parents=True)
    for package in ("model", "model/core", "model/engine", "model/analyses"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "model" / "engine" / "a.py").write_text("from . import b\n")
    (tmp_path / "model" / "engine" / "b.py").write_text("def f():\n    from .a import x\n")
    (tmp_path / "model" / "engine" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                        "    from .a import y\nimport pages.p\n")
    (tmp_path / "pages" / "p.py").write_text("from model.engine import c\n")
    (tmp_path / "model" / "analyses" / "lens.py").write_text("from ..engine import a\n")
    (tmp_path / "model" / "engine" / "d.py").write_text("from ..analyses import lens\n")
    (tmp_path / "model" / "core" / "e.py").write_text("def f():\n    from ..engine.a import x\n")
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["model.engine.a", "model.engine.b"], ["model.engine.c", "pages.p"]]
    assert sorted(upward(graph)) == [
        "model.core.e (line 2) imports model.engine.a, a layer above it",
        "model.engine.c (line 4) imports pages.p, a layer above it",
        "model.engine.d (line 1) imports model.analyses.lens, a layer above it",
    ]
    assert "model.engine.a" not in graph["model.engine.c"]  # a TYPE_CHECKING import never runs
