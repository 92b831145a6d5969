"""The logit lens: read the residual stream at every depth (the embedding, then after every block) as
if it were the last one (final norm, then unembedding). Computed in chunks of rows so that the (L+1, T, V) logits never exist
at once; only the top-1 token and the tracked token's probability and rank are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.capture import Capture
from ..core.errors import UnsupportedModelError
from ..engine.language_model import LanguageModel
from ..engine.threads import all_cores, in_workers, long_work_threads
from ..engine.unembed import CHUNK_FLOATS


@dataclass(frozen=True)
class LogitLens:
    """What each layer's stream predicts at each position. Row 0 = the embeddings alone."""

    top_ids: np.ndarray  # (L+1, T) int64 most likely next token read from each layer
    top_probs: np.ndarray  # (L+1, T) float32 its probability
    target_ids: np.ndarray  # (T,) int64 the token tracked per position (default: model's prediction)
    target_probs: np.ndarray  # (L+1, T) float64 probability of the tracked token at each layer (below
    # float32's range when it is over ~100 logits behind the top, as at the embedding: never a false 0)
    target_ranks: np.ndarray  # (L+1, T) int64 its rank at each layer (0 = top-1)
    positions: np.ndarray  # (T,) int64 the prompt positions the columns stand for (all, or a window)

    def __post_init__(self) -> None:
        for name in ("top_ids", "top_probs", "target_ids", "target_probs", "target_ranks", "positions"):
            getattr(self, name).setflags(write=False)

    def column(self, position: int) -> int:
        """The column that holds a prompt position, or a ValueError naming the covered range."""
        found = np.flatnonzero(self.positions == position)
        if found.size == 0:
            raise ValueError(f"position {position} is not in the lens (covers {self.positions[0]}..{self.positions[-1]})")
        return int(found[0])

    def first_top_layer(self, position: int) -> int | None:
        """The first stream row (0 = the embedding, r = after block r-1) from which the tracked token stays top-1."""
        ranks = self.target_ranks[:, self.column(position)]  # (L+1,)
        for row in range(len(ranks)):
            if (ranks[row:] == 0).all():
                return row
        return None


def _chunk_stats(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Top-1 id/prob and the targets' prob/rank for a (N, V) block of logits (overwritten: it is the
    chunk's own scratch). On the CPU the statistics run in numpy: its argmax, counted comparison and
    exp run 5x, 2x and up to 5x faster there than torch's topk(1), bool sum and exp, and the statistics
    took as long as the unembedding itself (bench/HISTORY.md, 2026-11-26 sixth pass)."""
    logits = logits.float()
    target_logit = logits.gather(1, targets[:, None])  # (N, 1)
    if logits.device.type == "cpu":
        scores = logits.numpy()
        top_id = torch.from_numpy(scores.argmax(axis=-1))  # (N,) the first of equal maxima
        top_logit = logits.gather(1, top_id[:, None])[:, 0]
        rank = torch.from_numpy(np.count_nonzero(scores > target_logit.numpy(), axis=-1))  # (N,) tokens ahead
        np.subtract(scores, top_logit.numpy()[:, None], out=scores)
        np.exp(scores, out=scores)  # most of a row underflows: torch's exp slows ~5x there, numpy's does not
        total = torch.from_numpy(scores.sum(axis=-1))  # (N,) sum of exp(logit - top): softmax's divisor
    else:
        top_logit, top_id = (t[:, 0] for t in logits.topk(1, dim=-1))  # (N,), (N,)
        rank = (logits > target_logit).sum(dim=-1, dtype=torch.int32)  # (N,) tokens strictly ahead of the target
        total = logits.sub_(top_logit[:, None]).exp_().sum(dim=-1)
    target_p = torch.exp((target_logit[:, 0] - top_logit).double()) / total.double()  # float64: no underflow to 0
    return top_id, 1.0 / total, target_p, rank


def logit_lens(lm: LanguageModel, cap: Capture, target_ids: np.ndarray | None = None,
               positions: np.ndarray | None = None) -> LogitLens:
    """The lens over every layer at `positions` (default: all); tracks `target_ids` (one per position)
    or the model's own predictions. Cost grows with layers x positions x vocabulary. Each row goes
    through the model's own final norm, unembedding and logit transform (scale, soft-cap), so the
    last row is the model's own prediction; a model whose logits do not follow that way is refused."""
    logit_map = lm.layout.logit_map
    if logit_map.problem:
        raise UnsupportedModelError(f"{logit_map.problem} The logit lens is not shown for this model.")
    cols = np.arange(cap.n_tokens) if positions is None else np.asarray(positions, dtype=np.int64)  # (T,)
    residual = cap.residual[:, cols]  # (L+1, T, D) only the columns asked for
    n_rows, T, D = residual.shape
    V = cap.summary.vocab_size
    targets = lm.logit_stats(cap).top_ids[cols, 0] if target_ids is None else np.asarray(target_ids)
    flat = residual.reshape(n_rows * T, D)  # (R, D) rows in layer-major order
    flat_targets = np.tile(targets, n_rows)  # (R,) the target of every row
    out = {k: np.zeros(n_rows * T, dtype=t) for k, t in
           (("top_id", np.int64), ("top_p", np.float32), ("target_p", np.float64), ("rank", np.int64))}
    unembed = lm.unembedding
    step = max(1, CHUNK_FLOATS // V)

    def chunk(start: int) -> None:
        logits = unembed(flat[start:start + step])  # (n, V)
        tgt = torch.tensor(flat_targets[start:start + step]).to(logits.device)
        for key, value in zip(("top_id", "top_p", "target_p", "rank"), _chunk_stats(logits, tgt)):
            out[key][start:start + len(tgt)] = value.cpu().numpy()

    with lm.modules(), all_cores():
        in_workers(chunk, range(0, n_rows * T, step), long_work_threads() if unembed.threads else 1)
    shape = (n_rows, T)
    return LogitLens(
        top_ids=out["top_id"].reshape(shape),
        top_probs=out["top_p"].reshape(shape),
        target_ids=targets.astype(np.int64),
        target_probs=out["target_p"].reshape(shape),
        target_ranks=out["rank"].reshape(shape),
        positions=cols.astype(np.int64),
    )


def lens_logits(lm: LanguageModel, cap: Capture, position: int, token_ids: list[int]) -> np.ndarray:
    """(L+1, k) the logits of a few tokens read from the stream at every depth at one position (the
    same final norm and unembedding as the lens): contrast mode plots column 0 minus column 1."""
    if not 0 <= position < cap.n_tokens:
        raise ValueError(f"position must be in 0..{cap.n_tokens - 1}, got {position}")
    logit_map = lm.layout.logit_map
    if logit_map.problem:
        raise UnsupportedModelError(f"{logit_map.problem} The logit lens is not shown for this model.")
    with lm.modules():
        logits = lm.unembedding(cap.residual[:, position])  # (L+1, V)
        return logits[:, list(token_ids)].to(device="cpu", dtype=torch.float32).numpy()
