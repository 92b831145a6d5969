"""Weights at a glance: the loaded model's parameters tallied by the kind of matrix they form
(embedding, query, key, value, attention output, MLP gate/up/down, norms, unembedding), so a learner
sees where the numbers live. Every parameter lands in exactly one kind: the kinds add up to the total.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel

    from ..engine.language_model import LanguageModel
    from ..engine.layout import Layout

# Leaf module names (lower case) by kind, matched inside a block's attention or MLP. Fused matrices
# are their own kind: splitting one tensor into thirds would invent a boundary the model may not have.
_ATTENTION_NAMES = {
    "query, key and value (fused)": {"c_attn", "query_key_value", "qkv_proj", "wqkv", "qkv"},
    "query": {"q_proj", "query", "q", "wq", "q_lin"},
    "key": {"k_proj", "key", "k", "wk", "k_lin"},
    "value": {"v_proj", "value", "v", "wv", "v_lin"},
}
_MLP_NAMES = {
    "MLP gate and up (fused)": {"gate_up_proj"},
    "MLP gate": {"gate_proj", "w1", "gate"},
    "MLP up": {"up_proj", "c_fc", "fc1", "dense_h_to_4h", "w3", "fc_in", "up"},
    "MLP down": {"down_proj", "c_proj", "fc2", "dense_4h_to_h", "w2", "fc_out", "down"},
}
_POSITION_NAMES = {"wpe", "embed_positions", "position_embeddings"}
KINDS = ("embedding", "position embedding", *_ATTENTION_NAMES, "attention output", *_MLP_NAMES,
         "norms", "unembedding", "other")


@dataclass(frozen=True)
class WeightKind:
    """All the tensors of one kind: how many, their shapes as stored, and how many numbers they hold."""

    kind: str
    tensors: int  # weight and bias tensors of this kind, over all blocks
    shapes: tuple[tuple[int, ...], ...]  # the distinct shapes, most numerous (then largest) first
    params: int  # numbers held (0 for a tied unembedding: it reuses the embedding matrix)
    note: str = ""


@dataclass(frozen=True)
class WeightTally:
    """The model's parameters by kind; `total` is sum(p.numel()) over the model's distinct parameters."""

    kinds: list[WeightKind]
    total: int
    tied: bool  # the unembedding is the embedding matrix itself


def _leaf(name: str) -> str:
    """'model.layers.0.self_attn.q_proj.weight' -> 'q_proj'."""
    parts = name.split(".")
    return parts[-2].lower() if len(parts) > 1 else parts[0].lower()


def _by_names(leaf: str, table: dict[str, set[str]], fallback: str) -> str:
    return next((kind for kind, names in table.items() if leaf in names), fallback)


def _owners(model: PreTrainedModel, layout: Layout) -> dict[int, str]:
    """Parameter id -> the part of the model that owns it (attention, out, mlp, embedding...)."""
    owner: dict[int, str] = {}

    def mark(module: nn.Module | None, part: str) -> None:
        for p in module.parameters() if module is not None else ():
            owner.setdefault(id(p), part)

    mark(model.get_input_embeddings(), "embedding")
    for out_proj in layout.out_projs:
        mark(out_proj, "attention output")
    for attn in layout.attentions:
        mark(attn, "attention")
    for mlp in layout.mlps:
        mark(mlp, "mlp")
    mark(model.get_output_embeddings(), "unembedding")
    return owner


def _kind(name: str, part: str | None) -> str:
    """The kind of one parameter from the part that owns it and its module's name."""
    leaf = _leaf(name)
    if part in ("embedding", "attention output", "unembedding"):
        return part
    if "norm" in leaf or leaf.startswith("ln"):
        return "norms"
    if part == "attention":
        return _by_names(leaf, _ATTENTION_NAMES, "other")
    if part == "mlp":
        return _by_names(leaf, _MLP_NAMES, "other")
    return "position embedding" if leaf in _POSITION_NAMES else "other"


def tied_unembedding(model: PreTrainedModel) -> bool:
    """Whether the output (unembedding) matrix is the input embedding matrix itself."""
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    return out is not None and inp is not None and out.weight is inp.weight


def tally_weights(model: PreTrainedModel, layout: Layout) -> WeightTally:
    """Every distinct parameter of the model by kind (tied matrices count once, under 'embedding')."""
    owner = _owners(model, layout)
    groups: dict[str, list[tuple[int, ...]]] = {}
    for name, p in model.named_parameters():  # distinct parameters: a tied matrix appears once
        groups.setdefault(_kind(name, owner.get(id(p))), []).append(tuple(p.shape))
    tied = tied_unembedding(model)
    kinds = []
    for kind in KINDS:
        shapes = groups.get(kind, [])
        if kind == "unembedding" and tied:
            rows = tuple(model.get_output_embeddings().weight.shape)
            kinds.append(WeightKind(kind, 0, (rows,), 0, "tied: the embedding matrix, reused"))
        elif shapes:
            distinct = sorted(set(shapes), key=lambda s: (-shapes.count(s), -_numel(s), s))
            kinds.append(WeightKind(kind, len(shapes), tuple(distinct), sum(_numel(s) for s in shapes)))
    total = sum(p.numel() for p in model.parameters())
    return WeightTally(kinds, int(total), tied)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


def model_weights(lm: LanguageModel) -> WeightTally:
    """The tally of a loaded LanguageModel (its module and the layout found at load time)."""
    return tally_weights(lm.model, lm.layout)
