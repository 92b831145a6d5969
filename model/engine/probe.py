"""One short probe pass at load time, to learn from the model's own numbers (not from class names):
which module's output each block really adds to the residual stream for its attention and its MLP
(the attention module, its output projection, or a norm after it; times a residual multiplier), and
how the logits follow from the final norm's output (a scale, a soft-cap). Every answer is checked
against the pass; where none fits, the views that need it refuse instead of showing a wrong number.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .devices import input_device

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from .layout import Layout

# One pass of (1, T) ids with hooks entered on a layout's modules, giving its (T, V) logits: the
# gateway's pass, handed in by LanguageModel (the probe runs before it has a layout to call `forward` with).
Run = Callable[["Layout", torch.Tensor, Callable[["Layout"], AbstractContextManager]], np.ndarray]

_PROBE_TOKENS = 6
_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8}  # relative; half precision gets HALF_TOLERANCE
HALF_TOLERANCE = 3e-2  # bfloat16 keeps 8 bits: a sum rounds by ~4e-3 of the stream's size


@dataclass(frozen=True)
class Writes:
    """What each block adds to the stream: attn_writes[l](...) * scale + mlp_writes[l](...) * scale."""

    attn: list[nn.Module]
    mlp: list[nn.Module]
    scale: float
    exact: bool  # block output == input + scale * (attn write + mlp write), checked on the probe
    heads_linear: bool  # the attention writes its out-projection's output as is, so the write splits into one
    # share per head (not behind a post-norm: Gemma 2/3, OLMo 2). Ablating a head is exact either way.


@dataclass(frozen=True)
class LogitMap:
    """logits = softcap(scale * unembed(final_norm(stream))); `problem` says why it is unknown."""

    scale: float = 1.0
    softcap: float | None = None
    problem: str | None = None

    def apply(self, raw: torch.Tensor) -> torch.Tensor:
        """The model's own transform of the unembedding's output (V,) or (N, V)."""
        out = raw * self.scale if self.scale != 1.0 else raw
        return torch.tanh(out / self.softcap) * self.softcap if self.softcap else out


def _first(output) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def tolerance(dtype: torch.dtype) -> float:
    """How far (relative) a check may be off in this dtype and still count as exact."""
    return _TOLERANCE.get(dtype, HALF_TOLERANCE)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float, size: float = 0.0) -> bool:
    """a equals b up to tol relative to the larger of 1, |b| and `size` (the stream the sum rounds in)."""
    return a.shape == b.shape and float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()), size)


class _Tape:
    """Forward hooks that keep a float64 copy of chosen modules' inputs and outputs for one pass."""

    def __init__(self) -> None:
        self.outputs: dict[int, torch.Tensor] = {}  # a module's first tensor output, once it ran
        self.inputs: dict[int, torch.Tensor] = {}
        self.watched: dict[int, nn.Module] = {}

    def watch(self, module: nn.Module) -> None:
        self.watched.setdefault(id(module), module)

    def _hook(self, mod: nn.Module, args: tuple, kwargs: dict, output) -> None:
        x = args[0] if args else kwargs.get("hidden_states")
        if isinstance(x, torch.Tensor) and id(mod) not in self.inputs:
            self.inputs[id(mod)] = x.detach().double().cpu().clone()
        first = _first(output)
        if isinstance(first, torch.Tensor) and id(mod) not in self.outputs:
            self.outputs[id(mod)] = first.detach().double().cpu().clone()

    @contextmanager
    def installed(self, layout: Layout) -> Iterator[None]:
        """The hooks on the watched modules (the layout's, or inside them) for one pass: removed after."""
        handles = [module.register_forward_hook(self._hook, with_kwargs=True) for module in self.watched.values()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


def _last_linear(module: nn.Module) -> nn.Module | None:
    """The last weight-bearing 2-D child of a module (its down projection), if it has children."""
    found = None
    for child in module.children():
        weight = getattr(child, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.ndim == 2:
            found = child
    return found


def _norms(block: nn.Module) -> list[nn.Module]:
    return [c for n, c in block.named_children() if "norm" in f"{n} {type(c).__name__}".lower()]


def _candidates(block: nn.Module, main: nn.Module, extra: nn.Module | None) -> list[nn.Module]:
    down = _last_linear(main)
    found = [main, extra, down, *_norms(block)]
    return [m for i, m in enumerate(found) if m is not None and all(m is not f for f in found[:i])]


def _scales(config) -> list[float]:
    scales = [1.0]
    for name in ("residual_multiplier", "residual_scale"):
        value = getattr(config, name, None)
        if isinstance(value, (int, float)) and value not in scales:
            scales.append(float(value))
    return scales


def _logit_maps(config) -> list[LogitMap]:
    """The transforms the config declares first (tiny logits fit a soft-cap and no cap alike), then none."""
    scales = []
    if isinstance(getattr(config, "logit_scale", None), (int, float)):
        scales.append(float(config.logit_scale))
    if isinstance(getattr(config, "logits_scaling", None), (int, float)) and config.logits_scaling:
        scales.append(1.0 / float(config.logits_scaling))
    caps = [float(config.final_logit_softcapping)] if getattr(config, "final_logit_softcapping", None) else []
    return [LogitMap(s, c) for c, s in itertools.product([*caps, None], [*scales, 1.0])]


def unprobed(attentions: list[nn.Module], mlps: list[nn.Module]) -> tuple[Writes, LogitMap]:
    """What a layout says before its probe pass: nothing checked (each block's own modules, no scale)."""
    return Writes(attentions, mlps, 1.0, exact=False, heads_linear=False), LogitMap(problem="Not probed yet.")


def probe(model: PreTrainedModel, layout: Layout, run: Run) -> tuple[Writes, LogitMap]:
    """Run a few tokens through the model (`run`, the gateway's pass) with hooks on the unprobed
    layout's modules, and read off its residual writes and logit map."""
    blocks, attentions, mlps, out_projs, final_norm = (layout.blocks, layout.attentions, layout.mlps,
                                                       layout.out_projs, layout.final_norm)
    tol = tolerance(next(model.parameters()).dtype)
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    head = model.get_output_embeddings()
    cands = [(_candidates(b, a, o), _candidates(b, m, None)) for b, a, m, o in zip(blocks, attentions, mlps, out_projs)]
    tape = _Tape()
    for module in (*blocks, *attentions, *out_projs, head, *(m for pair in cands for c in pair for m in c)):
        tape.watch(module)
    if final_norm is not None:
        tape.watch(final_norm)
    ids = (torch.arange(_PROBE_TOKENS) * 7 + 3) % int(head.weight.shape[0])
    logits = torch.tensor(run(layout, ids[None].to(input_device(model)), tape.installed), dtype=torch.float64)
    writes = _find_writes(tape, blocks, attentions, out_projs, cands, _scales(config), tol)
    arch = layout.summary.architecture
    return writes, _find_logit_map(tape, blocks[-1], final_norm, head, logits, config, tol, arch)


def _find_writes(tape: _Tape, blocks, attentions, out_projs, cands, scales: list[float], tol: float) -> Writes:
    chosen_attn, chosen_mlp, exact, scale = [], [], True, 1.0
    for block, (attn_c, mlp_c) in zip(blocks, cands):
        delta = tape.outputs[id(block)] - tape.inputs[id(block)]
        size = float(tape.outputs[id(block)].abs().max())  # the stream the block's sum was rounded in
        fit = next(((a, m, s) for s in scales for a in attn_c for m in mlp_c
                    if a is not m and tape.outputs.get(id(a)) is not None and tape.outputs.get(id(m)) is not None
                    and _close(s * (tape.outputs[id(a)] + tape.outputs[id(m)]), delta, tol, size)), None)
        if fit is None:
            exact = False
            chosen_attn.append(attn_c[0])
            chosen_mlp.append(mlp_c[0])
        else:
            chosen_attn.append(fit[0])
            chosen_mlp.append(fit[1])
            scale = fit[2]
    heads_linear = exact and all(
        w is o or (tape.outputs.get(id(o)) is not None and _close(tape.outputs[id(o)], tape.outputs[id(w)], tol))
        for w, o in zip(chosen_attn, out_projs))
    return Writes(chosen_attn, chosen_mlp, scale if exact else 1.0, exact, heads_linear)


def _find_logit_map(tape: _Tape, last: nn.Module, norm: nn.Module | None, head: nn.Module, logits: torch.Tensor,
                    config, tol: float, arch: str) -> LogitMap:
    stream = tape.outputs[id(last)]  # (1, T, D) what the last block leaves in the stream
    normed = stream if norm is None else tape.outputs.get(id(norm))
    if normed is None or (norm is not None and not _close(tape.inputs[id(norm)], stream, tol)):
        return LogitMap(problem=f"{arch}'s final norm does not read the last block's output directly.")
    if not _close(tape.inputs[id(head)], normed, tol):
        return LogitMap(problem=f"{arch}'s unembedding does not read the final norm's output directly.")
    raw = tape.outputs[id(head)][0]  # (T, V)
    for candidate in _logit_maps(config):
        if _close(candidate.apply(raw), logits, tol):
            return candidate
    return LogitMap(problem=f"{arch} transforms its logits after the unembedding in a way this app does not know.")
