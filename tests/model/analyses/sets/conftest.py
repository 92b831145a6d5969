"""The models a set runner is checked on: both tiny families, and the real default model once."""
from __future__ import annotations

import pytest


@pytest.fixture(params=["tiny-gpt2", "tiny-llama", pytest.param("default", marks=pytest.mark.slow)])
def lm(request):
    """Each tiny model, and the default model (requested by name, so its param carries the `slow` mark)."""
    if request.param == "default":
        return request.getfixturevalue("default_lm")
    return request.getfixturevalue("tiny_lms")[request.param]


@pytest.fixture(scope="session")
def tiny_lms(tokenizer) -> dict:
    import torch
    from tiny_models import tiny_model

    from model import LanguageModel

    return {f"tiny-{kind}": LanguageModel(tiny_model(kind, len(tokenizer)), tokenizer, f"tiny-{kind}", "cpu", torch.float32)
            for kind in ("gpt2", "llama")}
