"""Switching attention heads off: zero a head's slice of the input to its layer's output projection,
so the head adds nothing to the residual stream, and see how the next-token logits move.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from .layout import Layout

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from .language_model import LanguageModel

Head = tuple[int, int]  # (layer, query head)


def normalize_heads(heads: Iterable[Head], n_layers: int, n_heads: int) -> tuple[Head, ...]:
    """Sorted unique (layer, head) pairs; a ValueError names any pair outside the model."""
    out = sorted({(int(layer), int(head)) for layer, head in heads})
    for layer, head in out:
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise ValueError(f"head L{layer} H{head} is outside this model ({n_layers} layers x {n_heads} heads)")
    return tuple(out)


def _zero_slices(slices: list[slice]):
    """A forward pre-hook that zeroes the given feature slices of the projection's input."""

    def hook(module: nn.Module, args: tuple) -> tuple:
        hidden = args[0].clone()  # (B, T, n_heads * head_dim): never write into the caller's tensor
        for s in slices:
            hidden[..., s] = 0
        return (hidden, *args[1:])

    return hook


@contextmanager
def heads_off(layout: Layout, heads: Iterable[Head]) -> Iterator[None]:
    """Within the block, the given heads output zero. Hold the model's lock around it."""
    summary = layout.summary
    chosen = normalize_heads(heads, summary.n_layers, summary.n_heads)
    by_layer: dict[int, list[slice]] = {}
    for layer, head in chosen:
        by_layer.setdefault(layer, []).append(slice(head * summary.head_dim, (head + 1) * summary.head_dim))
    handles = []
    try:
        for layer, slices in by_layer.items():
            handles.append(layout.out_projs[layer].register_forward_pre_hook(_zero_slices(slices)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def ablated_logits(lm: LanguageModel, ids: list[int], heads: Iterable[Head]) -> np.ndarray:
    """Next-token logits (T, V) float32 with the heads off; no heads = exactly the capture's logits."""
    chosen = tuple(heads)
    return lm.forward(ids, hooks=lambda layout: heads_off(layout, chosen)).logits


def heads_key(heads: Iterable[Head]) -> str:
    """A plain-string cache key part for a set of heads, order-independent."""
    return ",".join(f"{layer}.{head}" for layer, head in sorted(set(heads)))
