"""Shared fixtures: the real default model (loaded once per session) and tiny random models."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_models import tiny_model

from model import LanguageModel, load_model
from model.core.settings import settings
from model.engine.default_model import ensure_converted

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Test tiers (`make check` runs `-m "not slow"`): a test that loads the real default model is
    `slow` (the default_lm fixture, or the whole app through AppTest in tests/pages); the browser
    tests in tests/e2e are `e2e` and `slow`."""
    for item in items:
        floor = Path(str(item.fspath)).resolve().relative_to(TESTS).parts[0]
        if floor == "e2e":
            item.add_marker(pytest.mark.e2e)
        if floor in ("e2e", "pages") or "default_lm" in item.fixturenames:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings are read once per process: each test reads its own XRAY_* variables (set them before the
    code under test first asks; after that, `settings.cache_clear()` reads them again)."""
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture(scope="session")
def default_lm() -> LanguageModel:
    """The embedded default model on the CPU in float32, the numbers every test states (a GPU run of
    the suite would otherwise pick CUDA and bfloat16; tests/model/engine/test_gpu.py covers that path).
    Missing model = failing suite, never a silent skip."""
    return load_model(device="cpu")


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ensure_converted())


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def tiny_lm(request, tokenizer) -> LanguageModel:
    model = tiny_model(request.param, len(tokenizer))
    return LanguageModel(model, tokenizer, f"tiny-{request.param}", "cpu", torch.float32)
