"""One block's MLP opened generically: its up, optional gate, activation and down projections, found
from the modules' shapes and checked on a probe vector. The engine needs them to name the MLP's hidden
neurons as a patch site (the down projection's input); the analyses replay the MLP from them. An MLP
this cannot rebuild exactly (mixture of experts, fused gate and up) is refused.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn

from ..core.errors import UnsupportedModelError
from .linear import is_projection, weight_of, widths

_CHECK_TOLERANCE = 1e-4  # our recomposition vs the MLP module on a probe (relative)
_EXPERT_HINTS = ("expert", "router", "moe", "switch")


@dataclass(frozen=True)
class MlpParts:
    """One MLP's modules: out = down(act(gate(x)) * up(x)), or down(act(up(x))) when there is no gate."""

    up: nn.Module
    gate: nn.Module | None
    act: nn.Module
    down: nn.Module
    width: int  # d_mlp: how many neurons


def _activation(mlp: nn.Module) -> nn.Module:
    """The parameter-free child that is not dropout or identity: the activation function."""
    for child in mlp.children():
        if next(child.parameters(), None) is None and not isinstance(child, (nn.Dropout, nn.Identity)):
            return child
    raise UnsupportedModelError(f"{type(mlp).__name__} has no activation module of its own to replay.")


def _refuse(mlp: nn.Module, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"The MLP of this model ({type(mlp).__name__}) cannot be opened neuron by neuron: {why}.")


def _candidates(mlp: nn.Module, d_model: int) -> tuple[list[tuple[str, nn.Module]], list[nn.Module]]:
    """(name, projection) pairs reading the stream, and the projections writing back to it."""
    label = (type(mlp).__name__ + " " + " ".join(n for n, _ in mlp.named_children())).lower()
    if any(h in label for h in _EXPERT_HINTS):
        raise _refuse(mlp, "it is a mixture of experts, where each token goes through different neurons")
    readers, writers = [], []
    for name, child in mlp.named_children():
        if is_projection(child):
            inp, out = widths(child)
            if inp == d_model and out != d_model:
                readers.append((name, child))
            elif out == d_model and inp != d_model:
                writers.append(child)
    return readers, writers


def _compose(parts: MlpParts, x: torch.Tensor) -> torch.Tensor:
    """The MLP rebuilt from its parts, (..., D) -> (..., D)."""
    inner = parts.act(parts.gate(x)) * parts.up(x) if parts.gate is not None else parts.act(parts.up(x))
    return parts.down(inner)


def _matches(parts: MlpParts, mlp: nn.Module, probe: torch.Tensor) -> bool:
    try:
        ref = mlp(probe)
    except TypeError as exc:  # Bloom's and MPT's MLP add the residual stream inside: they need it passed in
        raise _refuse(mlp, "its forward needs more than the stream it reads (it adds the residual itself), "
                           "so it cannot be replayed on its own") from exc
    ours = _compose(parts, probe)
    return bool((ours - ref).abs().max() <= _CHECK_TOLERANCE * max(1.0, float(ref.abs().max())))


# One answer per MLP module for as long as it lives: the probe runs the module, and the MLP page asked
# for every block's parts three times per prompt (~0.5 s of a 40-token edit on one core).
_FOUND: weakref.WeakKeyDictionary[nn.Module, MlpParts | str] = weakref.WeakKeyDictionary()  # parts, or why not


def find_parts(mlp: nn.Module, d_model: int) -> MlpParts:
    """The up/gate/down projections and activation of one MLP module, checked on a probe vector once
    per module (a refusal is remembered too). The probe runs the shared module: hold the model's lock."""
    found = _FOUND.get(mlp)
    if found is None:
        try:
            found = _find_parts(mlp, d_model)
        except UnsupportedModelError as exc:
            found = str(exc)
        _FOUND[mlp] = found
    if isinstance(found, str):
        raise UnsupportedModelError(found)
    return found


def _find_parts(mlp: nn.Module, d_model: int) -> MlpParts:
    readers, writers = _candidates(mlp, d_model)
    if len(writers) != 1 or len(readers) not in (1, 2):
        raise _refuse(mlp, f"expected one or two projections into the hidden layer and one out, found "
                           f"{len(readers)} and {len(writers)}")
    down = writers[0]
    width = widths(down)[0]
    if any(widths(m)[1] != width for _, m in readers):
        raise _refuse(mlp, "its gate and up projections are fused into one matrix or differ in width")
    act = _activation(mlp)
    readers.sort(key=lambda nm: "gate" not in nm[0])  # a child named gate first, if any
    options = [(readers[0][1], None)] if len(readers) == 1 else [
        (readers[1][1], readers[0][1]), (readers[0][1], readers[1][1])]  # (up, gate): both ways round
    weight = weight_of(down)
    probe = torch.randn(3, d_model, generator=torch.Generator().manual_seed(0)).to(weight.device, weight.dtype)
    with torch.inference_mode():
        for up, gate in options:
            parts = MlpParts(up=up, gate=gate, act=act, down=down, width=width)
            if _matches(parts, mlp, probe):
                return parts
    raise _refuse(mlp, "it does not compute down(activation(gate) × up) or down(activation(up))")
