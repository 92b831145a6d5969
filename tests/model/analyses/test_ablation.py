"""Head ablation against independent references: no heads = the capture's logits exactly; heads off
= the same model with those o_proj weights zeroed in a deep copy; mean and resample ablation, at
every position or chosen ones = a deep copy run with plain torch pre-hooks that write the values in."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from model.analyses.ablation import (
    Ablation,
    ablated_logits,
    heads_key,
    heads_off,
    normalize_heads,
    normalize_positions,
    source_ids,
)
from model.core.errors import PromptError

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
    logits = ablated_logits(tiny_lm, cap.token_ids.tolist(), []).logits.rows
    assert np.array_equal(logits, cap.logits)


@pytest.mark.parametrize("heads", [[(0, 1)], [(1, 0), (1, 3), (2, 2)]])
def test_matches_zeroed_weights(tiny_lm, heads):
    ids = tiny_lm.encode(PROMPT)
    got = ablated_logits(tiny_lm, ids, heads).logits.rows
    ref = zeroed_reference(tiny_lm, ids, heads)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert np.abs(got - tiny_lm.capture(PROMPT).logits).max() > 1e-4  # it really changed something


def test_hooks_removed_even_after_an_error(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    before = ablated_logits(tiny_lm, ids, []).logits.rows
    with pytest.raises(RuntimeError):
        with heads_off(tiny_lm.layout, [(0, 0)]):
            raise RuntimeError("boom")
    ablated_logits(tiny_lm, ids, [(2, 1)])
    assert np.array_equal(ablated_logits(tiny_lm, ids, []).logits.rows, before)
    assert all(not p._forward_pre_hooks for p in tiny_lm.layout.out_projs)


def test_bad_heads_are_refused():
    with pytest.raises(ValueError, match="L3 H0"):
        normalize_heads([(3, 0)], n_layers=3, n_heads=4)
    assert normalize_heads([(1, 2), (0, 3), (1, 2)], 3, 4) == ((0, 3), (1, 2))
    assert heads_key([(1, 2), (0, 3)]) == heads_key([(0, 3), (1, 2)]) == "0.3,1.2"


def test_real_model_no_ablation_is_exact(default_lm):
    cap = default_lm.capture("The capital of France is")
    assert np.array_equal(ablated_logits(default_lm, cap.token_ids.tolist(), []).logits.rows, cap.logits)
    off = ablated_logits(default_lm, cap.token_ids.tolist(), [(0, h) for h in range(9)]).logits.rows
    assert not np.array_equal(off, cap.logits)


# Mean and resample ablation, at every position or chosen ones, against plain torch on the tiny models.

def _twin_proj(lm, twin, layer: int) -> torch.nn.Module:
    """The deep copy's module that is the original's output projection of `layer`."""
    name = next(n for n, m in lm.model.named_modules() if m is lm.layout.out_projs[layer])
    return dict(twin.named_modules())[name]


def hand_run(lm, ids, heads, replace) -> np.ndarray:
    """Logits of a deep copy whose output projections' inputs are changed by plain pre-hooks:
    replace(layer, x) edits x (1, T, H*hd) in place for the chosen heads of that layer."""
    twin = copy.deepcopy(lm.model)
    handles = []
    for layer in sorted({layer for layer, _ in heads}):
        def hook(module, args, layer=layer):
            x = args[0].clone()
            replace(layer, x)
            return (x, *args[1:])
        handles.append(_twin_proj(lm, twin, layer).register_forward_pre_hook(hook))
    with torch.no_grad():
        logits = twin(torch.tensor([ids]), use_cache=False).logits[0].numpy()
    for handle in handles:
        handle.remove()
    return logits


def plain_inputs(lm, ids, layers) -> dict[int, torch.Tensor]:
    """Each layer's output projection input (T, H*hd) from a plain hooked pass of a deep copy."""
    twin, kept = copy.deepcopy(lm.model), {}
    for layer in layers:
        _twin_proj(lm, twin, layer).register_forward_pre_hook(
            lambda module, args, layer=layer: kept.__setitem__(layer, args[0][0].detach().clone()))
    with torch.no_grad():
        twin(torch.tensor([ids]), use_cache=False)
    return kept


def old_zero_hook_logits(lm, ids, heads) -> np.ndarray:
    """Today's zero ablation as it was written before the patch sites carried it: a bare pre-hook."""
    hd, handles = lm.summary.head_dim, []
    for layer in sorted({layer for layer, _ in heads}):
        cols = [slice(h * hd, (h + 1) * hd) for lay, h in heads if lay == layer]

        def hook(module, args, cols=cols):
            hidden = args[0].clone()
            for s in cols:
                hidden[..., s] = 0
            return (hidden, *args[1:])
        handles.append(lm.layout.out_projs[layer].register_forward_pre_hook(hook))
    try:
        return lm.forward(ids).logits
    finally:
        for handle in handles:
            handle.remove()


HEADS = [(0, 1), (1, 3), (2, 2)]


def test_zero_ablation_equals_todays_numbers(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    old = old_zero_hook_logits(tiny_lm, ids, HEADS)
    assert np.array_equal(ablated_logits(tiny_lm, ids, HEADS).logits.rows, old)
    every = Ablation("zero", tuple(range(len(ids))))  # chosen positions = all of them: the same numbers
    assert np.array_equal(ablated_logits(tiny_lm, ids, HEADS, every).logits.rows, old)


@pytest.mark.parametrize("positions", [None, (2, 5, 9)])
def test_mean_ablation_matches_a_hand_run(tiny_lm, positions):
    ids = tiny_lm.encode(PROMPT)
    hd = tiny_lm.summary.head_dim
    means = {layer: z.mean(dim=0) for layer, z in plain_inputs(tiny_lm, ids, [0, 1, 2]).items()}  # (H*hd,)

    def replace(layer, x):
        rows = slice(None) if positions is None else list(positions)
        for lay, h in HEADS:
            if lay == layer:
                x[0, rows, h * hd:(h + 1) * hd] = means[layer][h * hd:(h + 1) * hd]

    got = ablated_logits(tiny_lm, ids, HEADS, Ablation("mean", positions)).logits.rows
    np.testing.assert_allclose(got, hand_run(tiny_lm, ids, HEADS, replace), atol=1e-5)
    assert np.abs(got - ablated_logits(tiny_lm, ids, []).logits.rows).max() > 1e-4  # it really changed something
    if positions is not None:  # positions before the first chosen one cannot change (causal)
        np.testing.assert_array_equal(got[:2], ablated_logits(tiny_lm, ids, []).logits.rows[:2])


def test_mean_of_all_positions_is_the_weights_reference(tiny_lm):
    """Mean ablation at every position = zeroed weight columns plus W·mean added as a bias."""
    ids, (layer, head) = tiny_lm.encode(PROMPT), (1, 2)
    hd = tiny_lm.summary.head_dim
    cols = slice(head * hd, (head + 1) * hd)
    mean = plain_inputs(tiny_lm, ids, [layer])[layer].mean(dim=0)[cols]  # (hd,)
    twin = copy.deepcopy(tiny_lm.model)
    proj = _twin_proj(tiny_lm, twin, layer)
    with torch.no_grad():
        linear = isinstance(proj, torch.nn.Linear)
        weight = proj.weight[:, cols] if linear else proj.weight[cols, :].T  # (out, hd)
        shift = weight @ mean
        if proj.bias is None:
            proj.bias = torch.nn.Parameter(torch.zeros(weight.shape[0]))
        proj.bias += shift
        if linear:
            proj.weight[:, cols] = 0
        else:
            proj.weight[cols, :] = 0
        ref = twin(torch.tensor([ids]), use_cache=False).logits[0].numpy()
    got = ablated_logits(tiny_lm, ids, [(layer, head)], Ablation("mean")).logits.rows
    np.testing.assert_allclose(got, ref, atol=1e-5)


OTHER = "A slow green frog sits under the wet log since"


@pytest.mark.parametrize("positions", [None, (0, 4, 8)])
def test_resample_matches_a_hand_run_and_from_itself_changes_nothing(tiny_lm, positions):
    ids = tiny_lm.encode(PROMPT)
    source = source_ids(tiny_lm, OTHER, len(ids))
    hd = tiny_lm.summary.head_dim
    theirs = plain_inputs(tiny_lm, list(source), [0, 1, 2])

    def replace(layer, x):
        rows = slice(None) if positions is None else list(positions)
        for lay, h in HEADS:
            if lay == layer:
                x[0, rows, h * hd:(h + 1) * hd] = theirs[layer][rows, h * hd:(h + 1) * hd]

    got = ablated_logits(tiny_lm, ids, HEADS, Ablation("resample", positions, source)).logits.rows
    np.testing.assert_allclose(got, hand_run(tiny_lm, ids, HEADS, replace), atol=1e-5)
    assert np.abs(got - ablated_logits(tiny_lm, ids, []).logits.rows).max() > 1e-4
    itself = ablated_logits(tiny_lm, ids, HEADS, Ablation("resample", positions, tuple(ids))).logits.rows
    np.testing.assert_array_equal(itself, tiny_lm.capture(PROMPT).logits)


def test_resample_needs_the_same_token_count_and_a_source(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    with pytest.raises(PromptError, match="same number of tokens"):
        source_ids(tiny_lm, "Too short", len(ids))
    with pytest.raises(ValueError, match="source"):
        Ablation("resample")
    with pytest.raises(ValueError, match="outside this prompt"):
        normalize_positions([0, len(ids)], len(ids))
    with pytest.raises(ValueError, match="not sorted"):
        ablated_logits(tiny_lm, ids, HEADS, Ablation("mean", (3, 1)))


def test_a_long_prompt_keeps_its_final_stream_not_every_row(tiny_lm, monkeypatch):
    """Past the long-prompt length the ablated pass keeps the last rows and the final stream (a capture's
    way): any position's logits from it equal the pass's own row, and the result grows as T x D, not
    T x V (at 3,500 tokens of the default model (T, V) was 688 MB, more than the results cache keeps)."""
    from model.engine import language_model

    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 8)
    ids = list(range(3, 3 + 100))  # more than the 64 rows a long pass keeps
    got = ablated_logits(tiny_lm, ids, HEADS)
    whole = tiny_lm.forward(ids, hooks=lambda layout: heads_off(layout, HEADS)).logits  # (T, V), every row
    assert got.stream is not None and not got.logits.complete
    np.testing.assert_allclose(tiny_lm.logits_of(got, list(range(100))), whole, atol=1e-5)
    np.testing.assert_array_equal(tiny_lm.logits_of(got, 99), whole[99])  # a kept row: the pass's own
    T, V, D = 100, tiny_lm.summary.vocab_size, tiny_lm.summary.d_model
    assert got.logits.nbytes + got.stream.nbytes < T * D * 4 + 64 * V * 4 + T * 64


def test_ablation_keys_tell_every_choice_apart():
    keys = {Ablation().key(), Ablation("zero", (1,)).key(), Ablation("mean").key(), Ablation("mean", (1,)).key(),
            Ablation("resample", None, (5, 6)).key(), Ablation("resample", None, (5, 7)).key()}
    assert len(keys) == 6 and Ablation().key() == ""
