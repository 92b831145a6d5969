"""The hook vocabulary (model/engine/patch_sites.py) against references: the MLP's input and neurons
read through their sites equal the neurons recomputed by hand from the MLP's own parts, a write to
the neurons reaches the MLP's output, and every hook is gone after the block, an exception included.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_model

from model import LanguageModel
from model.engine.mlp_parts import find_parts
from model.engine.patch_sites import Edit, Site, editing, reader

IDS = [5, 17, 3, 42, 8, 11]


def _hooks(lm) -> int:
    """How many forward hooks and pre-hooks sit on the model's modules."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in lm.model.modules())


def _read(lm, sites: list[Site], edits: dict[Site, Edit] | None = None) -> dict[Site, torch.Tensor]:
    """One pass reading the given sites (after any `edits`), row 0 of the batch, as float64."""
    kept: dict[Site, torch.Tensor] = {}

    def keep(site: Site) -> Edit:
        return reader(lambda t: kept.__setitem__(site, t[0].detach().double().clone()))

    chained = {**(edits or {}), **{site: keep(site) for site in sites if site not in (edits or {})}}
    lm.forward(IDS, sites=chained)
    return kept


def test_mlp_hidden_is_the_neurons_recomputed_from_mlp_in(tiny_lm):
    sites: list[Site] = [(view, layer) for layer in range(tiny_lm.summary.n_layers) for view in ("mlp_in", "mlp_hidden")]
    kept = _read(tiny_lm, sites)
    for layer in range(tiny_lm.summary.n_layers):
        parts = find_parts(tiny_lm.layout.mlps[layer], tiny_lm.summary.d_model)
        x = kept[("mlp_in", layer)].float()  # (T, D)
        with torch.inference_mode():
            up = parts.up(x)
            by_hand = parts.act(parts.gate(x)) * up if parts.gate is not None else parts.act(up)  # (T, d_mlp)
        assert kept[("mlp_hidden", layer)].shape == (len(IDS), parts.width)
        assert torch.allclose(kept[("mlp_hidden", layer)], by_hand.double(), atol=1e-5)


def test_a_write_to_the_neurons_reaches_the_mlp_output(tiny_lm):
    """Every neuron zeroed: the MLP adds only its down projection's bias (zero without one)."""
    layer = 1
    down = find_parts(tiny_lm.layout.mlps[layer], tiny_lm.summary.d_model).down
    kept = _read(tiny_lm, [("mlp_out", layer)], {("mlp_hidden", layer): torch.zeros_like})
    bias = getattr(down, "bias", None)
    expected = torch.zeros(tiny_lm.summary.d_model) if bias is None else bias.detach()
    assert torch.allclose(kept[("mlp_out", layer)], expected.double().expand(len(IDS), -1), atol=1e-6)


def test_the_attention_site_is_the_attention_modules_own_output(tiny_lm):
    """Where the block adds the attention module's output as is, "attention" and "attn_out" agree."""
    kept = _read(tiny_lm, [("attention", 0), ("attn_out", 0)])
    assert kept[("attention", 0)].shape == (len(IDS), tiny_lm.summary.d_model)
    if tiny_lm.layout.writes.attn[0] is tiny_lm.layout.attentions[0]:
        assert torch.equal(kept[("attention", 0)], kept[("attn_out", 0)])


def test_editing_removes_its_hooks_even_on_an_exception(tiny_lm):
    before = _hooks(tiny_lm)
    every: dict[Site, Edit] = {(view, 0): reader(lambda t: None)
                               for view in ("residual", "attn_out", "mlp_out", "heads", "attention", "mlp_in", "mlp_hidden")}
    with tiny_lm.modules(inference=False):
        find_parts(tiny_lm.layout.mlps[0], tiny_lm.summary.d_model)
        with pytest.raises(KeyError), editing(tiny_lm.layout, every):
            assert _hooks(tiny_lm) == before + len(every)
            raise KeyError("inside the block")
    assert _hooks(tiny_lm) == before

    def fail(t: torch.Tensor) -> torch.Tensor:
        raise ZeroDivisionError("inside an edit, mid-pass")

    with pytest.raises(ZeroDivisionError):
        tiny_lm.forward(IDS, sites={("mlp_hidden", 1): fail})
    assert _hooks(tiny_lm) == before
    with torch.inference_mode():
        plain = tiny_lm.model(torch.tensor([IDS])).logits[0].numpy()
    assert np.allclose(tiny_lm.forward(IDS).logits, plain, atol=1e-5)  # nothing left behind


def test_finding_the_neurons_never_passes_through_the_edits(tokenizer):
    """The down projection is found by a probe run of the MLP, before any hook goes in: on a model
    whose parts were never asked for, each site sees the pass once, not the probe too."""
    lm = LanguageModel(tiny_model("llama", len(tokenizer)), tokenizer, "tiny-fresh", "cpu", torch.float32)
    calls: list[tuple[int, ...]] = []
    edits: dict[Site, Edit] = {(view, 0): reader(lambda t: calls.append(tuple(t.shape))) for view in ("mlp_in", "mlp_hidden")}
    lm.forward(IDS, sites=edits)
    assert calls == [(1, len(IDS), lm.summary.d_model), (1, len(IDS), 64)]

