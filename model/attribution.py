"""Direct logit attribution: how much the embeddings and each layer's attention and MLP output push
one token's logit up or down at one position.

The final norm is not linear, so we linearise it around the actual final stream x at this position:
its scale s (RMS for RMSNorm, standard deviation for LayerNorm) is held fixed, which makes the logit
a sum over the parts that built x:  logit = sum_c (W_U[tok] * g) . (c - mean(c) [LayerNorm]) / s + bias.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .capture import Capture
from .errors import UnsupportedModelError
from .language_model import LanguageModel

NormKind = Literal["rms", "layer", "none"]
_CHECK_TOLERANCE = 1e-3  # our formula vs the norm module on a probe vector (relative)


@dataclass(frozen=True)
class FinalNorm:
    """The final norm as numbers: y = weight * (x - mean [layer only]) / scale(x) + bias."""

    kind: NormKind
    weight: np.ndarray  # (D,)
    bias: np.ndarray  # (D,) zeros when the norm has none
    eps: float

    def scale(self, x: np.ndarray) -> float:
        """The divisor the norm applies to the stream x (D,): RMS or standard deviation."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "none":
            return 1.0
        if self.kind == "layer":
            x = x - x.mean()
        return float(np.sqrt(np.mean(x * x) + self.eps))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The norm itself, from these numbers (D,) -> (D,)."""
        x = np.asarray(x, dtype=np.float64)
        centred = x - x.mean() if self.kind == "layer" else x
        return self.weight * centred / self.scale(x) + self.bias


@dataclass(frozen=True)
class Attribution:
    """One token's logit at one position, split into the parts of the stream that wrote it."""

    position: int
    token_id: int
    norm_kind: NormKind
    embedding: float  # the token (and position) embeddings' share
    attn: np.ndarray  # (L,) each layer's attention output's share
    mlp: np.ndarray  # (L,) each layer's MLP output's share
    bias: float  # final-norm bias and unembedding bias (constants, not written by any layer)
    rest: float  # part of the final stream that embeddings + attn + MLP outputs do not add up to
    logit: float  # the model's own logit for this token here (minus versus's, in contrast mode)
    scale: float  # the final norm's divisor at this position, held fixed by the linearisation
    versus: int | None = None  # contrast mode: every share is of logit(token_id) - logit(versus)

    @property
    def total(self) -> float:
        """The sum of every share: equals `logit` up to rounding when the blocks are plain residual."""
        return float(self.embedding + self.attn.sum() + self.mlp.sum() + self.bias + self.rest)


def _numpy(t: torch.Tensor | None, size: int) -> np.ndarray:
    if t is None:
        return np.zeros(size, dtype=np.float64)
    return t.detach().to(device="cpu", dtype=torch.float64).numpy()


def _kind(norm: torch.nn.Module | None) -> NormKind:
    if norm is None:
        return "none"
    if isinstance(norm, torch.nn.LayerNorm) or "layernorm" in type(norm).__name__.lower():
        return "layer"
    return "rms"


def final_norm(lm: LanguageModel) -> FinalNorm:
    """Read the final norm's numbers and check them against the module on a probe vector."""
    module, D = lm.layout.final_norm, lm.summary.d_model
    kind = _kind(module)
    weight = _numpy(getattr(module, "weight", None), D) if module is not None else np.ones(D)
    eps = getattr(module, "variance_epsilon", None) or getattr(module, "eps", None) or 0.0
    norm = FinalNorm(kind, weight, _numpy(getattr(module, "bias", None), D), float(eps))
    if module is not None:
        probe = np.random.default_rng(0).normal(size=D).astype(np.float32) * 3 + 0.5  # (D,)
        with lm.lock, torch.inference_mode():
            ref = module(torch.tensor(probe).to(device=lm.model.device, dtype=lm.dtype))
        ref = _numpy(ref, D)
        if np.abs(norm.apply(probe) - ref).max() > _CHECK_TOLERANCE * max(1.0, np.abs(ref).max()):
            raise UnsupportedModelError(
                f"The final norm of {lm.summary.architecture} ({type(module).__name__}) is neither a plain "
                "RMSNorm nor a LayerNorm, so its logit cannot be split layer by layer here."
            )
    return norm


def _share(direction: np.ndarray, part: np.ndarray, norm: FinalNorm, scale: float) -> np.ndarray:
    """direction (D,) . part (..., D), centred for LayerNorm, over the fixed scale -> (...)."""
    return Readout(direction, scale, norm.kind).share(part)


def attribute(cap: Capture, position: int, token_id: int, unembed_row: np.ndarray, unembed_bias: float,
              norm: FinalNorm, versus: int | None = None) -> Attribution:
    """Split cap's logit for token_id at position; unembed_row (D,) is W_U's row for that token (in
    contrast mode the difference of two rows, and the logit is the difference of the two logits)."""
    if not 0 <= position < cap.n_tokens:
        raise ValueError(f"position must be in 0..{cap.n_tokens - 1}, got {position}")
    final = cap.residual[-1, position].astype(np.float64)  # (D,) stream the unembedding reads
    scale = norm.scale(final)
    direction = np.asarray(unembed_row, dtype=np.float64) * norm.weight  # (D,)
    embedding = cap.residual[0, position]  # (D,)
    attn, mlp = cap.attn_out[:, position], cap.mlp_out[:, position]  # (L, D) each
    rest = final - embedding - attn.sum(axis=0, dtype=np.float64) - mlp.sum(axis=0, dtype=np.float64)
    logit = float(cap.logits[position, token_id]) - (float(cap.logits[position, versus]) if versus is not None else 0.0)
    return Attribution(
        position=position,
        token_id=int(token_id),
        norm_kind=norm.kind,
        embedding=float(_share(direction, embedding, norm, scale)),
        attn=_share(direction, attn, norm, scale),
        mlp=_share(direction, mlp, norm, scale),
        bias=float(np.asarray(unembed_row, dtype=np.float64) @ norm.bias + unembed_bias),
        rest=float(_share(direction, rest, norm, scale)),
        logit=logit,
        scale=scale,
        versus=None if versus is None else int(versus),
    )


def _unembedding(lm: LanguageModel, token_id: int, versus: int | None) -> tuple[np.ndarray, float]:
    """W_U's row (D,) and bias for a token, or the difference of two tokens' (contrast mode)."""
    head = lm.model.get_output_embeddings()
    V = lm.summary.vocab_size
    rows, biases = [], []
    for token in (token_id, versus) if versus is not None else (token_id,):
        if not 0 <= token < V:
            raise ValueError(f"token_id must be in 0..{V - 1}, got {token}")
        rows.append(_numpy(head.weight[token], lm.summary.d_model))  # (D,)
        bias = getattr(head, "bias", None)
        biases.append(float(bias[token]) if bias is not None else 0.0)
    if versus is None:
        return rows[0], biases[0]
    return rows[0] - rows[1], biases[0] - biases[1]


def direct_logit_attribution(lm: LanguageModel, cap: Capture, position: int, token_id: int,
                             versus: int | None = None) -> Attribution:
    """The attribution of one token's logit at one position, with the model's own unembedding; with
    `versus`, of logit(token_id) - logit(versus) ("why this token and not that one?")."""
    row, bias = _unembedding(lm, token_id, versus)
    return attribute(cap, position, token_id, row, bias, final_norm(lm), versus)


@dataclass(frozen=True)
class Readout:
    """The direct path from one position's final stream to a logit (or a logit difference), with the
    final norm's divisor held fixed: share(part) is what a vector added to the stream there gives."""

    direction: np.ndarray  # (D,) unembedding row (or difference of rows) times the norm weight
    scale: float  # the final norm's divisor at this position
    norm_kind: NormKind

    def share(self, part: np.ndarray) -> np.ndarray:
        """part (..., D) -> (...) its direct share; the same formula as every bar of `attribute`."""
        part = np.asarray(part, dtype=np.float64)
        if self.norm_kind == "layer":
            part = part - part.mean(axis=-1, keepdims=True)
        return part @ self.direction / self.scale


def readout(lm: LanguageModel, cap: Capture, position: int, token_id: int, versus: int | None = None) -> Readout:
    """The linearised readout of logit(token_id) [- logit(versus)] at a position (for per-neuron and
    per-head shares that must add up to the Attribution page's bars)."""
    if not 0 <= position < cap.n_tokens:
        raise ValueError(f"position must be in 0..{cap.n_tokens - 1}, got {position}")
    norm = final_norm(lm)
    row, _ = _unembedding(lm, token_id, versus)
    return Readout(direction=row * norm.weight, scale=norm.scale(cap.residual[-1, position]), norm_kind=norm.kind)
