"""Per-head attribution and contrast mode: the heads of a block (plus the projection's bias) add up
to the block's attention bar, their writes rebuild the captured attention output, and a contrast
attribution is the difference of two single-token attributions."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses.attribution import direct_logit_attribution, readout
from model.analyses.head_attribution import head_attribution, head_outputs
from model.engine.linear import bias, matrix

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def cap(tiny_lm):
    return tiny_lm.capture(PROMPT)


def test_heads_sum_to_the_attention_bar(tiny_lm, cap):
    for pos in (2, cap.n_tokens - 1):
        token = int(np.argmax(cap.logits[pos]))
        for versus in (None, 9):
            attr = direct_logit_attribution(tiny_lm, cap, pos, token, versus)
            heads = head_attribution(tiny_lm, head_outputs(tiny_lm, cap, pos), pos,
                                     readout(tiny_lm, cap, pos, token, versus))
            assert heads.heads.shape == (cap.summary.n_layers, cap.summary.n_heads)
            assert np.allclose(heads.layers, attr.attn, atol=1e-4)
            assert np.abs(heads.heads).max() > 1e-3  # the heads carry something (not all bias)


def test_head_writes_rebuild_the_attention_output(tiny_lm, cap):
    pos = 4
    z = head_outputs(tiny_lm, cap, pos)  # (L, H, hd)
    for layer, proj in enumerate(tiny_lm.layout.out_projs):
        rebuilt = matrix(proj) @ z[layer].reshape(-1).astype(np.float64) + bias(proj)
        assert np.allclose(rebuilt, cap.attn_out[layer, pos], atol=1e-5)


def test_top_heads_are_sorted_by_size(tiny_lm, cap):
    pos = cap.n_tokens - 1
    heads = head_attribution(tiny_lm, head_outputs(tiny_lm, cap, pos), pos, readout(tiny_lm, cap, pos, 5))
    top = heads.top(4)
    assert [abs(v) for _, _, v in top] == sorted((abs(v) for _, _, v in top), reverse=True)
    layer, head, value = top[0]
    assert value == heads.heads[layer, head] and abs(value) == np.abs(heads.heads).max()


def test_contrast_is_the_difference_of_two_attributions(tiny_lm, cap):
    pos = cap.n_tokens - 1
    a, b = (int(i) for i in np.argsort(-cap.logits[pos])[:2])
    both = direct_logit_attribution(tiny_lm, cap, pos, a, versus=b)
    one, two = direct_logit_attribution(tiny_lm, cap, pos, a), direct_logit_attribution(tiny_lm, cap, pos, b)
    assert both.versus == b
    assert both.embedding == pytest.approx(one.embedding - two.embedding, abs=1e-6)
    assert np.allclose(both.attn, one.attn - two.attn, atol=1e-6)
    assert np.allclose(both.mlp, one.mlp - two.mlp, atol=1e-6)
    assert both.bias == pytest.approx(one.bias - two.bias, abs=1e-6)
    assert both.logit == pytest.approx(float(cap.logits[pos, a] - cap.logits[pos, b]), abs=1e-6)
    assert both.total == pytest.approx(both.logit, abs=1e-4)
