"""Activation patching: run the corrupted prompt with one activation taken from the clean prompt's
run and see how much of the clean answer comes back. The metric is logit(A) - logit(B) at the last
position, normalised so the clean run is 1 and the corrupted run 0.

Exact patching runs one patched pass per cell, many per forward (the corrupted ids repeated over the
batch, each row patched differently). Two facts make it cheaper without changing any number: a patch
whose clean values equal the corrupted ones changes nothing (exactly 0, not run), and a patch at
position p cannot change earlier positions, so its run starts at p from the corrupted run's keys and
values. Attribution patching is the first-order estimate: (clean - corrupted) . gradient of the
metric on the corrupted run, from one forward and one backward pass.

One block's heads can also be patched one position at a time (the "head_positions" grid, heads x
positions): the same patch as the heads view, restricted to one position, so its estimate is the
heads view's estimate split over positions, and patching all of a head's positions at once is
exactly the heads view's cell.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from ..core.capture import KV
from ..core.description import ModelSummary
from ..core.errors import PromptError
from ..core.tokens import readable_tokens
from ..engine.patch_sites import VIEWS, Edit, PatchSite, Site, View, all_sites, n_layers, width

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ..engine.language_model import LanguageModel

MAX_TOKENS = 64  # exact patching costs ~ layers x tokens^2 token-passes: the page keeps prompts short
TOKENS_PER_PASS = 512  # batch rows x computed positions in one forward (measured: bench/patching.py)
Progress = Callable[[int, int], None]  # (patched runs done, patched runs in all)
GridView = Literal["residual", "attn_out", "mlp_out", "heads", "head_positions"]
Cell = tuple[int, int]  # (row, column) of a grid: (layer, position or head), or (head, position)


@dataclass(frozen=True)
class Recording:
    """One prompt's pass with every patchable activation kept (row 0 of the batch)."""

    ids: tuple[int, ...]
    tokens: list[str]
    sites: dict[View, np.ndarray]  # residual (L+1, T, D), attn_out / mlp_out (L, T, D), heads (L, T, H*hd)
    last_logits: np.ndarray  # (V,) float32
    kv: KV | None  # keys and values of every position, for runs that start later


@dataclass(frozen=True)
class PatchPair:
    """A clean and a corrupted prompt of equal token length, each recorded once."""

    clean: Recording
    corrupted: Recording
    summary: ModelSummary

    @property
    def n_tokens(self) -> int:
        return len(self.clean.ids)

    def logit_diffs(self, a: int, b: int) -> tuple[float, float]:
        """logit(a) - logit(b) at the last position of the clean and of the corrupted run."""
        clean, corrupted = (float(r.last_logits[a]) - float(r.last_logits[b]) for r in (self.clean, self.corrupted))
        return clean, corrupted


@dataclass(frozen=True)
class PatchGrid:
    """One view's result: the normalised metric per cell (1 = clean answer back, 0 = as corrupted)."""

    view: GridView
    method: str  # "exact" or "attribution"
    values: np.ndarray  # (layers, T) for residual / attn_out / mlp_out, (L, H) for heads, (H, T) head_positions
    ran: np.ndarray  # (same) bool: cells whose patch changes something; the others are exactly 0
    seconds: float
    layer: int | None = None  # head_positions: the block
    by_position: np.ndarray | None = None  # attribution of heads: (L, H, T), each cell split over positions


def record(lm: LanguageModel, ids: list[int]) -> Recording:
    """One no-grad pass keeping every site's activation (float32 numpy) and the keys and values."""
    cfg = lm.summary
    sites = {v: np.zeros((n_layers(cfg, v), len(ids), width(cfg, v)), dtype=np.float32) for v in VIEWS}

    def keep(site: PatchSite) -> Edit:
        def edit(t: torch.Tensor) -> torch.Tensor:
            sites[site[0]][site[1]] = t[0].detach().to(device="cpu", dtype=torch.float32).numpy()
            return t
        return edit

    edits: dict[Site, Edit] = {site: keep(site) for site in all_sites(cfg)}
    result = lm.forward(ids, sites=edits, last_only=True, keep_kv=True)
    return Recording(tuple(ids), readable_tokens(lm.tokenizer, ids), sites, result.logits, result.kv)


def record_pair(lm: LanguageModel, clean: str, corrupted: str, max_tokens: int = MAX_TOKENS) -> PatchPair:
    """Both prompts recorded; a PromptError when their token counts differ (cells pair positions)."""
    why = "this page's limit: exact patching reruns the pair once per cell, and cells grow with the tokens"
    clean_ids, corrupted_ids = (lm.encode(text, max_tokens, limit_name=why) for text in (clean, corrupted))
    if len(clean_ids) != len(corrupted_ids):
        raise PromptError(
            f"The clean prompt is {len(clean_ids)} tokens long and the corrupted one {len(corrupted_ids)}: "
            "patching puts position i of one into position i of the other, so both need the same number "
            "of tokens. Swap words for words of the same token length (compare the two token strips)."
        )
    return PatchPair(record(lm, clean_ids), record(lm, corrupted_ids), lm.summary)


def _baseline(pair: PatchPair, a: int, b: int) -> tuple[float, float]:
    """(corrupted logit difference, clean minus corrupted): the metric's zero and unit."""
    clean, corrupted = pair.logit_diffs(a, b)
    if abs(clean - corrupted) < 1e-6:
        raise PromptError(
            "Both prompts give the same logit difference between the two answers, so there is nothing for "
            "a patch to recover. Choose prompts or answers on which the two runs disagree."
        )
    return corrupted, clean - corrupted


def needed(pair: PatchPair, view: View) -> np.ndarray:
    """(layers, T) or (L, H) bool: the cells whose patch can move the metric. A patch equal to the
    corrupted values changes nothing; the last row touches only its own position, read only at the end."""
    cfg, T = pair.summary, pair.n_tokens
    differs = pair.clean.sites[view] != pair.corrupted.sites[view]  # (layers, T, width)
    if view == "heads":
        return differs.reshape(cfg.n_layers, T, cfg.n_heads, cfg.head_dim).any(axis=(1, 3))
    cells = differs.any(axis=-1)
    cells[-1, : T - 1] = False
    return cells


def _starts(pair: PatchPair, view: View, cells: np.ndarray) -> dict[tuple[int, int], int]:
    """The first position each needed cell's run must compute (earlier ones come from the keys and values)."""
    if pair.corrupted.kv is None:  # keys and values not reusable (e.g. a sliding window): full runs
        return {(int(layer), int(i)): 0 for layer, i in zip(*np.nonzero(cells))}
    if view != "heads":
        return {(int(layer), int(p)): int(p) for layer, p in zip(*np.nonzero(cells))}
    cfg = pair.summary
    differs = pair.clean.sites[view] != pair.corrupted.sites[view]
    by_head = differs.reshape(cfg.n_layers, pair.n_tokens, cfg.n_heads, cfg.head_dim).any(axis=3)  # (L, T, H)
    return {(int(layer), int(h)): int(np.argmax(by_head[layer, :, h])) for layer, h in zip(*np.nonzero(cells))}


def _patch_edit(view: View, clean: np.ndarray, rows: list[tuple[int, int]], start: int, head_dim: int) -> Edit:
    """Write the clean activation into each (batch row, position or head) of a run starting at `start`."""
    def edit(t: torch.Tensor) -> torch.Tensor:  # (B, T - start, width)
        source = torch.as_tensor(clean, device=t.device, dtype=t.dtype)  # (T, width)
        t = t.clone()
        for row, index in rows:
            if view == "heads":
                cols = slice(index * head_dim, (index + 1) * head_dim)
                t[row, :, cols] = source[start:, cols]
            else:
                t[row, index - start] = source[index]
        return t
    return edit


def _forward_diffs(lm: LanguageModel, pair: PatchPair, edits: dict[Site, Edit], start: int, n: int, a: int,
                   b: int) -> np.ndarray:
    """Logit differences (n,) of n patched copies of the corrupted run in one forward, from `start`
    on (earlier positions' keys and values come from the corrupted run)."""
    kv = pair.corrupted.kv  # None only where every run starts at 0
    past = tuple((k[:, :start], v[:, :start]) for k, v in kv) if start and kv is not None else None
    result = lm.forward(list(pair.corrupted.ids[start:]), sites=edits, last_only=True, past=past, batch=n)
    logits = np.atleast_2d(result.logits)  # (n, V)
    return logits[:, a] - logits[:, b]


def _run_batch(lm: LanguageModel, pair: PatchPair, view: View, cells: list[tuple[int, int]], start: int,
               a: int, b: int) -> np.ndarray:
    """Logit differences (n,) of n patched runs in one forward, all starting at `start`."""
    by_layer: dict[int, list[tuple[int, int]]] = {}
    for row, (layer, index) in enumerate(cells):
        by_layer.setdefault(layer, []).append((row, index))
    edits: dict[Site, Edit] = {(view, layer): _patch_edit(view, pair.clean.sites[view][layer], rows, start, pair.summary.head_dim)
             for layer, rows in by_layer.items()}
    return _forward_diffs(lm, pair, edits, start, len(cells), a, b)


def _sweep(pair: PatchPair, a: int, b: int, starts: dict[Cell, int], run: Callable[[list[Cell], int], np.ndarray],
           values: np.ndarray, progress: Progress | None, tokens_per_pass: int) -> None:
    """Fill `values` with the normalised metric of every cell's patched run, batched by start:
    run(cells, start) gives their logit differences. The page's Cancel needs no hook here: its click
    reruns the script, which stops this one at its next progress call."""
    zero, unit = _baseline(pair, a, b)
    groups: dict[int, list[Cell]] = {}
    for cell, start in starts.items():
        groups.setdefault(start, []).append(cell)
    done, total = 0, len(starts)
    for start, group in sorted(groups.items()):
        size = max(1, tokens_per_pass // (pair.n_tokens - start))
        for i in range(0, len(group), size):
            chunk = group[i:i + size]
            for cell, diff in zip(chunk, run(chunk, start)):
                values[cell] = (diff - zero) / unit
            done += len(chunk)
            if progress is not None:
                progress(done, total)


def exact(lm: LanguageModel, pair: PatchPair, a: int, b: int, view: View, *, progress: Progress | None = None,
          tokens_per_pass: int = TOKENS_PER_PASS) -> PatchGrid:
    """Exact patching of every cell of a view, batched. tokens_per_pass=1 runs one patch per forward."""
    began = time.perf_counter()
    _baseline(pair, a, b)
    cells = needed(pair, view)
    values = np.zeros(cells.shape, dtype=np.float64)
    _sweep(pair, a, b, _starts(pair, view, cells), lambda chunk, start: _run_batch(lm, pair, view, chunk, start, a, b),
           values, progress, tokens_per_pass)
    return PatchGrid(view, "exact", values, cells, time.perf_counter() - began)


def _head_differs(pair: PatchPair, layer: int) -> np.ndarray:
    """(H, T) bool: where one head's output at one position differs between the two runs."""
    cfg, T = pair.summary, pair.n_tokens
    differs = pair.clean.sites["heads"][layer] != pair.corrupted.sites["heads"][layer]  # (T, H*hd)
    return differs.reshape(T, cfg.n_heads, cfg.head_dim).any(axis=2).T


def needed_head_positions(pair: PatchPair, layer: int) -> np.ndarray:
    """(H, T) bool: the cells of one block's heads x positions whose patch can move the metric. The
    last block's outputs before the last position reach no later attention, so never the answer."""
    cells = _head_differs(pair, layer)
    if layer == pair.summary.n_layers - 1:
        cells[:, : pair.n_tokens - 1] = False
    return cells


def _head_positions_edit(clean: np.ndarray, rows: list[tuple[int, int, tuple[int, ...]]], start: int,
                         head_dim: int) -> Edit:
    """Write the clean output of each (batch row, head) at its positions (all >= start) into a run
    starting at `start`; the head's other positions keep the corrupted values."""
    def edit(t: torch.Tensor) -> torch.Tensor:  # (B, T - start, n_heads * head_dim)
        source = torch.as_tensor(clean, device=t.device, dtype=t.dtype)  # (T, width)
        t = t.clone()
        for row, head, positions in rows:
            cols = slice(head * head_dim, (head + 1) * head_dim)
            t[row, [p - start for p in positions], cols] = source[list(positions), cols]
        return t
    return edit


def _run_head_positions(lm: LanguageModel, pair: PatchPair, layer: int, cells: list[tuple[int, tuple[int, ...]]],
                        start: int, a: int, b: int) -> np.ndarray:
    """Logit differences (n,) of n runs, each patching one head of `layer` at some positions (>= start)."""
    rows = [(row, head, positions) for row, (head, positions) in enumerate(cells)]
    edits: dict[Site, Edit] = {("heads", layer): _head_positions_edit(pair.clean.sites["heads"][layer], rows, start,
                                                                      pair.summary.head_dim)}
    return _forward_diffs(lm, pair, edits, start, len(cells), a, b)


def exact_head_positions(lm: LanguageModel, pair: PatchPair, a: int, b: int, layer: int, *,
                         progress: Progress | None = None, tokens_per_pass: int = TOKENS_PER_PASS) -> PatchGrid:
    """Exact patching of one block's heads, one position at a time: cell (h, p) puts the clean
    output of head h at position p alone into the corrupted run. Batched like exact."""
    began = time.perf_counter()
    _baseline(pair, a, b)
    cells = needed_head_positions(pair, layer)
    values = np.zeros(cells.shape, dtype=np.float64)  # (H, T)
    reuse = pair.corrupted.kv is not None  # else every run is full length
    starts = {(int(h), int(p)): int(p) if reuse else 0 for h, p in zip(*np.nonzero(cells))}

    def run(chunk: list[Cell], start: int) -> np.ndarray:
        return _run_head_positions(lm, pair, layer, [(h, (p,)) for h, p in chunk], start, a, b)

    _sweep(pair, a, b, starts, run, values, progress, tokens_per_pass)
    return PatchGrid("head_positions", "exact", values, cells, time.perf_counter() - began, layer)


def patch_head(lm: LanguageModel, pair: PatchPair, a: int, b: int, layer: int, head: int,
               positions: list[int]) -> float:
    """The normalised metric of one run patching head `head` of `layer` at the given positions
    together (all of them = the heads view's cell); exactly 0 when none of them differs."""
    zero, unit = _baseline(pair, a, b)
    differs = _head_differs(pair, layer)[head]  # (T,)
    moved = sorted({int(p) for p in positions if differs[p]})
    if not moved:
        return 0.0
    start = moved[0] if pair.corrupted.kv is not None else 0
    diff = _run_head_positions(lm, pair, layer, [(head, tuple(moved))], start, a, b)[0]
    return float((diff - zero) / unit)


def attribution(lm: LanguageModel, pair: PatchPair, a: int, b: int) -> dict[View, PatchGrid]:
    """Attribution patching of every view from one forward and one backward pass of the corrupted
    prompt: (clean - corrupted) . d metric / d activation, normalised like the exact result."""
    began = time.perf_counter()
    _, unit = _baseline(pair, a, b)  # the estimate is of the change from the corrupted run: no offset
    cfg = pair.summary
    grads = {v: np.zeros_like(pair.corrupted.sites[v]) for v in VIEWS}

    def watch(site: PatchSite) -> Edit:
        def keep(g: torch.Tensor) -> None:
            grads[site[0]][site[1]] = g[0].detach().to(device="cpu", dtype=torch.float32).numpy()

        def edit(t: torch.Tensor) -> torch.Tensor:
            t.register_hook(keep)
            return t
        return edit

    def metric(logits: torch.Tensor) -> torch.Tensor:  # (1, T, V) -> scalar
        return logits[0, -1, a] - logits[0, -1, b]

    edits: dict[Site, Edit] = {site: watch(site) for site in all_sites(cfg)}
    lm.forward(list(pair.corrupted.ids), sites=edits, objective=metric)
    seconds = time.perf_counter() - began
    grids = {}
    for view in VIEWS:
        delta = (pair.clean.sites[view].astype(np.float64) - pair.corrupted.sites[view]) * grads[view]
        split = None
        if view == "heads":  # (L, T, H*hd) -> (L, H, T) per position -> (L, H): summed over every position
            split = delta.reshape(cfg.n_layers, pair.n_tokens, cfg.n_heads, cfg.head_dim).sum(axis=3)
            split = split.transpose(0, 2, 1) / unit
            per_cell = split.sum(axis=2)
        else:
            per_cell = delta.sum(axis=-1) / unit  # (layers, T)
        grids[view] = PatchGrid(view, "attribution", per_cell, needed(pair, view), seconds, by_position=split)
    return grids


def head_positions_estimate(pair: PatchPair, heads: PatchGrid, layer: int) -> PatchGrid:
    """The attribution estimate of one block's heads x positions, read from the heads view's estimate
    (`heads`, from attribution): its cells split over positions, so each row sums to the heads cell."""
    if heads.by_position is None:
        raise ValueError("the heads estimate was made without its per-position split")
    return PatchGrid("head_positions", "attribution", heads.by_position[layer], needed_head_positions(pair, layer),
                     heads.seconds, layer)


def correlation(exact_grid: PatchGrid, estimate: PatchGrid) -> float | None:
    """Pearson correlation over the cells exact patching ran (the others are 0 in both); None when
    fewer than three cells ran or one side is constant."""
    mask = exact_grid.ran
    x, y = exact_grid.values[mask], estimate.values[mask]
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def top_cells(grid: PatchGrid, n: int = 5) -> list[tuple[int, int, float]]:
    """The n cells with the largest effect (by size): (layer, position or head, value)."""
    order = np.argsort(-np.abs(grid.values), axis=None)[:n]
    return [(int(layer), int(i), float(grid.values[layer, i])) for layer, i in zip(*np.unravel_index(order, grid.values.shape))]


def answer_id(lm: LanguageModel, text: str) -> int | None:
    """The token id of an answer typed as text (" Mary"), or None unless it is exactly one token."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    return int(ids[0]) if len(ids) == 1 else None


def prompt_tokens(lm: LanguageModel, text: str, max_tokens: int = MAX_TOKENS) -> list[str]:
    """A prompt's tokens as shown, for any text (also one that cannot be patched): at most max_tokens."""
    ids = lm.tokenizer(text, add_special_tokens=True)["input_ids"][:max_tokens] if text else []
    return readable_tokens(lm.tokenizer, ids)


def top_tokens(recording: Recording, k: int = 8) -> list[int]:
    """The k most likely next tokens after a recorded prompt, most likely first."""
    return [int(i) for i in np.argsort(-recording.last_logits)[:k]]
