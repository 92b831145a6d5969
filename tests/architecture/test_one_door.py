"""One door to the model, read from the source (ast): one module registers attention functions with
transformers, no module imports another's private names, and only the engine hooks modules or takes
the model's lock: analyses name patch sites and listen to attention, and the engine installs the hooks."""
from __future__ import annotations

import ast
from pathlib import Path

from test_layers import ROOT, TOPS

REGISTRIES = {"AttentionInterface", "AttentionMaskInterface", "ALL_ATTENTION_FUNCTIONS", "ALL_MASK_ATTENTION_FUNCTIONS"}
# Hooks on modules, and the lock the gateway holds around a pass. A gradient tap on a tensor inside a
# patch site's edit (patching's attribution) is no module hook: the engine installed the site.
ENGINE_ONLY = {"register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
               "register_full_backward_pre_hook", "register_module_forward_hook", "lock"}


def _sources(root: Path = ROOT) -> dict[str, ast.AST]:
    """Relative path -> parsed tree of every first-party module."""
    paths = [*root.glob("*.py"), *(p for top in TOPS for p in (root / top).rglob("*.py"))]
    return {str(p.relative_to(root)): ast.parse(p.read_text(), filename=str(p)) for p in paths}


def _names(tree: ast.AST) -> set[str]:
    """Every name a module uses, imports or reads as an attribute."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(alias.name.rpartition(".")[2] for alias in node.names)
    return found


def _private_imports(tree: ast.AST) -> list[str]:
    """`from module import _name` of a first-party module (relative or model/viz/pages)."""
    return [f"{node.module or '.'}.{alias.name} (line {node.lineno})" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in TOPS)
            for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]


def test_only_the_engines_attention_module_registers_attention_functions() -> None:
    users = sorted(path for path, tree in _sources().items() if _names(tree) & REGISTRIES)
    assert users == ["model/engine/attention.py"]


def test_no_module_imports_another_modules_private_names() -> None:
    found = {path: names for path, tree in _sources().items() if (names := _private_imports(tree))}
    assert not found, found


def test_only_the_engine_hooks_modules_or_takes_the_model_lock() -> None:
    found = {path: sorted(names) for path, tree in _sources().items()
             if not path.startswith("model/engine/") and (names := _names(tree) & ENGINE_ONLY)}
    assert not found, found


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "a.py").write_text(
        "from transformers import AttentionInterface\nfrom .b import _private, public\n"
        "def f(m):\n    m.register_forward_pre_hook(print)\n")
    tree = _sources(tmp_path)["model/a.py"]
    assert {"AttentionInterface", "register_forward_pre_hook"} <= _names(tree)
    assert _private_imports(tree) == ["b._private (line 2)"]
