"""From a stream to logits the model's own way: its final norm, its unembedding and its logit map
(scale, soft-cap; model/engine/probe.py). The logit lens reads every depth through it, and a long
capture computes its logits' statistics and any row it did not keep through it, a chunk of rows at a
time, so (T, V) logits never exist at once.
"""
from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

from ..core.logits import RowStats
from .layout import Layout
from .threads import in_workers

CHUNK_FLOATS = 2**23  # logits one worker holds at once (32 MB in float32: their statistics stay in cache)


class Unembedding:
    """stream rows (n, D) -> logits (n, V) as the model computes them from its last block's output.
    Call under the model's lock (`LanguageModel.modules()`)."""

    def __init__(self, model: nn.Module, layout: Layout) -> None:
        self.norm = layout.final_norm
        self.head: nn.Module = model.get_output_embeddings()  # type: ignore[operator]
        self.logit_map = layout.logit_map
        self.device, self.dtype = self.head.weight.device, self.head.weight.dtype
        self._numpy = _numpy_unembedding(self.head)
        self.vocab = int(layout.summary.vocab_size)  # V: the width of a row of logits

    @property
    def problem(self) -> str | None:
        """Why the logits do not follow from the stream this way (then nothing here is exact)."""
        return self.logit_map.problem

    @property
    def threads(self) -> bool:
        """Whether chunks may run on several threads (numpy's product releases the GIL)."""
        return self._numpy is not None

    def __call__(self, rows: np.ndarray, out: np.ndarray | None = None) -> torch.Tensor:
        """(n, V) logits; `out` (n, V) float32 receives numpy's product when it computes it (no new buffer)."""
        x = torch.tensor(rows).to(device=self.device, dtype=self.dtype)  # (n, D)
        x = self.norm(x) if self.norm is not None else x
        if self._numpy is None:
            raw = self.head(x)
        else:
            weight, bias = self._numpy
            product = np.matmul(x.numpy(), weight, out=out)
            if bias is not None:
                product += bias
            raw = torch.from_numpy(product)
        return self.logit_map.apply(raw)


def _numpy_unembedding(head: nn.Module) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The unembedding as a (D, V) float32 numpy view and its bias, when it is a plain nn.Linear on the
    CPU in float32; else None (torch computes it). numpy's OpenBLAS runs this product at 1.5-1.8x the
    speed of torch's MKL sgemm on the AMD CPUs measured (bench/HISTORY.md, 2026-11-26 fifth pass)."""
    if type(head) is not nn.Linear or head.weight.device.type != "cpu" or head.weight.dtype != torch.float32:
        return None
    bias = None if head.bias is None else head.bias.detach().numpy()
    return head.weight.detach().numpy().T, bias


def stream_stats(unembed: Unembedding, stream: np.ndarray, following: np.ndarray, workers: int) -> RowStats:
    """The statistics of each final-stream row's logits (n, D), `following` (n,) the token that came
    next (-1: none), a chunk of rows at a time."""
    n, V = len(stream), unembed.vocab
    if n == 0:
        return RowStats.of_rows(np.zeros((0, V), np.float32), following)
    step = max(1, CHUNK_FLOATS // V)
    parts: dict[int, RowStats] = {}
    buffers = threading.local()  # one (step, V) buffer per worker, reused: chunk after chunk of fresh
    # buffers grew glibc's per-thread arenas by ~370 MB at 4,096 tokens, while the capture's arrays are held

    def chunk(start: int) -> None:
        rows = stream[start:start + step]
        if not hasattr(buffers, "out"):
            buffers.out = np.empty((step, V), dtype=np.float32)
        logits = unembed(rows, out=buffers.out[:len(rows)] if unembed.threads else None).float()
        parts[start] = RowStats.of_rows(logits.cpu().numpy(), following[start:start + step], scratch=True)

    in_workers(chunk, range(0, n, step), workers if unembed.threads else 1)
    return RowStats.joined([parts[start] for start in sorted(parts)])
