"""The embedded default model: offline, the numbers the issue measured, readable tokens, limits."""
from __future__ import annotations

import numpy as np
import pytest

from model import PromptError
from model.analyses.sampling import probabilities
from model.engine.default_model import converted_dir, gguf_path, is_converted


def test_ships_in_a_package_and_is_converted():
    assert gguf_path().stat().st_size > 90_000_000
    assert is_converted() and (converted_dir() / "model.safetensors").is_file()


def test_geometry(default_lm):
    s = default_lm.summary
    assert (s.n_layers, s.n_heads, s.n_kv_heads, s.head_dim, s.d_model, s.vocab_size) == (30, 9, 3, 64, 576, 49152)
    assert s.group_size == 3


def test_capture_shapes_and_paris(default_lm):
    cap = default_lm.capture("The capital of France is")
    T = 5  # no BOS token is added
    assert cap.tokens == ["The", "·capital", "·of", "·France", "·is"]
    assert cap.attention.shape == (30, 9, T, T) and cap.attention.dtype == np.float32
    assert cap.residual.shape == (31, T, 576) and cap.logits.shape == (T, 49152)
    assert cap.attn_out.shape == cap.mlp_out.shape == (30, T, 576)
    p = probabilities(cap.logits[-1], 1.0)
    assert default_lm.tokenizer.decode([int(p.argmax())]) == " Paris"
    assert p.max() == pytest.approx(0.77, abs=0.03)
    assert cap.device == "cpu" and cap.dtype == "float32" and cap.seconds > 0


def test_attention_rows_and_mask(default_lm):
    cap = default_lm.capture("def add(a, b):\n    return a + b")
    np.testing.assert_allclose(np.asarray(cap.attention).sum(-1), 1, atol=1e-4)
    assert (np.triu(np.ones((cap.n_tokens,) * 2), 1)[None, None] * cap.attention == 0).all()


@pytest.mark.parametrize(
    "text, must_contain",
    [("naïve café", "é"), ("🙂 ok", "<0x"), ("if x:\n\treturn", "↵"), ("a  b", "·")],
)
def test_readable_tokens(default_lm, text, must_contain):
    cap = default_lm.capture(text)
    joined = "".join(cap.tokens)
    assert must_contain in joined and "\ufffd" not in joined
    assert len(cap.tokens) == len(cap.token_ids)


def test_token_limit_message(default_lm):
    with pytest.raises(PromptError, match=r"13 tokens long; the limit is 10 tokens"):
        default_lm.capture("one two three four five six seven eight nine ten eleven twelve thirteen", max_tokens=10)


def test_huge_prompt_refused_before_tokenizing(default_lm, monkeypatch):
    calls = []
    monkeypatch.setattr(type(default_lm.tokenizer), "__call__", lambda *a, **k: calls.append(1))
    too_long = default_lm.token_limit.tokens * 64 + 1  # past 64 characters a token (the longest are ~80)
    with pytest.raises(PromptError, match=f"{too_long:,} characters"):
        default_lm.capture("x" * too_long)
    assert not calls


def test_empty_prompt_message(default_lm):
    with pytest.raises(PromptError, match="empty"):
        default_lm.capture("")
