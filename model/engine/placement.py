"""Models bigger than one device: a device map (GPUs, then CPU, then disk) planned with accelerate,
and where each block ended up.

The analyses read three modules' weights directly (input embeddings, final norm, unembedding), so
those never go to disk: a plan that puts them there keeps them in CPU memory instead. Blocks may
live anywhere; accelerate's hooks bring an offloaded block's weights in for its part of a pass.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .devices import device_name
from .layout import find_blocks

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedModel

DeviceMap = dict[str, "int | str"]


def plan_device_map(config, dtype: torch.dtype, mode: str, max_memory: dict | None) -> DeviceMap:
    """accelerate's plan for `mode` ("auto", "balanced", "sequential") under max_memory, split down to
    one entry per block, with every module outside the blocks kept off the disk."""
    from accelerate import infer_auto_device_map, init_empty_weights
    from accelerate.utils import get_balanced_memory
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        empty = AutoModelForCausalLM.from_config(config)
    no_split = list(getattr(empty, "_no_split_modules", None) or [])
    if mode in ("auto", "balanced") and max_memory is None:
        max_memory = get_balanced_memory(empty, dtype=dtype, no_split_module_classes=no_split)
    plan = infer_auto_device_map(empty, max_memory=max_memory, no_split_module_classes=no_split, dtype=dtype)
    return keep_readouts_off_disk(empty, plan)


def keep_readouts_off_disk(model: PreTrainedModel, plan: DeviceMap) -> DeviceMap:
    """Split entries that hold a block together with other modules, then move any module outside the
    blocks from "disk" to "cpu" (the analyses read the embeddings, final norm and unembedding)."""
    blocks = _block_names(model)
    split: DeviceMap = {}
    for name, device in plan.items():
        split.update(_split(model, name, device, blocks))
    return {name: ("cpu" if device == "disk" and not _in_block(name, blocks) else device)
            for name, device in split.items()}


def _block_names(model: PreTrainedModel) -> list[str]:
    blocks = find_blocks(model)
    ids = {id(b) for b in blocks}
    return [name for name, module in model.named_modules() if id(module) in ids]


def _in_block(name: str, blocks: list[str]) -> bool:
    return any(name == b or name.startswith(b + ".") for b in blocks)


def _split(model: nn.Module, name: str, device, blocks: list[str]) -> DeviceMap:
    """{name: device}, or its children's entries when `name` strictly contains a block."""
    prefix = name + "." if name else ""
    if not any(b.startswith(prefix) and b != name for b in blocks):
        return {name: device}
    out: DeviceMap = {}
    for child, _ in model.get_submodule(name).named_children():
        out.update(_split(model, prefix + child, device, blocks))
    return out


def block_devices(model: nn.Module, blocks: nn.ModuleList) -> tuple[str, ...]:
    """Where each block's weights live ("cuda:0", "cpu", "disk"), from the model's device map; every
    block on the model's device when it was not dispatched."""
    device_map = getattr(model, "hf_device_map", None)
    if not device_map:
        first = next(model.parameters(), None)
        return tuple(device_name(first.device) if first is not None else "cpu" for _ in blocks)
    names = {id(module): name for name, module in model.named_modules()}
    out = []
    for block in blocks:
        name = names[id(block)]
        owners = [key for key in device_map if key == "" or name == key or name.startswith(key + ".")]
        inner = {device_map[key] for key in device_map if key.startswith(name + ".")}
        devices = {device_map[max(owners, key=len)]} if owners else inner
        out.append("+".join(sorted(device_name(d) for d in devices)))
    return tuple(out)


def dispatched(model: nn.Module) -> bool:
    """Was the model placed by a device map (accelerate's hooks move each block's inputs)?"""
    return getattr(model, "hf_device_map", None) is not None
