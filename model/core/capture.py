"""The Capture: everything one forward pass computes for a prompt, as plain numpy (no torch here, so
views can import it cheaply). `model.engine.recorder` fills one; `LanguageModel.capture` returns it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .description import ModelSummary
from .logits import Logits
from .patterns import Patterns

KV = tuple[tuple[np.ndarray, np.ndarray], ...]  # per layer: keys, values (kv heads, T, head_dim) float32


@dataclass(frozen=True, eq=False)
class Capture:
    """One prompt through one model. Arrays are float32 and read-only; no reference to the model."""

    prompt: str
    tokens: list[str]  # one visible string per token
    token_ids: np.ndarray  # (T,) int64
    # (L, H, T, T) row = query, column = key; causal: zero above the diagonal. Patterns recompute a head
    # on demand from queries and keys (long prompts) or hold the whole array; an array given is wrapped.
    attention: Patterns
    residual: np.ndarray  # (L+1, T, D) embedding output, then the stream after every block
    attn_out: np.ndarray  # (L, T, D) what each block's attention adds to the stream
    mlp_out: np.ndarray  # (L, T, D) what each block's MLP outputs
    # (T, V) next-token logits at every position: every row, or (long prompts) the last rows and every
    # position's statistics; an array given is wrapped. LanguageModel.logits_at reads any row.
    logits: Logits
    model_name: str
    summary: ModelSummary  # the shape of the model that ran (layers, heads, sizes)
    device: str
    dtype: str
    seconds: float  # wall time of the forward pass
    # The keys and values every layer computed: a longer prompt that starts with these tokens runs
    # only its new positions from them (LanguageModel.extend_capture). None where the model's cache
    # is not a plain per-layer one (sliding windows, recurrent layers).
    kv: KV | None = field(default=None, repr=False)
    # What a whole pass over these tokens took, where `seconds` is less: an extension runs its new
    # positions only (its base's time scaled to this length). None: `seconds` (the capture ran whole).
    whole_seconds: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.attention, Patterns):  # a plain (L, H, T, T) array (tests, replace())
            object.__setattr__(self, "attention", Patterns.of_array(self.attention))
        if not isinstance(self.logits, Logits):
            object.__setattr__(self, "logits", Logits.of_array(self.logits, self.token_ids))
        L, H, T = self.summary.n_layers, self.summary.n_heads, len(self.tokens)
        D, V = self.summary.d_model, self.summary.vocab_size
        expected = {
            "token_ids": (T,),
            "attention": (L, H, T, T),
            "residual": (L + 1, T, D),
            "attn_out": (L, T, D),
            "mlp_out": (L, T, D),
            "logits": (T, V),
        }
        for name, shape in expected.items():
            array = getattr(self, name)
            if array.shape != shape:
                raise ValueError(f"Capture.{name} has shape {array.shape}, expected {shape}")
            if isinstance(array, np.ndarray):
                array.setflags(write=False)
        for keys, values in self.kv or ():
            if keys.shape[-2] != T or values.shape[-2] != T:
                raise ValueError(f"Capture.kv covers {keys.shape[-2]} positions, expected {T}")

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def pass_seconds(self) -> float:
        """What one whole pass over these tokens takes on this machine: the price of work that runs the
        prompt again (an extension's own `seconds`, its new positions only, priced a scan at 1 s)."""
        return self.seconds if self.whole_seconds is None else self.whole_seconds

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (the keys and values too): what a capture cache budgets."""
        arrays = (self.token_ids, self.attention, self.residual, self.attn_out, self.mlp_out, self.logits)
        keys = self.attention.keys  # a long capture's recorded keys may be its kv's own memory: counted once
        kv = sum((0 if layer < len(keys) and np.may_share_memory(k, keys[layer]) else k.nbytes) + v.nbytes
                 for layer, (k, v) in enumerate(self.kv or ()))
        return int(sum(a.nbytes for a in arrays) + kv)
