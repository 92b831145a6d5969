"""What a loaded model is, as plain data the views can hold without torch. Two descriptions, each for
one purpose: `ModelSummary` is its shape (read from the config and modules when it loads; every
Capture carries it), `ModelFacts` is that shape plus what page texts may state about how the model
computes (measured once by model/engine/facts.py). `model.engine.layout.Layout` is the third thing,
not a description: the model's own modules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Positions = Literal["rotary", "learned", "alibi", "none"]
Norm = Literal["rms", "layer", "none"]


@dataclass(frozen=True)
class ModelSummary:
    """The geometry the views need, as plain numbers."""

    name: str
    architecture: str  # e.g. "LlamaForCausalLM"
    n_layers: int
    n_heads: int  # query heads per layer
    n_kv_heads: int  # key/value heads (fewer than n_heads under grouped-query attention)
    head_dim: int
    d_model: int
    vocab_size: int

    @property
    def group_size(self) -> int:
        """How many query heads share one key/value head."""
        return max(1, self.n_heads // max(1, self.n_kv_heads))

    @property
    def grouped_query(self) -> bool:
        """Several query heads share one key/value head."""
        return self.n_kv_heads < self.n_heads


@dataclass(frozen=True)
class ModelFacts:
    """Plain facts about one loaded model, for sentences that must hold for it."""

    shape: ModelSummary  # layers, heads, widths, vocabulary
    d_mlp: int  # neurons per MLP (per expert in a mixture of experts)
    positions: Positions  # rotary (on queries and keys), learned (a vector added to the embedding), ALiBi bias, none
    norm: Norm  # the final norm: RMSNorm (no mean removed), LayerNorm (mean removed), or none
    tied_embeddings: bool  # one matrix reads tokens in and scores them out
    parallel_blocks: bool  # attention and MLP read the same input (added together), not one after the other
    activation: str  # the MLP's non-linearity as the config names it (e.g. "silu", "gelu_new"), "" if unknown
    gated_mlp: bool  # a gate projection multiplies the activation (SwiGLU / GeGLU)
