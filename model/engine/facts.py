"""What the page texts may say about a loaded model, read from its config and modules: head geometry,
how it knows positions, its norm, tied embeddings, parallel blocks, MLP width and activation.

The page explanations state these facts; reading them here keeps a GPT-2 or Pythia page from saying
what only holds for the default model. The norm and the block shape are found from the modules'
math (probes), not from class names: the norm's kind from the final norm's fit, measured once and
kept on the model (LanguageModel.norm_fit), the block shape from a short pass through patch sites.
"""
from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from ..core.description import ModelFacts, Positions

if TYPE_CHECKING:  # torch only where a model is inspected: ModelFacts stays a light import for viz/
    from torch import nn
    from transformers import PreTrainedModel

    from .language_model import LanguageModel
    from .patch_sites import Edit, Site


_PROBE_IDS = 4  # tokens of the block-shape probe



def model_facts(lm: LanguageModel) -> ModelFacts:
    """Read the facts of a loaded model (a short probe pass through the gateway for the block shape)."""
    s, model = lm.summary, lm.model
    cfg = _text_config(model)
    mlp = lm.layout.mlps[0]
    return ModelFacts(
        shape=s, d_mlp=mlp_width(mlp, s.d_model),
        positions=_positions(model, cfg, lm.layout.blocks),
        norm=lm.norm_fit.kind,
        tied_embeddings=_tied(model),
        parallel_blocks=_parallel(lm),
        activation=_activation(cfg, mlp),
        gated_mlp=any("gate_proj" in n or "gate_up" in n or n.startswith("w3") for n, _ in mlp.named_parameters()),
    )


def _text_config(model: PreTrainedModel):
    return model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config


def _positions(model: PreTrainedModel, cfg, blocks: nn.Module) -> Positions:
    """ALiBi from the config (bloom, mpt, falcon's flag); learned when an embedding table besides the
    tokens' sits outside the blocks; rotary when a rotary module exists or the config names one."""
    from torch import nn

    attn_config = getattr(cfg, "attn_config", None)
    if getattr(cfg, "alibi", False) or getattr(attn_config, "alibi", False) or cfg.model_type == "bloom":
        return "alibi"
    inside = {id(m) for m in blocks.modules()}
    tokens = model.get_input_embeddings()
    tables = [m for m in model.modules() if isinstance(m, nn.Embedding) and m is not tokens and id(m) not in inside]
    if tables:
        return "learned"
    rotary = any("rotary" in type(m).__name__.lower() for m in model.modules())
    if rotary or any(getattr(cfg, k, None) for k in ("rotary_dim", "rope_theta", "rope_parameters", "rope_scaling")):
        return "rotary"
    return "none"


def _tied(model: PreTrainedModel) -> bool:
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


class _SeenEnough(Exception):
    """Ends a probe pass at block 0's MLP input: nothing after it is read."""


def _block0_probe(seen: list, shift: bool) -> dict[Site, Edit]:
    """The edits of one probe pass: block 0's MLP input is recorded, then the pass ends; with `shift`,
    noise is added to block 0's attention module's own output first."""
    import torch

    from .patch_sites import reader

    def add_noise(first: torch.Tensor) -> torch.Tensor:
        return first + torch.randn(first.shape, generator=torch.Generator().manual_seed(1)).to(first.device, first.dtype)

    def record(hidden: torch.Tensor) -> None:
        seen.append(hidden.detach().to("cpu", torch.float32).clone())
        raise _SeenEnough  # the other blocks would cost a whole pass (~0.2 s each on a laptop CPU)

    edits: dict[Site, Edit] = {("mlp_in", 0): reader(record)}
    if shift:
        edits[("attention", 0)] = add_noise
    return edits


def _parallel(lm: LanguageModel) -> bool:
    """Parallel when block 0's MLP input does not move when its attention output does."""
    import torch

    ids = list(range(min(_PROBE_IDS, lm.summary.vocab_size)))
    seen: list = []
    for shift in (False, True):
        with suppress(_SeenEnough):
            lm.forward(ids, sites=_block0_probe(seen, shift), last_only=True)
    plain, shifted = seen
    return bool(torch.allclose(plain, shifted, atol=1e-5, rtol=1e-4))


def mlp_width(mlp: nn.Module, d_model: int) -> int:
    """The hidden width: the other side of the MLP's down projection (per expert in a mixture of
    experts, whose expert weights are stacked in a leading dimension), else of its last matrix. A
    router's matrix (one row per expert) or a bias is not a projection."""
    matrices = [(name, p) for name, p in mlp.named_parameters() if p.ndim >= 2 and not _routing_or_bias(name)]
    if not matrices:
        return d_model
    down = sorted((p for name, p in matrices if "down" in name), key=lambda p: p.ndim < 3)  # stacked experts first
    down = down or [matrices[-1][1]]
    dims = [d for d in down[0].shape[-2:] if d != d_model]
    return int(dims[0]) if dims else d_model


def _routing_or_bias(name: str) -> bool:
    """A mixture of experts' router (`gate`, `router`, a shared expert's gate) or a stacked bias."""
    return name.endswith("bias") or name.split(".")[0] in ("gate", "router", "shared_expert_gate")


def _activation(cfg, mlp: nn.Module) -> str:
    """The config's name for the MLP activation, else the class name of an activation module in it."""
    for key in ("hidden_act", "hidden_activation", "activation_function", "activation"):
        value = getattr(cfg, key, None)
        if isinstance(value, str) and value:
            return value
    for module in mlp.modules():
        name = type(module).__name__
        if next(module.parameters(), None) is None and any(a in name.lower() for a in ("gelu", "silu", "relu", "tanh")):
            return name
    return ""
