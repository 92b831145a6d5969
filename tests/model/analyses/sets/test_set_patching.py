"""Patching over a set of pairs: the attribution estimate from padded batches equals the one-pair
page's estimate of each pair run alone, and exact patching per pair is the one-pair page's."""
from __future__ import annotations

import numpy as np
import pytest
from set_rows import rows

from model.analyses.patching import PatchPair, attribution, exact, record
from model.analyses.sets.batches import Part, stacked
from model.analyses.sets.patching import aligned, attribution_parts, exact_parts, pairs


def _run(parts) -> Part:
    results: Part = {}
    for part in parts:
        results.update(part)
    return results


def _pair(lm, row) -> PatchPair:
    return PatchPair(record(lm, list(row.ids)), record(lm, list(row.corrupted_ids)), lm.summary)


def test_batched_estimate_equals_each_pair_alone(lm):
    set_rows = rows(lm)
    results = _run(attribution_parts(lm, set_rows))
    assert sorted(results) == pairs(set_rows) == [0, 1, 2]  # the row without a corrupted prompt is no pair
    for i in pairs(set_rows):
        row = set_rows[i]
        alone = attribution(lm, _pair(lm, row), row.answer, row.contrast)
        for view, grid in alone.items():
            got = results[i][f"attribution_{view}"]
            assert got.shape == grid.values.shape
            assert np.allclose(got, grid.values, atol=1e-4 * max(1.0, np.abs(grid.values).max())), view


def test_exact_per_pair_is_the_one_pair_grid(tiny_lm):
    set_rows = rows(tiny_lm)
    seen: list[tuple[int, int]] = []
    results = _run(exact_parts(tiny_lm, set_rows, "residual", progress=lambda done, total: seen.append((done, total))))
    for i in pairs(set_rows):
        row = set_rows[i]
        one = exact(tiny_lm, _pair(tiny_lm, row), row.answer, row.contrast, "residual")
        assert np.array_equal(results[i]["exact_residual"], one.values)
    assert seen and seen[-1][0] == seen[-1][1]


def test_grids_of_different_lengths_line_up_from_the_end(tiny_lm):
    results = _run(attribution_parts(tiny_lm, rows(tiny_lm)))
    indices, _ = stacked(results, "attribution_heads")
    grids = [results[int(i)]["attribution_residual"] for i in indices]
    together, k = aligned(grids)
    assert k == min(g.shape[1] for g in grids) < max(g.shape[1] for g in grids)
    for g, row in zip(grids, together):
        assert np.array_equal(row[:, -1], g[:, -1])  # the last position (where the answer is read) lines up


def test_a_whole_block_patched_at_once_equals_its_own_run(tiny_lm):
    """Every block's output patched at every position, all blocks of a pair in one pass, equals one run
    with that block's clean output written in."""
    import torch

    from model.analyses.sets.patching import exact_block_parts

    set_rows = rows(tiny_lm)
    results = _run(exact_block_parts(tiny_lm, set_rows, "mlp_out"))
    for i in pairs(set_rows):
        row = set_rows[i]
        pair = _pair(tiny_lm, row)
        clean, bad = pair.logit_diffs(row.answer, row.contrast)
        for layer in range(tiny_lm.summary.n_layers):
            source = torch.as_tensor(pair.clean.sites["mlp_out"][layer])
            one = tiny_lm.forward(list(row.corrupted_ids), sites={("mlp_out", layer): lambda t, s=source: s[None].to(t.dtype)},
                                  last_only=True).logits
            expected = (one[row.answer] - one[row.contrast] - bad) / (clean - bad)
            got = results[i]["exact_block_mlp_out"][layer]
            assert got == pytest.approx(expected, rel=1e-3, abs=1e-4)  # a batch's rows round apart
