"""Activation patching over a set of prompt pairs (clean, corrupted): per pair the same normalised
metric as the one-pair page (model/analyses/patching.py), 1 = the clean answer back, 0 = as
corrupted, with the pair's own answer and contrast.

The attribution estimate runs across pairs: one padded pass records every clean activation of a
group of pairs, and one padded forward and backward pass of their corrupted prompts differentiates
the sum of their metrics (rows never mix, so each row's gradient is its own pair's). Exact patching
runs pair by pair through the one-pair code, so a set adds nothing to each pair's cost.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ...core.description import ModelSummary
from ...engine.patch_sites import VIEWS, Edit, PatchSite, Site, View, all_sites, n_layers, width
from ..patching import PatchPair, exact, record
from .batches import Part, Row, diffs, groups, logits_of, padded

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ...engine.language_model import LanguageModel

PATCH_CELLS = 256  # rows x padded length per pass: every site's activations and gradients (3 x 4 views x layers
# x cells x width, ~220 MB on the default model) are held, and the backward pass's own
MIN_UNIT = 1e-6  # a pair whose clean and corrupted logit differences are this close has nothing to recover
Progress = Callable[[int, int], None]  # (patched runs done, in all) within one pair


def pairs(rows: Sequence[Row]) -> list[int]:
    """Indices of the rows that have a corrupted prompt (patching needs both)."""
    return [i for i, r in enumerate(rows) if r.corrupted_ids is not None]


def _recorder(sites: list[PatchSite], found: dict[View, np.ndarray],
              grads: dict[View, np.ndarray] | None) -> dict[Site, Edit]:
    """Edits keeping each site's (B, T, width) activation, and with `grads` its gradient too."""
    def keep(site: PatchSite) -> Edit:
        view, layer = site

        def edit(t: torch.Tensor) -> torch.Tensor:
            found[view][:, layer] = t.detach().to(device="cpu", dtype=torch.float32).numpy()
            if grads is not None and t.requires_grad:
                def take(g: torch.Tensor) -> None:
                    grads[view][:, layer] = g.detach().to(device="cpu", dtype=torch.float32).numpy()
                t.register_hook(take)
            return t
        return edit
    return {site: keep(site) for site in sites}


def _buffers(lm: LanguageModel, B: int, T: int) -> dict[View, np.ndarray]:
    """(B, layers, T, width) float32 per view."""
    s = lm.summary
    return {v: np.zeros((B, n_layers(s, v), T, width(s, v)), dtype=np.float32) for v in VIEWS}


def _metric(chosen: Sequence[Row]) -> Callable[[torch.Tensor], torch.Tensor]:
    """logits (B, T, V) -> the sum over rows of logit(answer) - logit(contrast) at each row's last position."""
    last = [len(r.ids) - 1 for r in chosen]
    answers = [r.answer for r in chosen]
    contrasts = [r.contrast for r in chosen]

    def metric(logits: torch.Tensor) -> torch.Tensor:
        index = torch.arange(len(chosen), device=logits.device)
        at = logits[index, torch.tensor(last, device=logits.device)]  # (B, V)
        return (at[index, torch.tensor(answers, device=at.device)] - at[index, torch.tensor(contrasts, device=at.device)]).sum()
    return metric


def attribution_parts(lm: LanguageModel, rows: Sequence[Row]) -> Iterator[Part]:
    """Per pair, one group of pairs at a time: "clean_diff", "corrupted_diff", and where they differ
    the estimate of every view, "attribution_<view>": (layers, T) per position, (L, H) for heads."""
    s = lm.summary
    having = pairs(rows)
    sites = all_sites(s)
    for group in groups([len(rows[i].ids) for i in having], max_cells=PATCH_CELLS):
        chosen = [rows[having[g]] for g in group]
        T = max(len(r.ids) for r in chosen)
        clean, corrupted, grads = _buffers(lm, len(chosen), T), _buffers(lm, len(chosen), T), _buffers(lm, len(chosen), T)
        one = len(chosen) == 1
        lm.forward(padded([r.ids for r in chosen]) if not one else list(chosen[0].ids), sites=_recorder(sites, clean, None),
                   last_only=True)
        bad_ids = [r.corrupted_ids for r in chosen if r.corrupted_ids is not None]
        lm.forward(padded(bad_ids) if not one else list(bad_ids[0]), sites=_recorder(sites, corrupted, grads),
                   objective=_metric(chosen))
        clean_diffs, bad_diffs = (diffs(logits_of(lm, _finals(run, chosen)), chosen) for run in (clean, corrupted))
        part: Part = {}
        for b, (index, row) in enumerate(zip((having[g] for g in group), chosen)):
            part[index] = _pair_values(s, row, b, clean, corrupted, grads, float(clean_diffs[b]), float(bad_diffs[b]))
        yield part


def _finals(run: dict[View, np.ndarray], chosen: Sequence[Row]) -> np.ndarray:
    """(B, D) each row's final stream at its own last position, from a pass's recorded residual views."""
    return np.stack([run["residual"][b, -1, len(row.ids) - 1] for b, row in enumerate(chosen)])


def _pair_values(s: ModelSummary, row: Row, b: int, clean: dict[View, np.ndarray], corrupted: dict[View, np.ndarray],
                 grads: dict[View, np.ndarray], clean_diff: float, bad_diff: float) -> dict[str, np.ndarray]:
    """One pair's differences and, when the runs disagree, its normalised estimate of every view."""
    T = len(row.ids)
    values: dict[str, np.ndarray] = {"clean_diff": np.array(clean_diff), "corrupted_diff": np.array(bad_diff)}
    unit = clean_diff - bad_diff
    if abs(unit) < MIN_UNIT:
        return values
    for view in VIEWS:
        delta = (clean[view][b, :, :T].astype(np.float64) - corrupted[view][b, :, :T]) * grads[view][b, :, :T]
        if view == "heads":  # (L, T, H*hd) -> (L, H): each head over every position
            values[f"attribution_{view}"] = delta.reshape(s.n_layers, T, s.n_heads, s.head_dim).sum(axis=(1, 3)) / unit
        else:
            values[f"attribution_{view}"] = delta.sum(axis=-1) / unit  # (layers, T)
    return values


def exact_parts(lm: LanguageModel, rows: Sequence[Row], view: View, progress: Progress | None = None) -> Iterator[Part]:
    """Exact patching of one view, one pair at a time (the one-pair page's code): "exact_<view>" per
    pair whose runs disagree; the others get their differences only."""
    for index, row, pair, values in _recorded_pairs(lm, rows):
        if "unit" in values:
            values[f"exact_{view}"] = exact(lm, pair, row.answer, row.contrast, view, progress=progress).values
        yield {index: values}


def _recorded_pairs(lm: LanguageModel, rows: Sequence[Row]) -> Iterator[tuple[int, Row, PatchPair, dict[str, np.ndarray]]]:
    """Each pair recorded as the one-pair page records it, with its two differences, and "unit" (clean
    minus corrupted) when the runs disagree enough for a patch to recover anything."""
    for index in pairs(rows):
        row = rows[index]
        assert row.corrupted_ids is not None
        pair = PatchPair(record(lm, list(row.ids)), record(lm, list(row.corrupted_ids)), lm.summary)
        clean, bad = pair.logit_diffs(row.answer, row.contrast)
        values: dict[str, np.ndarray] = {"clean_diff": np.array(clean), "corrupted_diff": np.array(bad)}
        if abs(clean - bad) >= MIN_UNIT:
            values["unit"] = np.array(clean - bad)
        yield index, row, pair, values


def aligned(grids: Sequence[np.ndarray]) -> tuple[np.ndarray, int]:
    """Per-position grids (layers, T_i) of pairs of different lengths as (N, layers, K): the last K
    positions of each, K the shortest length (the answer is read at the last position, so positions
    counted from the end line up). Returns K too, so the chart can label positions from the end."""
    k = min(g.shape[-1] for g in grids)
    return np.stack([g[:, -k:] for g in grids]), k


def _block_edit(clean: np.ndarray, row: int) -> Edit:
    """Write a block's whole clean output (T, width) into one row of a batch, at every position."""
    def edit(t: torch.Tensor) -> torch.Tensor:  # (B, T, width)
        t = t.clone()
        t[row] = torch.as_tensor(clean, device=t.device, dtype=t.dtype)
        return t
    return edit


def exact_block_parts(lm: LanguageModel, rows: Sequence[Row], view: View) -> Iterator[Part]:
    """Exact patching of a whole block's output ("attn_out" or "mlp_out") at every position at once, one
    pair at a time: "exact_block_<view>" (L,) per pair whose runs disagree, every block of a pair in one
    pass (row l patches block l). The per-position estimate summed over positions is its first-order guess."""
    if view not in ("attn_out", "mlp_out"):
        raise ValueError(f"a whole block's output is attn_out or mlp_out, not {view}")
    L = lm.summary.n_layers
    for index, row, pair, values in _recorded_pairs(lm, rows):
        if "unit" in values:
            edits: dict[Site, Edit] = {(view, layer): _block_edit(pair.clean.sites[view][layer], layer) for layer in range(L)}
            logits = np.atleast_2d(lm.forward(list(pair.corrupted.ids), sites=edits, last_only=True, batch=L).logits)
            patched = logits[:, row.answer] - logits[:, row.contrast]
            values[f"exact_block_{view}"] = (patched - values["corrupted_diff"]) / values["unit"]
        yield {index: values}
