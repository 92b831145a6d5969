"""The floors' import rules, read from the code's own imports (ast, not a text search):
model/ and viz/ never import streamlit; viz/ never imports torch; pages/ never import torch or
transformers. Plus one run-time check: importing a viz module leaves torch unloaded."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {  # floor -> top-level packages it must never import (at any depth of the file)
    "model": {"streamlit"},
    "viz": {"streamlit", "torch"},
    "pages": {"torch", "transformers"},
}


def imported_packages(path: Path) -> dict[str, int]:
    """Top-level package of every import in the file (any depth, lazy ones included) -> first line."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            found.setdefault(name.split(".")[0], node.lineno)
    return found


def violations(floor: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {package}"
            for path in sorted((ROOT / floor).rglob("*.py"))
            for package, line in imported_packages(path).items() if package in FORBIDDEN[floor]]


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_floor_never_imports_what_lies_above_or_below_its_reach(floor):
    assert (ROOT / floor).is_dir()
    assert not violations(floor), "\n".join(violations(floor))


def test_the_checker_sees_lazy_and_dotted_imports(tmp_path):
    """The rule must catch imports inside functions and `from torch.nn import x`, not only top-level ones."""
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\ndef f():\n    from torch.nn import functional\n    import streamlit.runtime as r\n")
    assert imported_packages(sample) == {"os": 1, "torch": 4, "streamlit": 5}


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=True)
    return set(out.stdout.split())


def test_viz_import_leaves_torch_unloaded():
    """viz draws from plain numpy Captures: importing it must not pay for torch (seconds of imports)."""
    loaded = _modules_after_import("viz.next_token")
    assert "torch" not in loaded and "transformers" not in loaded and "streamlit" not in loaded
