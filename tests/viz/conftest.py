"""Synthetic Captures for viz tests: seeded, valid, with causal softmax attention. No model loads.

Use the `synthetic_capture` fixture for a default one, or the `capture_builder` fixture (it is
`make_capture`) to build your own: `capture_builder(tokens=["a", "<b>"], n_layers=1)`.
Importing `make_capture` from `conftest` is fragile (several conftest.py files share that module
name), so prefer the fixtures.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from model import Capture, ModelSummary

DEFAULT_TOKENS = ["The", "·spy", "·was", "·a", "·mole", "·inside", "·the", "·agency", "."]


def _causal_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax over keys at or before the query: zero above the diagonal. (..., T, T)"""
    T = scores.shape[-1]
    future = np.triu(np.ones((T, T), dtype=bool), k=1)  # (T, T) True above the diagonal
    masked = np.where(future, -np.inf, scores)
    masked = masked - masked.max(axis=-1, keepdims=True)
    weights = np.exp(masked)
    return weights / weights.sum(axis=-1, keepdims=True)


def make_capture(
    tokens: list[str] | None = None,
    n_layers: int = 2,
    n_heads: int = 3,
    d_model: int = 8,
    vocab: int = 50,
    seed: int = 0,
    n_kv_heads: int | None = None,
    attention: np.ndarray | None = None,
    prompt: str | None = None,
) -> Capture:
    """A valid seeded Capture; `attention` (L, H, T, T) overrides the random causal softmax."""
    tokens = list(DEFAULT_TOKENS if tokens is None else tokens)
    T, L, H, D = len(tokens), n_layers, n_heads, d_model
    rng = np.random.default_rng(seed)
    if attention is None:
        attention = _causal_softmax(rng.normal(0.0, 2.0, size=(L, H, T, T)))  # (L, H, T, T)
    config = ModelSummary(
        name="synthetic",
        architecture="SyntheticForCausalLM",
        n_layers=L,
        n_heads=H,
        n_kv_heads=n_kv_heads or H,
        head_dim=max(1, D // H),
        d_model=D,
        vocab_size=vocab,
    )
    return Capture(
        prompt="".join(t.replace("·", " ") for t in tokens) if prompt is None else prompt,
        tokens=tokens,
        token_ids=rng.integers(0, vocab, size=T).astype(np.int64),  # (T,)
        attention=np.asarray(attention, dtype=np.float32).copy(),
        residual=rng.normal(size=(L + 1, T, D)).astype(np.float32),  # (L+1, T, D)
        attn_out=rng.normal(size=(L, T, D)).astype(np.float32),  # (L, T, D)
        mlp_out=rng.normal(size=(L, T, D)).astype(np.float32),  # (L, T, D)
        logits=rng.normal(size=(T, vocab)).astype(np.float32),  # (T, V)
        model_name="synthetic",
        summary=config,
        device="cpu",
        dtype="float32",
        seconds=0.001,
    )


@pytest.fixture
def synthetic_capture() -> Capture:
    """The default synthetic Capture: 9 tokens, 2 layers, 3 heads, d_model 8, vocab 50."""
    return make_capture()


@pytest.fixture
def capture_builder() -> Callable[..., Capture]:
    """`make_capture` itself, for tests that need their own tokens or sizes."""
    return make_capture
