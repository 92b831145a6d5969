"""Shared fixtures: the real default model (loaded once per session) and tiny random models."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import LanguageModel, load_model
from model.default_model import ensure_converted

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


@pytest.fixture(scope="session")
def default_lm() -> LanguageModel:
    """The embedded default model on the CPU in float32, the numbers every test states (a GPU run of
    the suite would otherwise pick CUDA and bfloat16; tests/model/test_gpu.py covers that path).
    Missing model = failing suite, never a silent skip."""
    return load_model(device="cpu")


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ensure_converted())


def tiny_model(kind: str, vocab_size: int, seed: int = 0) -> torch.nn.Module:
    """A deliberately tiny random causal LM (no hub): 'gpt2' or 'llama' (grouped-query attention)."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(seed)
    if kind == "gpt2":
        cfg = GPT2Config(
            vocab_size=vocab_size, n_embd=32, n_layer=3, n_head=4, n_positions=256, bos_token_id=1, eos_token_id=2
        )
    elif kind == "llama":
        cfg = LlamaConfig(
            vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        )
    else:
        raise ValueError(kind)
    cfg._attn_implementation = "eager"
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def tiny_lm(request, tokenizer) -> LanguageModel:
    model = tiny_model(request.param, len(tokenizer))
    return LanguageModel(model, tokenizer, f"tiny-{request.param}", "cpu", torch.float32)
