"""The one registry of the attention functions this app swaps into a model, and the per-pass routes
through which a pass sees (or edits) what each attention module computed.

transformers looks the attention function up by name (`config._attn_implementation`) in
`AttentionInterface` on every call, and the mask function by the same name in
`AttentionMaskInterface`: each of our names is registered in both, or the model would run with no
causal mask at all. Three names are ours:

- DIRECT: for float32 CPU Llama-family models, the softmax is written straight into a capture's
  pattern array (`writing_patterns`); `direct_attention` picks it per pass where it applies.
- LISTEN: the module's own family's eager attention, after which the listener routed to that layer
  (`listening`) hears the call (queries, keys and values as used, mask, scaling, output, weights)
  and may replace its output.
- FAST: transformers' sdpa kernel (no pattern is ever formed), after which the listener hears the
  call as under LISTEN, its weights None: what a pass keeps to recompute patterns on demand.

A route lives for one pass (the hooks a pass enters, under the model's lock); `swapped` sets the
implementation for one pass and restores the one the model had.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask
from transformers.models.llama import modeling_llama

from .layout import Layout

if TYPE_CHECKING:
    from transformers import PreTrainedModel

DIRECT = "xray_capture"
LISTEN = "xray_listen"
FAST = "xray_fast"


@dataclass(frozen=True)
class Call:
    """One attention module's call on one pass: what the family's eager attention received and returned."""

    layer: int
    module: nn.Module
    query: torch.Tensor  # (B, H, T, hd) after rotary embeddings
    key: torch.Tensor  # (B, KV, T_all, hd) after rotary embeddings, past positions included
    value: torch.Tensor  # (B, KV, T_all, hd)
    mask: torch.Tensor | None  # additive or boolean (B, 1, T, T_all), as the family got it
    scaling: float | None  # the factor on q.k the family was given (None: its default)
    kwargs: dict  # the rest the family passes along (softcap, sliding window, sinks as s_aux...)
    output: torch.Tensor  # (B, T, H, hd) the heads' outputs
    weights: torch.Tensor | None  # (B, H, T, T_all) the pattern; None under FAST, whose kernel forms none
    kernel: str = LISTEN  # the registered name that ran the call: under FAST a mask of None means causal


Listener = Callable[[Call], "tuple[torch.Tensor, torch.Tensor] | None"]  # None keeps the call's (output, weights)

_Route = TypeVar("_Route")
_LISTENERS: dict[int, tuple[Listener, int]] = {}  # id(attention module) -> (listener, layer)
_PATTERNS: dict[int, tuple[np.ndarray, list[bool], int]] = {}  # id(attention module) -> (patterns, seen, layer)
_ROUTES_LOCK = threading.Lock()


def family_eager(module: nn.Module) -> Callable:
    """The eager attention of the module's own model family (Llama's when it has none)."""
    family = sys.modules.get(type(module).__module__)
    return getattr(family, "eager_attention_forward", modeling_llama.eager_attention_forward)


@contextmanager
def _routed(table: dict[int, _Route], routes: dict[int, _Route]) -> Iterator[None]:
    """Add routes to a table for one pass; removed even when the pass raises."""
    with _ROUTES_LOCK:
        table.update(routes)
    try:
        yield
    finally:
        with _ROUTES_LOCK:
            for key in routes:
                table.pop(key, None)


def listening(layout: Layout, listener: Listener, layers: list[int] | None = None) -> AbstractContextManager[None]:
    """For one pass under LISTEN: `listener` hears every call of the attention of `layers` (all by default)."""
    chosen = range(len(layout.attentions)) if layers is None else layers
    return _routed(_LISTENERS, {id(layout.attentions[i]): (listener, i) for i in chosen})


def writing_patterns(layout: Layout, patterns: np.ndarray, seen: list[bool]) -> AbstractContextManager[None]:
    """For one pass under DIRECT: layer i's softmax lands in patterns[i] (H, T, T), and seen[i] turns True."""
    return _routed(_PATTERNS, {id(a): (patterns, seen, i) for i, a in enumerate(layout.attentions)})


def _listen(module: nn.Module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """LISTEN: the family's eager attention, then the layer's listener, whose answer (if any) is used."""
    output, weights = family_eager(module)(module, query, key, value, attention_mask,
                                           scaling=scaling, dropout=dropout, **kwargs)
    route = _LISTENERS.get(id(module))
    if route is None:
        return output, weights
    listener, layer = route
    edited = listener(Call(layer, module, query, key, value, attention_mask, scaling, kwargs, output, weights))
    return (output, weights) if edited is None else edited


def _fast(module: nn.Module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """FAST: transformers' sdpa attention, then the layer's listener (weights None), whose answer is used."""
    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                       **kwargs)
    route = _LISTENERS.get(id(module))
    if route is None:
        return output, None
    listener, layer = route
    edited = listener(Call(layer, module, query, key, value, attention_mask, scaling, kwargs, output, None, FAST))
    return (output, None) if edited is None else edited


# Direct attention: a registered function writes each softmax straight into the capture's (H, T, T)
# slice. Same operations in the same order as Llama's eager (scores * scaling + mask, float32
# softmax), so the numbers are identical, but the pattern is never copied and eager's three extra
# (H, T, T) temporaries are never allocated.
_DIRECT_FAMILIES = ("llama", "mistral", "qwen2", "qwen3")  # eager attention identical to Llama's


def _direct(module: nn.Module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """Llama eager attention whose softmax lands in the routed pattern array; plain eager if not routed."""
    route = _PATTERNS.get(id(module))
    plain = dropout or kwargs.get("softcap") or kwargs.get("s_aux") is not None
    if route is None or plain or (attention_mask is not None and attention_mask.dtype == torch.bool):
        return modeling_llama.eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout,
                                                      **kwargs)
    patterns, seen, layer = route
    # A plain int on every Llama-family attention; nn.Module types an unknown attribute Tensor | Module.
    groups = cast(int, module.num_key_value_groups)
    key_states = modeling_llama.repeat_kv(key, groups)  # (1, H, T, hd)
    value_states = modeling_llama.repeat_kv(value, groups)  # (1, H, T, hd)
    scores = torch.matmul(query, key_states.transpose(2, 3)).mul_(scaling)  # (1, H, T, T)
    if attention_mask is not None:
        scores.add_(attention_mask)  # (1, 1, T, T) additive causal mask, broadcast over heads
    weights = torch.from_numpy(patterns[layer]).unsqueeze(0)  # (1, H, T, T) view of the capture
    torch.softmax(scores, dim=-1, out=weights)
    seen[layer] = True
    output = torch.matmul(weights, value_states).transpose(1, 2).contiguous()  # (1, T, H, hd)
    return output, weights


AttentionInterface.register(DIRECT, _direct)
AttentionInterface.register(LISTEN, _listen)
AttentionInterface.register(FAST, _fast)
AttentionMaskInterface.register(DIRECT, eager_mask)
AttentionMaskInterface.register(LISTEN, eager_mask)
AttentionMaskInterface.register(FAST, sdpa_mask)


def _family(module: nn.Module) -> str:
    """'llama' for transformers.models.llama.modeling_llama.LlamaAttention."""
    parts = type(module).__module__.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["transformers", "models"] else ""


def _can_write_directly(model: PreTrainedModel, layout: Layout, input_ids: torch.Tensor) -> bool:
    """Only single-sequence float32 CPU passes of eager Llama-family models; everything else (batches
    too) keeps the copying hooks."""
    params = next(model.parameters())
    return (
        input_ids.shape[0] == 1 and input_ids.device.type == "cpu" and params.device.type == "cpu"
        and params.dtype == torch.float32
        and getattr(model.config, "_attn_implementation", None) == "eager" and not model.training
        and type(model)._can_set_attn_implementation()
        and all(_family(a) in _DIRECT_FAMILIES and hasattr(a, "num_key_value_groups") for a in layout.attentions)
    )


def direct_attention(model: PreTrainedModel, layout: Layout, input_ids: torch.Tensor) -> str | None:
    """The implementation a capture swaps in: DIRECT where it applies, else none (eager, copied by hooks)."""
    return DIRECT if _can_write_directly(model, layout, input_ids) else None


def listening_kernel(model: PreTrainedModel, layout: Layout, input_ids: torch.Tensor) -> str | None:
    """The implementation a pass that listens without patterns swaps in: FAST where the family supports
    sdpa, LISTEN (its eager) where it does not (softcaps, sinks), none where it computes attention in
    its own module (a listener then hears nothing)."""
    if not type(model)._can_set_attn_implementation():
        return None
    return FAST if type(model)._supports_sdpa else LISTEN


@contextmanager
def swapped(model: PreTrainedModel, name: str) -> Iterator[None]:
    """Swap the model's attention implementation for one pass and restore the one it had."""
    previous = model.config._attn_implementation
    model.set_attn_implementation(name)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)
