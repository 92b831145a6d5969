"""Direct logit attribution: how much the embeddings and each layer's attention and MLP output push
one token's logit up or down at one position.

The final norm is not linear, so we linearise it around the actual final stream x at this position:
its scale s (RMS for RMSNorm, standard deviation for LayerNorm) is held fixed, which makes the logit
a sum over the parts that built x:  logit = k * (sum_c (W_U[tok] * g) . (c - mean(c) [LayerNorm]) / s + bias),
with k the model's own logit scale (Cohere's logit_scale, 1 / Granite's logits_scaling; 1 for most).
The norm's math (centred or not, its effective gain g and bias) is measured once per loaded model by
the engine (model/engine/final_norm.py); a norm that fits no such formula is refused.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..core.capture import Capture
from ..core.description import Norm
from ..core.errors import UnsupportedModelError
from ..engine.final_norm import FinalNorm
from ..engine.language_model import LanguageModel


@dataclass(frozen=True)
class Attribution:
    """One token's logit at one position, split into the parts of the stream that wrote it."""

    position: int
    token_id: int
    norm_kind: Norm
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


def final_norm(lm: LanguageModel) -> FinalNorm:
    """The final norm's numbers as measured once for this model (kept on it), or an
    UnsupportedModelError where no RMSNorm or LayerNorm formula fits."""
    return lm.norm_fit.numbers()


def _check_exact(lm: LanguageModel) -> float:
    """The model's logit scale, or a refusal naming why the shares could not sum to its logit."""
    arch, layout = lm.summary.architecture, lm.layout
    if not layout.writes.exact:
        raise UnsupportedModelError(
            f"The blocks of {arch} do not add their attention and MLP outputs to the stream as two plain "
            "terms (checked when it loaded), so its logit cannot be split block by block here."
        )
    if layout.logit_map.problem:
        raise UnsupportedModelError(f"{layout.logit_map.problem} Its logit cannot be split block by block here.")
    if layout.logit_map.softcap:
        cap = layout.logit_map.softcap
        raise UnsupportedModelError(
            f"{arch} soft-caps its logits (logit = {cap:g} x tanh(raw / {cap:g})), which is not linear: no set of "
            "shares adds up to the logit, so attribution is not shown for this model."
        )
    return layout.logit_map.scale


def _share(direction: np.ndarray, part: np.ndarray, norm: FinalNorm, scale: float) -> np.ndarray:
    """direction (D,) . part (..., D), centred for LayerNorm, over the fixed scale -> (...)."""
    return Readout(direction, scale, norm.kind).share(part)


def attribute(cap: Capture, position: int, token_id: int, unembed_row: np.ndarray, unembed_bias: float,
              norm: FinalNorm, logits: np.ndarray, versus: int | None = None, logit_scale: float = 1.0) -> Attribution:
    """Split cap's logit for token_id at position; unembed_row (D,) is W_U's row for that token (in
    contrast mode the difference of two rows, and the logit is the difference of the two logits),
    `logits` (V,) the model's own at that position, and logit_scale the factor the model multiplies its
    logits by."""
    final = cap.residual[-1, position].astype(np.float64)  # (D,) stream the unembedding reads
    scale = norm.scale(final)
    direction = np.asarray(unembed_row, dtype=np.float64) * norm.weight * logit_scale  # (D,)
    embedding = cap.residual[0, position]  # (D,)
    attn, mlp = cap.attn_out[:, position], cap.mlp_out[:, position]  # (L, D) each
    rest = final - embedding - attn.sum(axis=0, dtype=np.float64) - mlp.sum(axis=0, dtype=np.float64)
    logit = float(logits[token_id]) - (float(logits[versus]) if versus is not None else 0.0)
    return Attribution(
        position=position,
        token_id=int(token_id),
        norm_kind=norm.kind,
        embedding=float(_share(direction, embedding, norm, scale)),
        attn=_share(direction, attn, norm, scale),
        mlp=_share(direction, mlp, norm, scale),
        bias=float((np.asarray(unembed_row, dtype=np.float64) @ norm.bias + unembed_bias) * logit_scale),
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
        rows.append(head.weight[token].detach().to(device="cpu", dtype=torch.float64).numpy())  # (D,)
        bias = getattr(head, "bias", None)
        biases.append(float(bias[token].detach()) if bias is not None else 0.0)
    if versus is None:
        return rows[0], biases[0]
    return rows[0] - rows[1], biases[0] - biases[1]


def direct_logit_attribution(lm: LanguageModel, cap: Capture, position: int, token_id: int,
                             versus: int | None = None) -> Attribution:
    """The attribution of one token's logit at one position, with the model's own unembedding; with
    `versus`, of logit(token_id) - logit(versus) ("why this token and not that one?")."""
    scale = _check_exact(lm)  # refused where the shares could not add up to the model's logit
    row, bias = _unembedding(lm, token_id, versus)
    if not 0 <= position < cap.n_tokens:
        raise ValueError(f"position must be in 0..{cap.n_tokens - 1}, got {position}")
    logits = lm.logits_at(cap, position)
    return attribute(cap, position, token_id, row, bias, final_norm(lm), logits, versus, scale)


@dataclass(frozen=True)
class Readout:
    """The direct path from one position's final stream to a logit (or a logit difference), with the
    final norm's divisor held fixed: share(part) is what a vector added to the stream there gives."""

    direction: np.ndarray  # (D,) unembedding row (or difference of rows) times the norm weight
    scale: float  # the final norm's divisor at this position
    norm_kind: Norm

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
    logit_scale = _check_exact(lm)
    norm = final_norm(lm)
    row, _ = _unembedding(lm, token_id, versus)
    return Readout(direction=row * norm.weight * logit_scale, scale=norm.scale(cap.residual[-1, position]),
                   norm_kind=norm.kind)


def readouts(lm: LanguageModel, finals: np.ndarray, tokens: Sequence[int], versus: Sequence[int]) -> list[Readout]:
    """The linearised readout of logit(token) - logit(versus) at each final-stream row (n, D): a prompt
    set's last positions, one answer and contrast each."""
    logit_scale = _check_exact(lm)
    norm = final_norm(lm)
    return [Readout(direction=_unembedding(lm, int(t), int(v))[0] * norm.weight * logit_scale, scale=norm.scale(f),
                    norm_kind=norm.kind) for f, t, v in zip(finals, tokens, versus, strict=True)]
