"""A prompt set's logit differences and per-head shares from padded batches equal each prompt run
alone: the model's own logits, and the Attribution page's per-head shares."""
from __future__ import annotations

import numpy as np
import pytest
from set_rows import rows

from model.analyses.attribution import readout
from model.analyses.head_attribution import head_attribution, head_outputs
from model.analyses.sets.batches import Part, groups, stacked
from model.analyses.sets.direct import direct_parts


def _run(lm, set_rows, **kw) -> Part:
    results: Part = {}
    for part in direct_parts(lm, set_rows, **kw):
        results.update(part)
    return results


def test_padded_batches_equal_each_prompt_alone(lm):
    set_rows = rows(lm)
    assert len({len(r.ids) for r in set_rows}) > 2  # the pass really pads
    results = _run(lm, set_rows)
    for i, row in enumerate(set_rows):
        alone = lm.forward(list(row.ids), last_only=True).logits
        assert results[i]["diff"] == pytest.approx(alone[row.answer] - alone[row.contrast], abs=2e-4)
        if row.corrupted_ids is not None:
            bad = lm.forward(list(row.corrupted_ids), last_only=True).logits
            assert results[i]["corrupted_diff"] == pytest.approx(bad[row.answer] - bad[row.contrast], abs=2e-4)
        else:
            assert "corrupted_diff" not in results[i]


def test_head_shares_equal_the_one_prompt_view(lm):
    set_rows = rows(lm)
    results = _run(lm, set_rows)
    for i, row in enumerate(set_rows):
        cap = lm.capture_ids(list(row.ids))
        pos = cap.n_tokens - 1
        one = head_attribution(lm, head_outputs(lm, cap, pos), pos, readout(lm, cap, pos, row.answer, row.contrast))
        assert np.allclose(results[i]["heads"], one.heads, atol=2e-4)
    indices, heads = stacked(results, "heads")
    assert indices.tolist() == list(range(len(set_rows)))
    assert heads.shape == (len(set_rows), lm.summary.n_layers, lm.summary.n_heads)


def test_groups_bound_each_pass_and_keep_every_prompt():
    lengths = [5, 40, 7, 300, 5, 12]
    found = groups(lengths, max_cells=64, max_rows=3)
    assert sorted(i for g in found for i in g) == list(range(len(lengths)))
    for g in found:
        assert len(g) <= 3
        assert len(g) == 1 or len(g) * max(lengths[i] for i in g) <= 64
    assert [3] in found  # longer than a pass allows: a pass of its own


def test_a_left_padding_tokenizer_gives_the_same_rows(tiny_lm):
    """The set pads its rows itself (after each prompt), so a tokenizer that pads on the left changes
    nothing: the same ids, the same numbers, each equal to the prompt alone."""
    import copy

    from model import LanguageModel

    tokenizer = copy.deepcopy(tiny_lm.tokenizer)
    tokenizer.padding_side = "left"
    left = LanguageModel(tiny_lm.model, tokenizer, tiny_lm.name + "-left", "cpu", tiny_lm.dtype)
    set_rows = rows(left)
    assert [r.ids for r in set_rows] == [r.ids for r in rows(tiny_lm)]
    got, want = _run(left, set_rows), _run(tiny_lm, rows(tiny_lm))
    for i, row in enumerate(set_rows):
        alone = left.forward(list(row.ids), last_only=True).logits
        assert got[i]["diff"] == pytest.approx(alone[row.answer] - alone[row.contrast], abs=2e-4)
        assert np.allclose(got[i]["heads"], want[i]["heads"], atol=1e-6)
