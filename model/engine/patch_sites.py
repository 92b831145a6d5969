"""The one vocabulary for reading and writing a pass: the places a hook may sit, named by (view,
layer). The residual stream (embedding and after each block), each block's attention output and MLP
output (what the block adds to the stream), the attention module's own output (before any norm the
block puts after it), the input of each attention output projection (all heads side by side, so one
head is one slice), and inside each MLP its input and its hidden neurons (the down projection's
input). An analysis names the sites it reads or writes, each with a function applied to that
activation (recording, patching, ablating and gradients are such functions); only this module
installs and removes the hooks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from ..core.description import ModelSummary
from .layout import Layout
from .mlp_parts import find_parts

View = Literal["residual", "attn_out", "mlp_out", "heads"]  # the views patching sweeps, stream or heads wide
VIEWS: tuple[View, ...] = ("residual", "attn_out", "mlp_out", "heads")
Inner = Literal["attention", "mlp_in", "mlp_hidden"]  # the attention module's own output, the MLP's input, its neurons
Site = tuple[View | Inner, int]  # (view, layer): residual layer 0 is the embedding, i the stream after block i-1
PatchSite = tuple[View, int]  # a site patching sweeps
Edit = Callable[[torch.Tensor], torch.Tensor]  # activation (B, T, width) -> the activation to use


def n_layers(summary: ModelSummary, view: View) -> int:
    """Rows of a view: L + 1 residual streams, L blocks otherwise."""
    return summary.n_layers + (view == "residual")


def width(summary: ModelSummary, view: View) -> int:
    """Features of a site: d_model, or n_heads x head_dim for the output projection's input."""
    return summary.n_heads * summary.head_dim if view == "heads" else summary.d_model


def all_sites(summary: ModelSummary) -> list[PatchSite]:
    """Every site patching sweeps (the VIEWS at every layer)."""
    return [(view, layer) for view in VIEWS for layer in range(n_layers(summary, view))]


def reader(keep: Callable[[torch.Tensor], object]) -> Edit:
    """An edit that only reads: `keep` sees the activation, which then passes on unchanged."""
    def edit(t: torch.Tensor) -> torch.Tensor:
        keep(t)
        return t
    return edit


def _module(layout: Layout, site: Site) -> tuple[nn.Module, bool]:
    """The module whose input (True) or output (False) is the site's activation."""
    view, layer = site
    if view == "residual":
        return (layout.blocks[0], True) if layer == 0 else (layout.blocks[layer - 1], False)
    if view == "attn_out":  # the module whose output the block adds to the stream (found when the model loaded)
        return layout.writes.attn[layer], False
    if view == "mlp_out":
        return layout.writes.mlp[layer], False
    if view == "attention":
        return layout.attentions[layer], False
    if view == "mlp_in":
        return layout.mlps[layer], True
    if view == "mlp_hidden":  # the neurons: what the down projection reads (refused where the MLP cannot be opened)
        return find_parts(layout.mlps[layer], layout.summary.d_model).down, True
    return layout.out_projs[layer], True


def _install(module: nn.Module, is_input: bool, edit: Edit) -> torch.utils.hooks.RemovableHandle:
    if is_input:
        def pre_hook(module: nn.Module, args: tuple, kwargs: dict):
            if args:
                return (edit(args[0]), *args[1:]), kwargs
            key = "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))
            return args, {**kwargs, key: edit(kwargs[key])}
        return module.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def hook(module: nn.Module, args: tuple, output):
        if isinstance(output, (tuple, list)):  # attention: (output, weights)
            return (edit(output[0]), *output[1:])
        return edit(output)
    return module.register_forward_hook(hook)


@contextmanager
def editing(layout: Layout, edits: dict[Site, Edit]) -> Iterator[None]:
    """Within the block, each site's activation passes through its edit; on leaving it (an exception
    included) every hook is gone. Hold the model's lock. The modules are all found before any hook
    goes in, so finding an MLP's parts (a probe run of the MLP) never passes through these edits."""
    targets = [(*_module(layout, site), edit) for site, edit in edits.items()]
    handles = []
    try:
        for module, is_input, edit in targets:
            handles.append(_install(module, is_input, edit))
        yield
    finally:
        for handle in handles:
            handle.remove()
