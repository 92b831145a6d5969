"""Property tests: any unicode text either captures with consistent shapes and valid attention, or
is refused with a message; the token strip always shows every token's text."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model import PromptError

from test_hostile_prompts import check_strip

# Any code point, lone surrogates included (pasted text can carry them).
TEXT = st.text(st.characters(exclude_categories=()), min_size=0, max_size=24)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check_capture(lm, text: str) -> None:
    """The invariants a capture must keep whatever the text."""
    try:
        cap = lm.capture(text, 512)
    except PromptError as exc:
        assert text == "" or "no tokens" in str(exc)
        return
    L, H, T, D = cap.summary.n_layers, cap.summary.n_heads, cap.n_tokens, cap.summary.d_model
    assert T == len(cap.tokens) == len(cap.token_ids) >= 1
    assert cap.attention.shape == (L, H, T, T)  # (L, H, T, T)
    assert cap.residual.shape == (L + 1, T, D) and cap.logits.shape == (T, cap.summary.vocab_size)
    np.testing.assert_allclose(np.asarray(cap.attention).sum(-1), 1.0, atol=1e-4)  # each query row is a distribution
    assert np.all(np.triu(cap.attention, k=1) == 0)  # causal: no token looks ahead
    assert np.all(np.isfinite(cap.logits))
    check_strip(cap.tokens, cap.token_ids)


@settings(max_examples=25, **SETTINGS)
@given(text=TEXT)
def test_any_text_on_tiny_models(tiny_lm, text):
    check_capture(tiny_lm, text)


@settings(max_examples=6, **SETTINGS)
@given(text=TEXT)
def test_any_text_on_default_model(default_lm, text):
    check_capture(default_lm, text)


@settings(max_examples=40, deadline=None)
@given(text=TEXT)
def test_tokenizing_any_text(tokenizer, text):
    from model.core.tokens import clean_prompt, readable_tokens

    ids = tokenizer(clean_prompt(text), add_special_tokens=True)["input_ids"]
    tokens = readable_tokens(tokenizer, ids)
    assert len(tokens) == len(ids)
    assert all(tok and "\x00" not in tok for tok in tokens)  # every token shows something visible
