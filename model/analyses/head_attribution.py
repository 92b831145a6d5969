"""Direct logit attribution per attention head. The output projection reads every head's output
side by side (H slices of head_dim), so head h's part of the block's attention output is
W_O[:, slice h] @ z_h; the heads' parts plus the projection's bias are exactly the attention bar.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..core.capture import Capture
from ..core.errors import CaptureError, UnsupportedModelError
from ..engine.language_model import LanguageModel
from ..engine.linear import bias, is_projection, matrix
from ..engine.patch_sites import Edit, Site, reader
from ..engine.probe import tolerance
from .attribution import Readout
from .head_values import capture_values, pattern_times_values


@dataclass(frozen=True)
class HeadAttribution:
    """Every head's direct share of one logit (or logit difference) at one position."""

    position: int
    heads: np.ndarray  # (L, H) each head's share
    bias: np.ndarray  # (L,) each output projection's bias share (0 without a bias)

    @property
    def layers(self) -> np.ndarray:
        """(L,) heads plus bias per block: equals the Attribution page's attention bars."""
        return self.heads.sum(axis=1) + self.bias

    def top(self, n: int) -> list[tuple[int, int, float]]:
        """The n heads with the largest share either way: (block, head, share), strongest first."""
        flat = np.argsort(-np.abs(self.heads), axis=None)[:n]
        H = self.heads.shape[1]
        return [(int(i // H), int(i % H), float(self.heads.flat[i])) for i in flat]


def _keep_at(target: np.ndarray, layer: int, position: int) -> Edit:
    """Read the "heads" site (all heads' outputs side by side) of one block at one position."""
    def keep(t: torch.Tensor) -> None:
        target[layer] = t[0, position].detach().to(device="cpu", dtype=torch.float32).numpy()
    return reader(keep)


def head_outputs(lm: LanguageModel, cap: Capture, position: int) -> np.ndarray:
    """(L, H, head_dim) each head's output z_h at one position: read from the capture where its pattern
    and values rebuild every block's attention output there, else from one pass through the gateway."""
    s = lm.summary
    if not 0 <= position < cap.n_tokens:
        raise ValueError(f"position must be in 0..{cap.n_tokens - 1}, got {position}")
    kept = _from_capture(lm, cap, position)
    if kept is not None:
        return kept
    z = np.full((s.n_layers, s.n_heads * s.head_dim), np.nan, dtype=np.float32)
    edits: dict[Site, Edit] = {("heads", layer): _keep_at(z, layer, position) for layer in range(s.n_layers)}
    lm.forward(cap.token_ids.tolist(), sites=edits, last_only=True)
    if np.isnan(z).any():
        raise CaptureError("The output projections were not all called: heads cannot be separated.")
    return z.reshape(s.n_layers, s.n_heads, s.head_dim)


def _from_capture(lm: LanguageModel, cap: Capture, position: int) -> np.ndarray | None:
    """(L, H, head_dim) the pattern row at `position` times the values, when every block's output
    projection turns them into the attention output the capture holds; None otherwise."""
    values = capture_values(lm, cap)
    if values is None or not all(is_projection(proj) for proj in lm.layout.out_projs):
        return None
    tol = tolerance(getattr(torch, cap.dtype, torch.float32))
    z = []
    for layer, proj in enumerate(lm.layout.out_projs):
        pattern = torch.from_numpy(cap.attention.layer_rows(layer, position, position + 1))  # (H, 1, T), this row only
        heads = pattern_times_values(pattern, values[layer])[:, 0].numpy()  # (H, hd)
        rebuilt = matrix(proj) @ heads.reshape(-1).astype(np.float64) + bias(proj)
        target = cap.attn_out[layer, position]
        if np.abs(rebuilt - target).max() > tol * max(1.0, float(np.abs(target).max())):
            return None  # e.g. a gate or a norm between the heads and the projection: record them
        z.append(heads)
    return np.stack(z).astype(np.float32)


def _check_split(lm: LanguageModel) -> None:
    """Refuse, saying why, a model whose attention output is no sum of one write per head."""
    if not lm.layout.writes.heads_linear:
        raise UnsupportedModelError(
            f"{lm.summary.architecture} normalises each attention output before adding it to the stream, so "
            "the output cannot be split into one share per head here."
        )


def head_attribution(lm: LanguageModel, z: np.ndarray, position: int, read: Readout) -> HeadAttribution:
    """Each head's share: read(W_O[:, slice h] @ z_h) for z (L, H, head_dim) from `head_outputs`."""
    _check_split(lm)
    writes = lm.layout.writes
    L, H, hd = z.shape
    heads = np.zeros((L, H))
    biases = np.zeros(L)
    for layer, proj in enumerate(lm.layout.out_projs):
        w = matrix(proj).reshape(-1, H, hd)  # (D, H, hd) the columns of each head
        parts = np.einsum("dhk,hk->hd", w, z[layer].astype(np.float64))  # (H, D) each head's write
        heads[layer] = read.share(parts) * writes.scale  # the block's residual multiplier (Granite), else 1
        biases[layer] = read.share(bias(proj)) * writes.scale
    return HeadAttribution(position=position, heads=heads, bias=biases)


def head_shares(lm: LanguageModel, z: np.ndarray, reads: Sequence[Readout]) -> np.ndarray:
    """(B, L, H) each head's share for B positions at once (a prompt set's last positions): z (B, L, H,
    head_dim), one readout each. The same sum as head_attribution, each W_O read once per block."""
    _check_split(lm)
    B, L, H, hd = z.shape
    out = np.zeros((B, L, H))
    for layer, proj in enumerate(lm.layout.out_projs):
        w = matrix(proj).reshape(-1, H, hd)  # (D, H, hd)
        parts = np.einsum("dhk,bhk->bhd", w, z[:, layer].astype(np.float64))  # (B, H, D) each head's write
        out[:, layer] = np.reshape([read.share(p) for read, p in zip(reads, parts, strict=True)], (B, H))
    return out * lm.layout.writes.scale
