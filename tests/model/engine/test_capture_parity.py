"""The hooked capture equals transformers' own outputs on tiny random GPT-2 and Llama models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

PROMPT = "The quick brown fox jumps over the lazy dog because it can"


def reference(lm, prompt):
    ids = torch.tensor([lm.encode(prompt)])
    with torch.no_grad():
        return lm.model(ids, output_attentions=True, output_hidden_states=True, use_cache=False)


def test_attention_equals_output_attentions(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    ref = reference(tiny_lm, PROMPT)
    expected = np.stack([a[0].numpy() for a in ref.attentions])  # (L, H, T, T)
    np.testing.assert_allclose(cap.attention, expected, atol=1e-6)


def test_residual_equals_hidden_states(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    ref = reference(tiny_lm, PROMPT)
    hidden = np.stack([h[0].numpy() for h in ref.hidden_states])  # (L+1, T, D)
    # transformers reports its last hidden state after the final norm; ours is the raw stream.
    np.testing.assert_allclose(cap.residual[:-1], hidden[:-1], atol=1e-5)
    normed = tiny_lm.layout.final_norm(torch.from_numpy(cap.residual[-1].copy())).detach().numpy()
    np.testing.assert_allclose(normed, hidden[-1], atol=1e-5)


def test_logits_equal_model_logits(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    np.testing.assert_allclose(cap.logits, reference(tiny_lm, PROMPT).logits[0].numpy(), atol=1e-5)


def test_residual_decomposes_into_attention_and_mlp(tiny_lm):
    """resid_post(l) = resid_pre(l) + attn_out(l) + mlp_out(l) for these sequential-residual blocks."""
    cap = tiny_lm.capture(PROMPT)
    rebuilt = cap.residual[:-1] + cap.attn_out + cap.mlp_out
    np.testing.assert_allclose(cap.residual[1:], rebuilt, atol=1e-5)


def test_rows_sum_to_one_and_future_is_exactly_zero(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    np.testing.assert_allclose(np.asarray(cap.attention).sum(-1), 1.0, atol=1e-5)
    upper = np.triu(np.ones((cap.n_tokens, cap.n_tokens), dtype=bool), k=1)
    assert (cap.attention[..., upper] == 0).all()


def test_hooks_removed_after_failing_pass(tiny_lm, monkeypatch):
    def count_hooks():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in tiny_lm.model.modules())

    before = count_hooks()
    mlp = tiny_lm.layout.mlps[1]
    original = mlp.forward

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(mlp, "forward", broken)
    with pytest.raises(Exception, match="boom"):
        tiny_lm.capture(PROMPT)
    monkeypatch.setattr(mlp, "forward", original)
    assert count_hooks() == before
    tiny_lm.capture(PROMPT)  # still works afterwards
    assert count_hooks() == before


def test_capture_changes_nothing_in_the_model(tiny_lm):
    before = reference(tiny_lm, PROMPT).logits
    tiny_lm.capture(PROMPT)
    assert torch.equal(before, reference(tiny_lm, PROMPT).logits)


def test_capture_is_plain_read_only_data(tiny_lm):
    import pickle

    cap = tiny_lm.capture(PROMPT)
    assert not np.asarray(cap.attention).flags.writeable
    clone = pickle.loads(pickle.dumps(cap))
    np.testing.assert_array_equal(clone.attention, cap.attention)
    assert clone.summary.n_layers == 3 and clone.summary.n_heads == 4
