"""Switching a head off over a set equals switching it off for each prompt alone (the Ablation
page's logits), for zero and for the set's mean output."""
from __future__ import annotations

import numpy as np
import pytest
from set_rows import rows

from model.analyses.ablation import Ablation, ablated_logits
from model.analyses.sets.ablation import ablation_parts, effect_name, set_means
from model.analyses.sets.batches import Part

HEADS = [(0, 1), (1, 0)]


def _run(parts) -> Part:
    results: Part = {}
    for part in parts:
        for i, values in part.items():
            results.setdefault(i, {}).update(values)
    return results


@pytest.mark.parametrize("how", ["zero", "mean"])
def test_each_head_equals_each_prompt_alone(tiny_lm, how):
    set_rows = rows(tiny_lm)
    results = _run(ablation_parts(tiny_lm, set_rows, HEADS, how))
    means = set_means(tiny_lm, set_rows, {0, 1})
    for i, row in enumerate(set_rows):
        ids = list(row.ids)
        plain = tiny_lm.forward(ids, last_only=True).logits
        base = plain[row.answer] - plain[row.contrast]
        assert results[i]["diff"] == pytest.approx(base, abs=1e-4)
        for head in HEADS:
            values = {head[0]: np.repeat(means[head[0]][None], len(ids), axis=0)} if how == "mean" else None
            off = ablated_logits(tiny_lm, ids, [head], Ablation(how), values).logits.rows[-1]
            assert results[i][effect_name(head)] == pytest.approx(off[row.answer] - off[row.contrast] - base, abs=1e-4)
    assert any(abs(float(results[0][effect_name(h)])) > 1e-4 for h in HEADS)  # a head switched off moves something


def test_set_mean_is_the_mean_over_real_positions(tiny_lm):
    set_rows = rows(tiny_lm)[:2]
    from model.analyses.ablation import head_inputs

    outputs = [head_inputs(tiny_lm, r.ids, [1])[1] for r in set_rows]  # (T_i, width) each, no padding
    expected = np.concatenate(outputs).mean(axis=0)
    assert np.allclose(set_means(tiny_lm, set_rows, {1})[1], expected, atol=1e-5)
