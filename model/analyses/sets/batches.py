"""Prompts of different lengths in padded batches through the gateway. Rows are right-padded with
their own last id: in a causal model a real position never sees the padding after it, so each row's
real positions equal its prompt run alone to float rounding, whatever side the tokenizer pads on
(we pad, not the tokenizer), and no attention mask is needed. Each row is read at its own last
position, where the answer is predicted.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from ...core.errors import CaptureError
from ...engine.patch_sites import Edit, Site, reader

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ...engine.language_model import Hooks, LanguageModel

MAX_CELLS = 2048  # rows x padded length in one pass: bounds the pass's temporaries and the sites read
MAX_ROWS = 64


class Row(Protocol):
    """What a run needs of a checked set row (prompts.Item)."""

    ids: tuple[int, ...]
    answer: int
    contrast: int
    corrupted_ids: tuple[int, ...] | None


def groups(lengths: Sequence[int], max_cells: int = MAX_CELLS, max_rows: int = MAX_ROWS) -> list[list[int]]:
    """Indices of prompts in passes: sorted by length (little padding), each pass within max_cells
    and max_rows. A prompt longer than max_cells still gets a pass of its own."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    out: list[list[int]] = []
    for i in order:
        current = out[-1] if out else None
        if current is not None and len(current) < max_rows and (len(current) + 1) * lengths[i] <= max_cells:
            current.append(i)
        else:
            out.append([i])
    return out


def padded(rows: Sequence[Sequence[int]]) -> list[list[int]]:
    """Rows right-padded to the longest with their own last id."""
    longest = max(len(r) for r in rows)
    return [list(r) + [r[-1]] * (longest - len(r)) for r in rows]


@dataclass(frozen=True)
class LastRead:
    """What one padded pass read at each row's last position: site -> (B, width) float32."""

    sites: dict[Site, np.ndarray]


def read_last(lm: LanguageModel, rows: Sequence[Sequence[int]], sites: Iterable[Site], hooks: Hooks | None = None) -> LastRead:
    """One padded pass over rows, keeping each site's activation at each row's own last position
    (`hooks` edit the pass, e.g. a head switched off)."""
    last = torch.tensor([len(r) - 1 for r in rows])
    kept: dict[Site, np.ndarray] = {}

    def keep(site: Site) -> Edit:
        def take(t: torch.Tensor) -> None:  # (B, T, width)
            at = t[torch.arange(t.shape[0], device=t.device), last.to(t.device)]
            kept[site] = at.detach().to(device="cpu", dtype=torch.float32).numpy()
        return reader(take)

    wanted = list(sites)
    lm.forward(padded(rows) if len(rows) > 1 else list(rows[0]), sites={s: keep(s) for s in wanted},
               hooks=hooks, last_only=True)
    missing = [s for s in wanted if s not in kept]
    if missing:
        raise CaptureError(f"This model's pass never reached {missing[0]}: the set view cannot read it.")
    return LastRead({s: np.atleast_2d(kept[s]) for s in wanted})


def logits_of(lm: LanguageModel, final: np.ndarray) -> np.ndarray:
    """(B, V) float32 logits of final-stream rows (B, D), by the model's own final norm and unembedding."""
    with lm.modules():
        return lm.unembedding(final).to(device="cpu", dtype=torch.float32).numpy()


def diffs(logits: np.ndarray, rows: Sequence[Row]) -> np.ndarray:
    """(B,) logit(answer) - logit(contrast) of each row."""
    index = np.arange(len(rows))
    answer = np.array([r.answer for r in rows])
    contrast = np.array([r.contrast for r in rows])
    return (logits[index, answer] - logits[index, contrast]).astype(np.float64)


Part = dict[int, dict[str, np.ndarray]]  # set index -> name -> that prompt's value: what one pass found


def stacked(results: Part, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of every prompt with a value of `name`, in set order: the per-prompt numbers
    behind a mean (a stopped run has some prompts only)."""
    indices = np.array(sorted(i for i, values in results.items() if name in values), dtype=np.int64)
    if not indices.size:
        return indices, np.zeros((0,))
    return indices, np.stack([results[int(i)][name] for i in indices])
