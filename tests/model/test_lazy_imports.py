"""Importing the model package and its light modules costs no torch or transformers (a view or a test
that needs only sampling or settings starts in a fraction of a second), checked in fresh interpreters."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "sklearn")


def _imports(code: str) -> set[str]:
    """The heavy modules loaded after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(filter(None, out.stdout.strip().splitlines()[-1].removeprefix("heavy:").split(",")))


@pytest.mark.parametrize("code", [
    "import model",
    "import model.core, model.core.tokens, model.core.settings, model.core.capture, model.core.description",
    "import model.analyses.sampling, model.engine.layout, model.analyses.export",
    "from model import Capture, ModelSummary, XrayError, PromptError",
    "import model.analyses.generation, model.engine.lru, model.engine.capture_cache, model.engine.threads",
    "import model.analyses.head_scores, model.engine",
])
def test_light_imports_load_no_torch(code):
    assert _imports(code) == set()


def test_heavy_names_still_load_on_first_use():
    assert "torch" in _imports("from model import LanguageModel, load_model")


def test_preparing_the_default_model_prints_no_runpy_warning():
    """`python -m model.engine.default_model` used to warn that the module was already imported by the package."""
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c",
                          "import runpy; runpy.run_module('model.engine.default_model', run_name='not_main')"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "RuntimeWarning" not in out.stderr
