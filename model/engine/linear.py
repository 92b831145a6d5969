"""A model's projection layers as plain matrices: nn.Linear stores its weight (out, in), GPT-2's Conv1D
stores it (in, out). One reading for both, so per-neuron and per-head math never guesses.
"""
from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn

from ..core.errors import UnsupportedModelError


def is_projection(module: nn.Module) -> bool:
    """A plain linear map: nn.Linear or transformers' Conv1D (which has `nf`, its output width)."""
    return isinstance(module, nn.Linear) or (hasattr(module, "nf") and getattr(module, "weight", None) is not None)


def matrix(module: nn.Module) -> np.ndarray:
    """The weight as (out, in) float64 numpy, whatever the layer stores."""
    if not is_projection(module):
        raise UnsupportedModelError(f"{type(module).__name__} is not a plain linear layer.")
    weight = weight_of(module).detach().to(device="cpu").double().numpy()
    return weight if isinstance(module, nn.Linear) else weight.T


def bias(module: nn.Module) -> np.ndarray:
    """The bias (out,) float64, zeros when the layer has none."""
    b = getattr(module, "bias", None)
    if b is None:
        # Conv1D's nf is a plain int, which nn.Module's attribute lookup (Tensor | Module) cannot say.
        width = module.out_features if isinstance(module, nn.Linear) else int(cast(int, module.nf))
        return np.zeros(width)
    return b.detach().to(device="cpu").double().numpy()


def widths(module: nn.Module) -> tuple[int, int]:
    """(in, out) widths of a projection."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if is_projection(module):
        inp, out = weight_of(module).shape  # Conv1D stores (in, out)
        return int(inp), int(out)
    raise UnsupportedModelError(f"{type(module).__name__} is not a plain linear layer.")


def weight_of(module: nn.Module) -> torch.Tensor:
    """A layer's weight (a Linear's, an Embedding's, a Conv1D's...) as the tensor it is: nn.Module's
    attribute lookup is typed Tensor | Module, and a weight that is not a tensor is refused here."""
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise UnsupportedModelError(f"{type(module).__name__} has no weight matrix.")
    return weight
