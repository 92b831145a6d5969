"""Activation patching against references written here, independently of model/analyses/patching.py: plain
full-length runs of the model with one hand-made hook each (no batching, no keys and values, no
skipped cells), and torch.autograd on retained activations for attribution patching."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from model import PromptError
from model.analyses.patching import (
    PatchPair,
    _run_batch,
    _run_head_positions,
    attribution,
    correlation,
    exact,
    exact_head_positions,
    head_positions_estimate,
    needed,
    needed_head_positions,
    patch_head,
    record_pair,
    top_cells,
)

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"


@pytest.fixture(scope="module")
def setup(tiny_lm):
    pair = record_pair(tiny_lm, CLEAN, CORRUPTED)
    a, b = (tiny_lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" Mary", " John"))
    return tiny_lm, pair, a, b


def metric(logits: torch.Tensor, a: int, b: int) -> float:
    return float(logits[0, -1, a] - logits[0, -1, b])


def normalised(pair: PatchPair, diff: float, a: int, b: int) -> float:
    clean, corrupted = pair.logit_diffs(a, b)
    return (diff - corrupted) / (clean - corrupted)


def module_of(lm, view: str, layer: int) -> tuple[torch.nn.Module, bool]:
    """(module, its input?) holding a view's activation, by the definitions of the page text."""
    lay = lm.layout
    if view == "residual":
        return (lay.blocks[0], True) if layer == 0 else (lay.blocks[layer - 1], False)
    modules = {"attn_out": lay.attentions, "mlp_out": lay.mlps, "heads": lay.out_projs}[view]
    return modules[layer], view == "heads"


def hooked_run(lm, ids, view, layer, change) -> torch.Tensor:
    """A plain no-grad run of the whole prompt where `change(activation (1, T, width))` edits one site."""
    module, is_input = module_of(lm, view, layer)
    if is_input:
        def pre(mod, args, kwargs):
            if args:
                return (change(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": change(kwargs["hidden_states"])}
        handle = module.register_forward_pre_hook(pre, with_kwargs=True)
    else:
        def post(mod, args, out):
            return (change(out[0]), *out[1:]) if isinstance(out, tuple) else change(out)
        handle = module.register_forward_hook(post)
    try:
        with torch.no_grad():
            return lm.model(input_ids=torch.tensor([ids]), use_cache=False).logits
    finally:
        handle.remove()


@functools.cache
def clean_activation(lm, ids: tuple[int, ...], view, layer) -> torch.Tensor:
    seen = []
    hooked_run(lm, list(ids), view, layer, lambda t: seen.append(t.clone()) or t)
    return seen[0]  # (1, T, width)


def reference_cell(lm, pair, view, layer, index, a, b) -> float:
    """One patched run, written by hand: a position's vector, or one head's slice at every position."""
    source = clean_activation(lm, pair.clean.ids, view, layer)
    hd = lm.summary.head_dim

    def change(t):
        t = t.clone()
        if view == "heads":
            t[..., index * hd:(index + 1) * hd] = source[..., index * hd:(index + 1) * hd]
        else:
            t[:, index] = source[:, index]
        return t

    logits = hooked_run(lm, list(pair.corrupted.ids), view, layer, change)
    return normalised(pair, metric(logits, a, b), a, b)


@pytest.mark.parametrize("view", ["residual", "attn_out", "mlp_out", "heads"])
def test_clean_into_clean_gives_one_everywhere(setup, view):
    lm, pair, a, b = setup
    clean_twice = PatchPair(pair.clean, pair.clean, pair.summary)  # the run to patch is the clean one
    layers = pair.clean.sites[view].shape[0]
    cols = lm.summary.n_heads if view == "heads" else pair.n_tokens
    for start in (0, pair.n_tokens // 2):
        cells = [(layer, i) for layer in range(layers) for i in range(cols) if view == "heads" or i >= start]
        diffs = _run_batch(lm, clean_twice, view, cells, start, a, b)
        values = [normalised(pair, d, a, b) for d in diffs]
        np.testing.assert_allclose(values, 1.0, atol=1e-4)


def test_last_stream_at_last_position_recovers_clean_exactly(setup):
    lm, pair, a, b = setup
    grid = exact(lm, pair, a, b, "residual")
    assert grid.values.shape == (lm.summary.n_layers + 1, pair.n_tokens)
    assert grid.values[-1, -1] == pytest.approx(1.0, abs=1e-5)
    assert np.all(grid.values[-1, :-1] == 0)  # other positions of the last stream never reach the answer
    assert np.all(grid.values[:, :9] == 0) and not grid.ran[:, :9].any()  # identical prefix: nothing to patch


@pytest.mark.parametrize("view", ["residual", "attn_out", "mlp_out"])
def test_batched_equals_one_at_a_time_reference(setup, view):
    lm, pair, a, b = setup
    batched = exact(lm, pair, a, b, view)
    single = exact(lm, pair, a, b, view, tokens_per_pass=1)
    np.testing.assert_allclose(batched.values, single.values, atol=1e-4)
    layers, T = batched.values.shape
    reference = np.array([[reference_cell(lm, pair, view, layer, p, a, b) for p in range(T)] for layer in range(layers)])
    np.testing.assert_allclose(batched.values, reference, atol=1e-4)
    assert np.abs(reference).max() > 0.01  # the patches really moved the metric


def test_heads_equal_hand_made_slice_replacement(setup):
    lm, pair, a, b = setup
    grid = exact(lm, pair, a, b, "heads")
    L, H = lm.summary.n_layers, lm.summary.n_heads
    reference = np.array([[reference_cell(lm, pair, "heads", layer, h, a, b) for h in range(H)] for layer in range(L)])
    assert grid.values.shape == (L, H)
    np.testing.assert_allclose(grid.values, reference, atol=1e-4)
    assert np.abs(reference).max() > 0.05


def test_attribution_equals_autograd_reference(setup):
    lm, pair, a, b = setup
    grids = attribution(lm, pair, a, b)
    clean, corrupted = pair.logit_diffs(a, b)
    for view in ("residual", "attn_out", "mlp_out", "heads"):
        layers = pair.clean.sites[view].shape[0]
        kept: list[torch.Tensor] = []
        handles = []
        for layer in range(layers):  # retain every activation of the view in one plain autograd run
            module, is_input = module_of(lm, view, layer)
            if is_input:
                def pre(mod, args, kwargs, kept=kept):
                    kept.append(args[0] if args else kwargs["hidden_states"])
                handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(mod, args, out, kept=kept):
                    kept.append(out[0] if isinstance(out, tuple) else out)
                handles.append(module.register_forward_hook(post))
        try:
            logits = lm.model(input_ids=torch.tensor([list(pair.corrupted.ids)]), use_cache=False).logits
            grads = torch.autograd.grad(logits[0, -1, a] - logits[0, -1, b], kept)
        finally:
            for h in handles:
                h.remove()
        for layer in range(layers):
            source = clean_activation(lm, pair.clean.ids, view, layer)[0]
            delta = ((source - kept[layer][0].detach()) * grads[layer][0]).double()  # (T, width)
            if view == "heads":
                expected = delta.reshape(pair.n_tokens, lm.summary.n_heads, -1).sum(dim=(0, 2))
            else:
                expected = delta.sum(dim=-1)
            np.testing.assert_allclose(grids[view].values[layer], expected.numpy() / (clean - corrupted),
                                       rtol=1e-3, atol=1e-5)
    assert all(p.grad is None for p in lm.model.parameters())  # the shared weights' .grad untouched


def test_correlation_and_top_cells(setup):
    lm, pair, a, b = setup
    exact_grid = exact(lm, pair, a, b, "residual")
    estimate = attribution(lm, pair, a, b)["residual"]
    assert np.array_equal(estimate.ran, exact_grid.ran) and np.array_equal(estimate.ran, needed(pair, "residual"))
    r = correlation(exact_grid, estimate)
    assert r is not None and -1 <= r <= 1
    assert correlation(exact_grid, exact_grid) == pytest.approx(1.0)
    top = top_cells(exact_grid, 3)
    assert abs(top[0][2]) == np.abs(exact_grid.values).max() and len(top) == 3


def hook_count(lm) -> int:
    """Hooks on the model now (transformers itself may keep some after an output_attentions call)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in lm.model.modules())


def test_progress_and_length_mismatch(setup):
    lm, pair, a, b = setup
    before = hook_count(lm)
    seen = []
    exact(lm, pair, a, b, "mlp_out", progress=lambda done, total: seen.append((done, total)), tokens_per_pass=8)
    assert len(seen) > 1 and seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(PromptError, match="same number of tokens"):
        record_pair(lm, CLEAN, "When Mary went to the store, Mary gave a drink to")
    with pytest.raises(PromptError, match="nothing for a patch to recover"):
        exact(lm, PatchPair(pair.clean, pair.clean, pair.summary), a, b, "residual")
    assert hook_count(lm) == before  # every patch's hooks removed, refused runs too


# One block's heads, one position at a time.

def reference_head_position(lm, pair, layer, head, position, a, b) -> float:
    """One patched run, written by hand: one head's slice at one position."""
    source = clean_activation(lm, pair.clean.ids, "heads", layer)
    cols = slice(head * lm.summary.head_dim, (head + 1) * lm.summary.head_dim)

    def change(t):
        t = t.clone()
        t[:, position, cols] = source[:, position, cols]
        return t

    logits = hooked_run(lm, list(pair.corrupted.ids), "heads", layer, change)
    return normalised(pair, metric(logits, a, b), a, b)


@pytest.mark.parametrize("layer", [0, 2])
def test_head_positions_equal_hand_made_single_position_patches(setup, layer):
    lm, pair, a, b = setup
    grid = exact_head_positions(lm, pair, a, b, layer)
    H, T = lm.summary.n_heads, pair.n_tokens
    assert grid.values.shape == (H, T) and grid.layer == layer and grid.view == "head_positions"
    reference = np.array([[reference_head_position(lm, pair, layer, h, p, a, b) for p in range(T)] for h in range(H)])
    np.testing.assert_allclose(grid.values, reference, atol=1e-4)
    np.testing.assert_allclose(exact_head_positions(lm, pair, a, b, layer, tokens_per_pass=1).values, grid.values,
                               atol=1e-4)
    assert np.all(grid.values[~grid.ran] == 0) and not grid.ran[:, :9].any()  # identical prefix: nothing to patch
    if layer == lm.summary.n_layers - 1:  # the last block reaches the answer only from the last position
        assert not grid.ran[:, :-1].any() and np.abs(reference[:, :-1]).max() < 1e-5
    else:
        assert np.abs(reference).max() > 0.01


def test_head_positions_clean_into_clean_gives_one(setup):
    lm, pair, a, b = setup
    clean_twice = PatchPair(pair.clean, pair.clean, pair.summary)
    for start in (0, pair.n_tokens // 2):
        cells = [(h, (p,)) for h in range(lm.summary.n_heads) for p in range(start, pair.n_tokens)]
        diffs = _run_head_positions(lm, clean_twice, 1, cells, start, a, b)
        np.testing.assert_allclose([normalised(pair, d, a, b) for d in diffs], 1.0, atol=1e-4)


def test_all_positions_of_a_head_at_once_is_the_heads_cell(setup):
    lm, pair, a, b = setup
    heads = exact(lm, pair, a, b, "heads")
    every = list(range(pair.n_tokens))
    at_once = np.array([[patch_head(lm, pair, a, b, layer, h, every) for h in range(lm.summary.n_heads)]
                        for layer in range(lm.summary.n_layers)])
    np.testing.assert_allclose(at_once, heads.values, atol=1e-5)
    assert patch_head(lm, pair, a, b, 1, 0, list(range(9))) == 0.0  # the identical prefix changes nothing
    one = exact_head_positions(lm, pair, a, b, 1)
    assert patch_head(lm, pair, a, b, 1, 2, [11]) == pytest.approx(one.values[2, 11], abs=1e-5)


def test_head_positions_estimate_splits_the_heads_estimate(setup):
    lm, pair, a, b = setup
    grids = attribution(lm, pair, a, b)
    for layer in range(lm.summary.n_layers):
        split = head_positions_estimate(pair, grids["heads"], layer)
        assert split.values.shape == (lm.summary.n_heads, pair.n_tokens) and split.method == "attribution"
        np.testing.assert_allclose(split.values.sum(axis=1), grids["heads"].values[layer], rtol=1e-9, atol=1e-12)
        assert np.array_equal(split.ran, needed_head_positions(pair, layer))
        assert np.all(split.values[:, :9] == 0)  # identical prefix: clean - corrupted = 0 there
    exact_grid = exact_head_positions(lm, pair, a, b, 1)
    r = correlation(exact_grid, head_positions_estimate(pair, grids["heads"], 1))
    assert r is None or -1 <= r <= 1
