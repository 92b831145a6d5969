"""The places activation patching reads and writes: the residual stream (embedding and after each
block), each block's attention output and MLP output, and the input of each attention output
projection (all heads side by side, so one head is one slice). One hook per (view, layer) applies a
function to that activation; recording, patching and gradients are three such functions.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from ..core.description import ModelSummary
from .layout import Layout

View = Literal["residual", "attn_out", "mlp_out", "heads"]
VIEWS: tuple[View, ...] = ("residual", "attn_out", "mlp_out", "heads")
Site = tuple[View, int]  # (view, layer): residual layer 0 is the embedding, i the stream after block i-1
Edit = Callable[[torch.Tensor], torch.Tensor]  # activation (B, T, width) -> the activation to use


def n_layers(summary: ModelSummary, view: View) -> int:
    """Rows of a view: L + 1 residual streams, L blocks otherwise."""
    return summary.n_layers + (view == "residual")


def width(summary: ModelSummary, view: View) -> int:
    """Features of a site: d_model, or n_heads x head_dim for the output projection's input."""
    return summary.n_heads * summary.head_dim if view == "heads" else summary.d_model


def all_sites(summary: ModelSummary) -> list[Site]:
    return [(view, layer) for view in VIEWS for layer in range(n_layers(summary, view))]


def _module(layout: Layout, site: Site) -> tuple[nn.Module, bool]:
    """The module whose input (True) or output (False) is the site's activation."""
    view, layer = site
    if view == "residual":
        return (layout.blocks[0], True) if layer == 0 else (layout.blocks[layer - 1], False)
    if view == "attn_out":  # the module whose output the block adds to the stream (found when the model loaded)
        return layout.writes.attn[layer], False
    if view == "mlp_out":
        return layout.writes.mlp[layer], False
    return layout.out_projs[layer], True


def _install(module: nn.Module, is_input: bool, edit: Edit) -> torch.utils.hooks.RemovableHandle:
    if is_input:
        def pre_hook(module: nn.Module, args: tuple, kwargs: dict):
            if args:
                return (edit(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": edit(kwargs["hidden_states"])}
        return module.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def hook(module: nn.Module, args: tuple, output):
        if isinstance(output, (tuple, list)):  # attention: (output, weights)
            return (edit(output[0]), *output[1:])
        return edit(output)
    return module.register_forward_hook(hook)


@contextmanager
def editing(layout: Layout, edits: dict[Site, Edit]) -> Iterator[None]:
    """Within the block, each site's activation passes through its edit. Hold the model's lock."""
    handles = []
    try:
        for site, edit in edits.items():
            handles.append(_install(*_module(layout, site), edit))
        yield
    finally:
        for handle in handles:
            handle.remove()
