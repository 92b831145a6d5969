"""Find the parts of a decoder-only model generically: the block list, each block's attention and
MLP, the final norm, and the head geometry. No per-family table of module names for the blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UnsupportedModelError

if TYPE_CHECKING:  # torch only where a model is inspected: ModelSummary stays a light import
    from torch import nn

_ATTN_HINTS = ("attn", "attention")
_MLP_HINTS = ("mlp", "feed_forward", "ffn", "moe")


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


@dataclass(frozen=True)
class Layout:
    """The modules a capture hooks, found once per loaded model."""

    blocks: nn.ModuleList  # the decoder blocks, in order
    attentions: list[nn.Module]  # one per block
    mlps: list[nn.Module]  # one per block
    out_projs: list[nn.Module]  # attention output projection per block (input = concatenated heads)
    final_norm: nn.Module | None
    summary: ModelSummary


def _architecture(model: nn.Module) -> str:
    archs = getattr(model.config, "architectures", None) or [type(model).__name__]
    return archs[0]


def _find_blocks(model: nn.Module, n_layers: int) -> nn.ModuleList:
    """The outermost ModuleList of n_layers modules of one class: the decoder stack."""
    from torch import nn

    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers and n_layers > 0:
            if len({type(m) for m in module}) == 1:
                return module
    raise UnsupportedModelError(
        f"Cannot find the decoder blocks of {_architecture(model)}: no list of {n_layers} identical "
        "layers. This app needs a standard decoder-only causal LM."
    )


def _child(block: nn.Module, hints: tuple[str, ...], what: str, arch: str) -> nn.Module:
    """The direct child of a block whose attribute or class name matches one of the hints."""
    for name, child in block.named_children():
        label = f"{name} {type(child).__name__}".lower()
        has_weights = next(child.parameters(), None) is not None  # not GPT-NeoX's post_attention_dropout
        if any(h in label for h in hints) and "norm" not in label and has_weights:
            return child
    raise UnsupportedModelError(f"Cannot find the {what} inside a block of {arch}.")


def _out_proj(attn: nn.Module, width: int, arch: str) -> nn.Module:
    """The last weight-bearing child of an attention module that reads all heads concatenated."""
    found = None
    for child in attn.children():
        weight = getattr(child, "weight", None)
        if weight is not None and weight.ndim == 2 and width in weight.shape:
            found = child
    if found is None:
        raise UnsupportedModelError(f"Cannot find the attention output projection of {arch}.")
    return found


def _final_norm(model: nn.Module, blocks: nn.ModuleList) -> nn.Module | None:
    """The norm the base model applies after the block stack (the one the unembedding reads)."""
    base = getattr(model, "base_model", model)
    norm = None
    for child in base.children():
        if child is blocks:
            continue
        if "norm" in type(child).__name__.lower():
            norm = child
    if norm is None:
        for name, child in base.named_children():
            if "norm" in name.lower() or name == "ln_f":
                norm = child
    return norm


def summarize(model: nn.Module, name: str) -> ModelSummary:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    n_heads = int(cfg.num_attention_heads)
    d_model = int(cfg.hidden_size)
    kv = getattr(cfg, "num_key_value_heads", None) or n_heads
    head_dim = getattr(cfg, "head_dim", None) or d_model // n_heads
    return ModelSummary(
        name=name,
        architecture=_architecture(model),
        n_layers=int(cfg.num_hidden_layers),
        n_heads=n_heads,
        n_kv_heads=int(kv),
        head_dim=int(head_dim),
        d_model=d_model,
        vocab_size=int(model.get_output_embeddings().weight.shape[0]),
    )


def find_layout(model: nn.Module, name: str) -> Layout:
    """Locate every module a capture needs, or explain which part is missing."""
    summary = summarize(model, name)
    arch = summary.architecture
    blocks = _find_blocks(model, summary.n_layers)
    attentions = [_child(b, _ATTN_HINTS, "attention module", arch) for b in blocks]
    mlps = [_child(b, _MLP_HINTS, "MLP", arch) for b in blocks]
    width = summary.n_heads * summary.head_dim
    out_projs = [_out_proj(a, width, arch) for a in attentions]
    return Layout(blocks, attentions, mlps, out_projs, _final_norm(model, blocks), summary)
