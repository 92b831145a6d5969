"""MLP neurons one by one: each neuron's direct effect on a logit (its activation times its output
column, read through the same final-norm linearisation as the Attribution page), the vocabulary its
output column promotes and suppresses, and switching neurons off to see the prediction move.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import UnsupportedModelError
from ..core.logits import Predictions
from ..engine.language_model import LanguageModel
from ..engine.linear import bias, matrix
from ..engine.patch_sites import Edit, Site
from .attribution import Readout, final_norm
from .mlp import mlp_parts

Neuron = tuple[int, int]  # (block, neuron)


@dataclass(frozen=True)
class NeuronEffects:
    """Block `layer`'s MLP at one position, split by neuron: effects.sum() + bias == the MLP's bar."""

    layer: int
    position: int
    activations: np.ndarray  # (d_mlp,) each neuron's value (what the down projection reads)
    effects: np.ndarray  # (d_mlp,) each neuron's direct share of the logit (or logit difference)
    bias: float  # the down projection's bias share (0 without a bias)

    @property
    def total(self) -> float:
        return float(self.effects.sum() + self.bias)


def neuron_effects(lm: LanguageModel, hidden: np.ndarray, layer: int, position: int, read: Readout) -> NeuronEffects:
    """Each neuron's activation x (its output column W_out[:, i] through the readout); hidden (d_mlp,)."""
    down = mlp_parts(lm, layer).down
    writes = lm.layout.writes
    if writes.mlp[layer] not in (lm.layout.mlps[layer], down):
        raise UnsupportedModelError(
            f"{lm.summary.architecture} normalises each MLP output before adding it to the stream, so the "
            "output cannot be split into one share per neuron here."
        )
    w_out = matrix(down)  # (D, d_mlp)
    per_unit = read.share(w_out.T) * writes.scale  # (d_mlp,) one unit of each neuron (Granite: x residual multiplier)
    h = np.asarray(hidden, dtype=np.float64)  # (d_mlp,)
    return NeuronEffects(layer=layer, position=position, activations=h.astype(np.float32),
                         effects=h * per_unit, bias=float(read.share(bias(down))) * writes.scale)


@dataclass(frozen=True)
class NeuronVocab:
    """The tokens a neuron's output column pushes up and down most, per unit of activation."""

    promoted: np.ndarray  # (k,) token ids, strongest first
    promoted_by: np.ndarray  # (k,) logit change per unit of activation (before the norm's divisor)
    suppressed: np.ndarray  # (k,) token ids, strongest first
    suppressed_by: np.ndarray  # (k,)


def neuron_vocab(lm: LanguageModel, layer: int, neuron: int, k: int = 10) -> NeuronVocab:
    """W_U · (g ⊙ W_out[:, neuron]): the direct logit change of every token per unit of activation,
    through the final norm's weight g (centred first for LayerNorm); the divisor is left out."""
    parts = mlp_parts(lm, layer)
    if not 0 <= neuron < parts.width:
        raise ValueError(f"neuron must be in 0..{parts.width - 1}, got {neuron}")
    norm = final_norm(lm)
    column = matrix(parts.down)[:, neuron]  # (D,)
    if norm.kind == "layer":
        column = column - column.mean()
    head = lm.model.get_output_embeddings()
    with torch.inference_mode():
        vec = torch.tensor(column * norm.weight, dtype=head.weight.dtype, device=head.weight.device)
        scores = (head.weight @ vec).to(device="cpu", dtype=torch.float64).numpy()  # (V,)
    order = np.argsort(scores)
    top, bottom = order[::-1][:k].copy(), order[:k].copy()
    return NeuronVocab(promoted=top, promoted_by=scores[top], suppressed=bottom, suppressed_by=scores[bottom])


def normalize_neurons(neurons: Iterable[Neuron], n_layers: int, width: int) -> tuple[Neuron, ...]:
    """Sorted unique (block, neuron) pairs; a ValueError names any pair outside the model."""
    out = sorted({(int(layer), int(n)) for layer, n in neurons})
    for layer, n in out:
        if not (0 <= layer < n_layers and 0 <= n < width):
            raise ValueError(f"neuron B{layer} N{n} is outside this model ({n_layers} blocks x {width} neurons)")
    return tuple(out)


def _zero(indices: list[int]) -> Edit:
    def edit(hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden.clone()  # (B, T, d_mlp): never write into the caller's tensor
        hidden[..., indices] = 0
        return hidden
    return edit


def neurons_off(neurons: Iterable[Neuron]) -> dict[Site, Edit]:
    """The edits of a pass where the given neurons (at their blocks' "mlp_hidden" sites) read zero at
    every position."""
    by_layer: dict[int, list[int]] = {}
    for layer, n in neurons:
        by_layer.setdefault(layer, []).append(n)
    return {("mlp_hidden", layer): _zero(indices) for layer, indices in by_layer.items()}


def ablated_logits(lm: LanguageModel, ids: list[int], neurons: Iterable[Neuron]) -> Predictions:
    """Next-token logits with the neurons off, readable at any position (`lm.logits_of`); none =
    exactly the capture's logits."""
    chosen = tuple((int(layer), int(n)) for layer, n in neurons)
    for layer in {layer for layer, _ in chosen}:
        normalize_neurons([c for c in chosen if c[0] == layer], lm.summary.n_layers, mlp_parts(lm, layer).width)
    return lm.predictions(ids, sites=neurons_off(chosen))


def neurons_key(neurons: Iterable[Neuron]) -> str:
    """A plain-string cache key part for a set of neurons, order-independent."""
    return ",".join(f"{layer}.{n}" for layer, n in sorted(set(neurons)))
