"""Find the parts of a decoder-only model generically: the block list, each block's attention and
MLP, the final norm, and the head geometry. No per-family table of module names for the blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..core.description import ModelSummary
from ..core.errors import UnsupportedModelError

if TYPE_CHECKING:  # torch only where a model is inspected: ModelSummary stays a light import
    from torch import nn
    from transformers import PreTrainedModel

    from .probe import LogitMap, Run, Writes

_ATTN_HINTS = ("attn", "attention")
_MLP_HINTS = ("mlp", "feed_forward", "ffn", "moe")
_INPUT_PROJ = ("q", "k", "v", "qkv", "query", "key", "value", "query_key_value", "c_attn", "wqkv", "kv")



@dataclass(frozen=True)
class Layout:
    """The modules a capture hooks, found once per loaded model."""

    blocks: nn.ModuleList  # the decoder blocks, in order
    attentions: list[nn.Module]  # one per block
    mlps: list[nn.Module]  # one per block
    out_projs: list[nn.Module]  # attention output projection per block (input = concatenated heads)
    final_norm: nn.Module | None
    summary: ModelSummary
    writes: Writes  # the modules whose outputs each block adds to the stream (checked on a probe pass)
    logit_map: LogitMap  # how the logits follow from the unembedding of the final norm's output


def _architecture(model: PreTrainedModel) -> str:
    archs = getattr(model.config, "architectures", None) or [type(model).__name__]
    return archs[0]


def _find_blocks(model: PreTrainedModel, n_layers: int) -> nn.ModuleList:
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


def _weighted(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None  # not GPT-NeoX's post_attention_dropout


def _child(block: nn.Module, hints: tuple[str, ...], what: str, arch: str, skip: nn.Module | None = None) -> nn.Module:
    """The direct child of a block whose attribute name (else class name) matches one of the hints."""
    children = [(n, c) for n, c in block.named_children() if c is not skip and _weighted(c)]
    for label in (lambda n, c: n.lower(), lambda n, c: type(c).__name__.lower()):
        for name, child in children:
            text = label(name, child)
            if any(h in text for h in hints) and "norm" not in text:
                return child
    raise UnsupportedModelError(f"Cannot find the {what} inside a block of {arch}.")


def _mlp(block: nn.Module, attn: nn.Module, d_model: int, arch: str) -> nn.Module:
    """The block's MLP module, or (OPT: fc1/fc2 straight in the block) its last projection to d_model."""
    try:
        return _child(block, _MLP_HINTS, "MLP", arch, skip=attn)
    except UnsupportedModelError:
        last = None
        for name, child in block.named_children():
            weight = getattr(child, "weight", None)
            if child is not attn and "norm" not in name.lower() and weight is not None and weight.ndim == 2 \
                    and _in_out(child)[1] == d_model:
                last = child
        if last is None:
            raise
        return last


def _in_out(linear: nn.Module) -> tuple[int, int]:
    """(input features, output features) of a Linear (weight (out, in)) or GPT-2 Conv1D (weight (in, out))."""
    from .linear import weight_of

    rows, cols = weight_of(linear).shape
    return (rows, cols) if type(linear).__name__ == "Conv1D" else (cols, rows)


def _out_proj(attn: nn.Module, width: int, d_model: int, arch: str) -> nn.Module:
    """The attention's projection from all heads concatenated (width) back to the stream (d_model);
    not a query/key/value projection even when those have the same square shape."""
    found = None
    for name, child in attn.named_modules():  # GPT-Neo nests its projections one module deeper
        weight = getattr(child, "weight", None)
        if not name or weight is None or weight.ndim != 2 or \
                name.rsplit(".", 1)[-1].lower().removesuffix("_proj") in _INPUT_PROJ:
            continue
        if _in_out(child) == (width, d_model):
            found = child
    if found is None:
        raise UnsupportedModelError(f"Cannot find the attention output projection of {arch}.")
    return found


def _final_norm(model: nn.Module, blocks: nn.ModuleList) -> nn.Module | None:
    """The norm beside the block stack (a child of the module that holds the blocks, like OPT's
    decoder.final_layer_norm or Llama's model.norm): the one the unembedding reads."""
    parent = next((m for m in model.modules() if any(c is blocks for c in m.children())), model)
    norm = None
    for name, child in parent.named_children():
        if child is not blocks and ("norm" in f"{name} {type(child).__name__}".lower() or name == "ln_f"):
            norm = child
    return norm


def summarize(model: PreTrainedModel, name: str) -> ModelSummary:
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


def find_blocks(model: PreTrainedModel) -> nn.ModuleList:
    """The decoder blocks alone, from the structure (no pass: works on a model whose weights are not
    loaded yet, as when planning a device map)."""
    return _find_blocks(model, summarize(model, "").n_layers)


def find_layout(model: PreTrainedModel, name: str, run: Run) -> Layout:
    """Locate every module a capture needs, or explain which part is missing; then probe what each
    block writes and how the logits follow, on one short pass through `run` (the gateway's pass)."""
    summary = summarize(model, name)
    arch = summary.architecture
    blocks = _find_blocks(model, summary.n_layers)
    attentions = [_child(b, _ATTN_HINTS, "attention module", arch) for b in blocks]
    mlps = [_mlp(b, a, summary.d_model, arch) for b, a in zip(blocks, attentions)]
    width = summary.n_heads * summary.head_dim
    out_projs = [_out_proj(a, width, summary.d_model, arch) for a in attentions]
    norm = _final_norm(model, blocks)
    from .probe import probe, unprobed

    layout = Layout(blocks, attentions, mlps, out_projs, norm, summary, *unprobed(attentions, mlps))
    writes, logit_map = probe(model, layout, run)
    return replace(layout, writes=writes, logit_map=logit_map)
