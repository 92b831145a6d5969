"""One layer's attention, step by step, from the queries, keys and values the model really used
(after rotary embeddings): raw scores, the causal mask, the softmax pattern, the value norms.

How it records: transformers dispatches attention through a registry (`AttentionInterface`). We
register "xray_record", which runs the model family's own eager attention and keeps its inputs for
the one layer asked for. `LanguageModel.forward` swaps it in and restores the previous one; the same
name must be registered for masks too, or the model would run with no causal mask at all.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask
from transformers.models.llama import modeling_llama

from .errors import CaptureError, UnsupportedModelError
from .language_model import LanguageModel

RECORDING = "xray_record"
_TARGETS: dict[int, _Slot] = {}  # id(attention module) -> where its inputs go
_TARGETS_LOCK = threading.Lock()


class _Recorded(Exception):
    """Raised once the target layer is recorded: the layers after it need not run."""


@dataclass
class _Slot:
    tensors: dict | None = None


@dataclass(frozen=True)
class HeadPipeline:
    """Every query head of one layer, at each step of the score pipeline. float32, read-only."""

    layer: int
    query: np.ndarray  # (H, T, hd) queries as used (after rotary)
    key: np.ndarray  # (KV, T, hd) keys as used (after rotary)
    value: np.ndarray  # (KV, T, hd)
    scores: np.ndarray  # (H, T, T) q.k * scaling, before the mask
    masked: np.ndarray  # (T, T) bool: True where the mask hides key (column) from query (row)
    pattern: np.ndarray  # (H, T, T) the attention weights the model itself computed
    scaling: float  # the factor on q.k (1/sqrt(head_dim) for most models)
    group_size: int  # query heads per key/value head

    def __post_init__(self) -> None:
        for name in ("query", "key", "value", "scores", "masked", "pattern"):
            getattr(self, name).setflags(write=False)

    @property
    def n_heads(self) -> int:
        return int(self.query.shape[0])

    def kv_head(self, head: int) -> int:
        """The key/value head a query head reads under grouped-query attention."""
        return head // self.group_size

    def heads_sharing(self, head: int) -> list[int]:
        """All query heads that read the same key/value head as `head`."""
        kv = self.kv_head(head)
        return [h for h in range(self.n_heads) if self.kv_head(h) == kv]

    def masked_scores(self, head: int) -> np.ndarray:
        """(T, T) raw scores with -inf where the mask hides a key."""
        return np.where(self.masked, -np.inf, self.scores[head]).astype(np.float32)

    def softmax(self, head: int) -> np.ndarray:
        """(T, T) our own softmax of the masked scores (equals `pattern` up to rounding)."""
        s = self.masked_scores(head).astype(np.float64)
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)

    def value_norms(self, head: int) -> np.ndarray:
        """(T,) length of each key position's value vector for this head's kv head."""
        return np.linalg.norm(self.value[self.kv_head(head)], axis=-1)

    def value_weighted(self, head: int) -> np.ndarray:
        """(T, T) weight x |value|: how much each key really moves the head's output."""
        return self.pattern[head] * self.value_norms(head)[None, :]


def _family_eager(module: nn.Module) -> Callable:
    """The eager attention of the module's own model family (Llama's when it has none)."""
    family = sys.modules.get(type(module).__module__)
    return getattr(family, "eager_attention_forward", modeling_llama.eager_attention_forward)


def _record(module: nn.Module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The registered attention function: family eager attention, plus a copy for the target layer."""
    output, weights = _family_eager(module)(module, query, key, value, attention_mask,
                                            scaling=scaling, dropout=dropout, **kwargs)
    slot = _TARGETS.get(id(module))
    if slot is not None:
        used = scaling if scaling is not None else query.shape[-1] ** -0.5
        slot.tensors = {"query": query, "key": key, "value": value, "mask": attention_mask,
                        "weights": weights, "scaling": float(used), "softcap": kwargs.get("softcap")}
        raise _Recorded
    return output, weights


AttentionInterface.register(RECORDING, _record)
AttentionMaskInterface.register(RECORDING, eager_mask)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy()


def _hidden(mask: torch.Tensor | None, n: int) -> np.ndarray:
    """(T, T) bool of masked cells from an additive or boolean mask; causal when there is none."""
    if mask is None:
        return np.triu(np.ones((n, n), dtype=bool), k=1)
    m = mask[0, 0, :n, -n:]  # (T, T) this prompt's own keys
    if m.dtype == torch.bool:
        return ~m.cpu().numpy()
    return (m <= torch.finfo(m.dtype).min / 2).cpu().numpy() | torch.isinf(m).cpu().numpy()


def _scores(query: torch.Tensor, key: torch.Tensor, scaling: float, softcap: float | None) -> np.ndarray:
    """(H, T, T) q.k * scaling in float32, each query head against its shared kv head."""
    q = query[0].float()  # (H, T, hd)
    k = key[0].float()  # (KV, T, hd)
    k = k.repeat_interleave(q.shape[0] // k.shape[0], dim=0)  # (H, T, hd)
    s = torch.matmul(q, k.transpose(-1, -2)) * scaling  # (H, T, T)
    if softcap:
        s = torch.tanh(s / softcap) * softcap
    return _to_numpy(s)


def _uses_alibi(config) -> bool:
    """ALiBi (a per-head linear bias on the scores by distance): BLOOM always, Falcon and MPT by config."""
    attn_config = getattr(config, "attn_config", None)
    return (config.model_type == "bloom" or bool(getattr(config, "alibi", False))
            or bool(getattr(attn_config, "alibi", False) if attn_config is not None else False))


def _check_supported(lm: LanguageModel) -> None:
    if not type(lm.model)._can_set_attn_implementation():
        config = lm.model.config
        alibi = (" Its scores also carry an ALiBi position bias added inside that module."
                 if _uses_alibi(config) else "")
        raise UnsupportedModelError(
            f"Attention step by step is not available for {lm.summary.architecture} ({config.model_type}): this "
            "family computes attention inside its own module instead of through transformers' attention "
            f"interface, so the queries and keys it used cannot be recorded.{alibi} The captured patterns on "
            "the other pages are the model's own."
        )


@contextmanager
def _target(module: nn.Module, slot: _Slot) -> Iterator[None]:
    """Let the recording attention keep `module`'s inputs in `slot` for one pass."""
    with _TARGETS_LOCK:
        _TARGETS[id(module)] = slot
    try:
        yield
    finally:
        with _TARGETS_LOCK:
            _TARGETS.pop(id(module), None)


def _run_recording(lm: LanguageModel, layer: int, ids: list[int]) -> dict:
    """Run the prompt with the recording attention until `layer` is recorded (the gateway restores it)."""
    slot = _Slot()
    try:
        lm.forward(ids, hooks=lambda layout: _target(layout.attentions[layer], slot), attention=RECORDING)
    except _Recorded:
        pass
    if slot.tensors is None:
        raise CaptureError(f"Layer {layer}'s attention was never called through the attention registry.")
    return slot.tensors


def head_pipeline(lm: LanguageModel, token_ids: np.ndarray | list[int], layer: int) -> HeadPipeline:
    """Queries, keys, values, scores, mask and pattern of every head in `layer` for these tokens."""
    if not 0 <= layer < lm.summary.n_layers:
        raise ValueError(f"layer must be in 0..{lm.summary.n_layers - 1}, got {layer}")
    _check_supported(lm)
    ids = [int(i) for i in token_ids]
    rec = _run_recording(lm, layer, ids)
    query, key = rec["query"], rec["key"]  # (1, H, T, hd), (1, KV, T, hd)
    n = len(ids)
    return HeadPipeline(
        layer=layer,
        query=_to_numpy(query[0]),
        key=_to_numpy(key[0]),
        value=_to_numpy(rec["value"][0]),
        scores=_scores(query, key, rec["scaling"], rec["softcap"]),
        masked=_hidden(rec["mask"], n),
        pattern=_to_numpy(rec["weights"][0]),
        scaling=rec["scaling"],
        group_size=max(1, query.shape[1] // key.shape[1]),
    )
