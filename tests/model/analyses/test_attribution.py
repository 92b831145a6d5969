"""Direct logit attribution: the shares add up to the model's own logit, and each share is the
projection a reference computes by hand."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses.attribution import direct_logit_attribution, final_norm


def test_shares_sum_to_the_logit_tiny(tiny_lm):
    cap = tiny_lm.capture("The capital of France is Paris and")
    for pos in (0, 3, cap.n_tokens - 1):
        for token in (int(np.argmax(cap.logits[pos])), 11):
            a = direct_logit_attribution(tiny_lm, cap, pos, token)
            assert a.total == pytest.approx(a.logit, abs=1e-4)
            assert abs(a.rest) < 1e-4  # plain residual blocks: nothing unexplained
            assert a.attn.shape == a.mlp.shape == (cap.summary.n_layers,)


def test_one_share_matches_a_hand_reference(tiny_lm):
    cap = tiny_lm.capture("one two three")
    pos, token, layer = 2, 5, 1
    a = direct_logit_attribution(tiny_lm, cap, pos, token)
    norm = tiny_lm.layout.final_norm
    w = norm.weight.detach().double().numpy()
    u = tiny_lm.model.get_output_embeddings().weight[token].detach().double().numpy()
    x, c = cap.residual[-1, pos].astype(np.float64), cap.mlp_out[layer, pos].astype(np.float64)
    if a.norm_kind == "layer":
        x, c = x - x.mean(), c - c.mean()
    eps = getattr(norm, "eps", None) or norm.variance_epsilon
    assert a.mlp[layer] == pytest.approx((u * w) @ c / np.sqrt((x * x).mean() + eps), abs=1e-6)


def test_final_norm_numbers_reproduce_the_module(tiny_lm):
    cap = tiny_lm.capture("one two three")
    norm = final_norm(tiny_lm)
    x = cap.residual[-1, 1]
    expected = tiny_lm.layout.final_norm(__import__("torch").tensor(x)).detach().numpy()
    assert np.allclose(norm.apply(x), expected, atol=1e-5)


def test_the_final_norm_is_measured_once_and_kept(tiny_lm):
    """The facts' norm kind and attribution's numbers come from one measurement, kept on the model."""
    assert final_norm(tiny_lm) is final_norm(tiny_lm)
    assert tiny_lm.facts.norm == final_norm(tiny_lm).kind == tiny_lm.norm_fit.kind


def test_shares_sum_to_the_logit_default(default_lm):
    cap = default_lm.capture("The capital of France is")
    last = cap.n_tokens - 1
    top10 = np.argsort(-cap.logits[last])[:10]
    for token in (int(top10[0]), int(top10[9])):
        a = direct_logit_attribution(default_lm, cap, last, token)
        assert a.norm_kind == "rms"
        assert a.total == pytest.approx(a.logit, abs=1e-3)  # float32 stream, float64 sums
    paris = direct_logit_attribution(default_lm, cap, last, int(top10[0]))
    assert paris.mlp[-1] > 1.0  # the last MLP pushes " Paris" up clearly


def test_bad_position_is_refused(tiny_lm):
    cap = tiny_lm.capture("one two")
    with pytest.raises(ValueError, match="position"):
        direct_logit_attribution(tiny_lm, cap, 5, 1)
