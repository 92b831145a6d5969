"""Long captures (model/engine/language_model.py, PATTERNS_ON_DEMAND_TOKENS): from that length a capture
runs the fast kernel and its `attention` keeps each layer's queries and keys, any head recomputed on
demand. Its patterns equal transformers' eager ones, and a batched row's or an extension's equal a
single capture's. Tiny models lower the threshold (their positions end at 256); the default model
runs past the real one."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model import LanguageModel
from model.core.errors import XrayError
from model.core.patterns import Patterns
from model.engine import language_model
from model.engine.batching import Request

PROMPT = ("The quick brown fox jumps over the lazy dog because it can, and then it runs home again to sleep "
          "until the morning, when the birds sing and the sun rises over the quiet hills.")
FIELDS = ("residual", "attn_out", "mlp_out", "logits")


@pytest.fixture
def low_threshold(monkeypatch):
    """Patterns on demand from 8 tokens: the tiny models' prompts count as long."""
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 8)


def eager_reference(lm: LanguageModel, ids: list[int]):
    with torch.no_grad():
        return lm.model(torch.tensor(ids)[None], output_attentions=True, output_hidden_states=True, use_cache=False)


def assert_same_patterns(got: Patterns, want: Patterns, atol: float) -> None:
    assert got.shape == want.shape
    for layer in range(want.n_layers):
        for head in range(want.n_heads(layer)):
            np.testing.assert_allclose(got.head(layer, head), want.head(layer, head), atol=atol, rtol=0,
                                       err_msg=f"layer {layer} head {head}")


def test_a_long_capture_keeps_queries_and_keys_and_matches_transformers(tiny_lm, low_threshold):
    ids = tiny_lm.encode(PROMPT)
    cap = tiny_lm.capture_ids(ids)
    assert cap.attention.full is None and cap.attention.nbytes < np.prod(cap.attention.shape) * 4
    ref = eager_reference(tiny_lm, ids)
    for layer, weights in enumerate(ref.attentions):
        for head in range(weights.shape[1]):
            np.testing.assert_allclose(cap.attention.head(layer, head), weights[0, head].numpy(), atol=1e-6)
    np.testing.assert_allclose(cap.residual[:-1], np.stack([h[0].numpy() for h in ref.hidden_states])[:-1], atol=1e-5)
    np.testing.assert_allclose(cap.logits, ref.logits[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(cap.attention[1], np.stack([w.numpy() for w in ref.attentions[1][0]]), atol=1e-6)


def test_batched_rows_keep_each_rows_own_patterns(tiny_lm, low_threshold):
    ids = tiny_lm.encode(PROMPT)
    short = ids[:-7]
    requests = [Request(ids, None), Request(short, None)]
    tiny_lm._capture_rows(requests)
    for request, want in zip(requests, (tiny_lm.capture_ids(ids), tiny_lm.capture_ids(short))):
        got = request.answer()
        assert got.attention.full is None and got.n_tokens == want.n_tokens
        assert_same_patterns(got.attention, want.attention, 1e-5)
        for name in FIELDS:
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=1e-5, err_msg=name)


def test_an_extension_equals_a_full_capture(tiny_lm, low_threshold, monkeypatch):
    ids = tiny_lm.encode(PROMPT)
    full = tiny_lm.capture_ids(ids)
    passes: list[int] = []  # tokens each pass ran
    forward = tiny_lm.forward
    monkeypatch.setattr(tiny_lm, "forward", lambda run, **kw: passes.append(len(run)) or forward(run, **kw))
    for cut in (12, len(ids) - 1):
        base = tiny_lm.capture_ids(ids[:cut])
        passes.clear()
        extended = tiny_lm.extend_capture(base, ids)
        assert passes == [len(ids) - cut]  # only the new tokens ran, from base's keys and values
        assert extended.attention.full is None
        assert_same_patterns(extended.attention, full.attention, 1e-5)
        for name in FIELDS:
            np.testing.assert_allclose(getattr(extended, name), getattr(full, name), atol=1e-5, err_msg=name)
    prefix = tiny_lm.extend_capture(full, ids[:20])  # nothing new to run: the first 20 tokens' patterns
    assert_same_patterns(prefix.attention, tiny_lm.capture_ids(ids[:20]).attention, 1e-6)


def test_whole_patterns_past_the_budget_name_the_view(tiny_lm, low_threshold, monkeypatch):
    from model.core import patterns

    cap = tiny_lm.capture(PROMPT)
    monkeypatch.setattr(patterns, "MATERIALIZE_BUDGET", 1000)
    with pytest.raises(XrayError, match="test_long_capture.py:test_whole_patterns_past_the_budget_name_the_view"):
        np.asarray(cap.attention)
    assert cap.attention.pooled(0, 0, 4).shape == (4, 4)  # windows and overviews still answer


@pytest.mark.slow
def test_the_default_model_past_the_threshold(default_lm):
    """Past PATTERNS_ON_DEMAND_TOKENS the default model's capture is one fast pass: a few heads equal
    transformers' eager attentions within sdpa's float32 rounding, the stream and logits within the
    capture parity's tolerances."""
    words = "When Mary and John went to the store, John gave a drink to Mary because she was thirsty. "
    ids = default_lm.encode(words * 20)[:language_model.PATTERNS_ON_DEMAND_TOKENS + 44]
    cap = default_lm.capture_ids(ids)
    assert cap.attention.full is None and cap.n_tokens == language_model.PATTERNS_ON_DEMAND_TOKENS + 44
    ref = eager_reference(default_lm, ids)
    for layer, head in ((0, 0), (5, 3), (17, 8), (29, 4)):
        np.testing.assert_allclose(cap.attention.head(layer, head), ref.attentions[layer][0, head].numpy(), atol=1e-5,
                                   err_msg=f"layer {layer} head {head}")
    hidden = np.stack([h[0].numpy() for h in ref.hidden_states])
    np.testing.assert_allclose(cap.residual[:-1], hidden[:-1], atol=1e-3, rtol=1e-5)
    np.testing.assert_allclose(cap.logits, ref.logits[0].numpy(), atol=1e-3)
