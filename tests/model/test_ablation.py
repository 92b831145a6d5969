"""Head ablation against independent references: no heads = the capture's logits exactly; heads off
= the same model with those o_proj weights zeroed in a deep copy."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from model.ablation import ablated_logits, heads_key, heads_off, normalize_heads

PROMPT = "The quick brown fox jumps over the lazy dog because"


def zeroed_reference(lm, ids, heads):
    """Logits of a deep copy whose output projections ignore the chosen heads' features."""
    twin = copy.deepcopy(lm.model)
    layout_projs = [m for m in twin.modules() if m is not None]
    hd = lm.summary.head_dim
    names = {id(m): n for n, m in lm.model.named_modules()}
    twin_modules = dict(twin.named_modules())
    with torch.no_grad():
        for layer, head in heads:
            proj = twin_modules[names[id(lm.layout.out_projs[layer])]]
            cols = slice(head * hd, (head + 1) * hd)
            if isinstance(proj, torch.nn.Linear):  # weight (out, in): inputs are columns
                proj.weight[:, cols] = 0
            else:  # GPT-2 Conv1D: weight (in, out): inputs are rows
                proj.weight[cols, :] = 0
        del layout_projs
        return twin(torch.tensor([ids]), use_cache=False).logits[0].numpy()


def test_no_heads_reproduces_capture_exactly(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    logits = ablated_logits(tiny_lm, cap.token_ids.tolist(), [])
    assert np.array_equal(logits, cap.logits)


@pytest.mark.parametrize("heads", [[(0, 1)], [(1, 0), (1, 3), (2, 2)]])
def test_matches_zeroed_weights(tiny_lm, heads):
    ids = tiny_lm.encode(PROMPT)
    got = ablated_logits(tiny_lm, ids, heads)
    ref = zeroed_reference(tiny_lm, ids, heads)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert np.abs(got - tiny_lm.capture(PROMPT).logits).max() > 1e-4  # it really changed something


def test_hooks_removed_even_after_an_error(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    before = ablated_logits(tiny_lm, ids, [])
    with pytest.raises(RuntimeError):
        with heads_off(tiny_lm.layout, [(0, 0)]):
            raise RuntimeError("boom")
    ablated_logits(tiny_lm, ids, [(2, 1)])
    assert np.array_equal(ablated_logits(tiny_lm, ids, []), before)
    assert all(not p._forward_pre_hooks for p in tiny_lm.layout.out_projs)


def test_bad_heads_are_refused():
    with pytest.raises(ValueError, match="L3 H0"):
        normalize_heads([(3, 0)], n_layers=3, n_heads=4)
    assert normalize_heads([(1, 2), (0, 3), (1, 2)], 3, 4) == ((0, 3), (1, 2))
    assert heads_key([(1, 2), (0, 3)]) == heads_key([(0, 3), (1, 2)]) == "0.3,1.2"


def test_real_model_no_ablation_is_exact(default_lm):
    cap = default_lm.capture("The capital of France is")
    assert np.array_equal(ablated_logits(default_lm, cap.token_ids.tolist(), []), cap.logits)
    off = ablated_logits(default_lm, cap.token_ids.tolist(), [(0, h) for h in range(9)])
    assert not np.array_equal(off, cap.logits)
