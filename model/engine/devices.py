"""Where a module computes: one answer for the probe, the placement and the analyses (a module placed
by accelerate computes on its hook's execution device, whatever device its weights wait on)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel


def input_device(model: PreTrainedModel) -> str:
    """Where a pass's token ids go: the device the input embeddings compute on."""
    return device_name(compute_device(model.get_input_embeddings()))


def compute_device(module: nn.Module):
    """The device a module computes on: accelerate's execution device when it placed the module (its
    weights may sit on the CPU or disk meanwhile), else where its first weight lives."""
    for m in (module, *module.modules()):
        device = getattr(getattr(m, "_hf_hook", None), "execution_device", None)
        if device is not None:
            return device
    first = next((p for p in module.parameters() if p.device.type != "meta"), None)
    return first.device if first is not None else "cpu"


def device_name(device) -> str:
    """0 -> "cuda:0"; "disk", "cpu" and torch devices as they print."""
    if isinstance(device, int):
        return f"cuda:{device}"
    return str(device)

