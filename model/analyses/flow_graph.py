"""The information-flow graph as plain numpy (every edge weight, model/analyses/flow.py computes them), and
its pruning: keep the edges whose weight exceeds a threshold and that lead, backwards, to the state
leaving the last block at one position; the rest fed that prediction through no important route.
Plain numpy (no torch): viz draws what this returns.

Levels number the residual states from the embedding on: level 2l is the stream entering block l
(level 0 is the embedding), 2l + 1 the stream after block l's attention, 2l + 2 the stream leaving
block l.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Kind = Literal["attention", "residual", "mlp"]
DEFAULT_THRESHOLD = 0.04  # Ferrando & Voita's and LLM-TT's usual choice
WeighMid = Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(block, positions) -> the (n, T, H) head shares and the (n,) residual shares into those mid states."""
ReadInto = Callable[[int, int, np.ndarray], np.ndarray]
"""(block, position, direction (D,)) -> (T, H) each source's piece via each head into that mid state,
dotted with the direction (0 for a later source)."""


@dataclass(frozen=True)
class FlowGraph:
    """Every edge weight of the full graph (before any threshold), float32.

    The MLP and residual edges of each block come whole: they cost O(T·D). The edges into the mid
    state at position i cost O(i·H·D) each, O(T²·H·D) in all, and a pruning walks through a few
    percent of them (4% at 256 tokens and the default threshold), so `weigh` computes a mid state's
    edges the first time a pruning asks for them and the graph keeps them. The arrays that keep them
    are sized for every edge, so a cache that bounds memory counts the graph at its full size."""

    tokens: list[str]
    mlp: np.ndarray  # (L, T) share of the MLP's output in the stream leaving block l
    mlp_residual: np.ndarray  # (L, T) share of the mid state in the stream leaving block l
    n_heads: int
    weigh: WeighMid
    read: ReadInto | None = None  # the pieces read through a direction (read_edges); None: a graph of shares only
    _attention: np.ndarray = field(init=False, repr=False)  # (L, T, T, H) source j via head h into mid i
    _attn_residual: np.ndarray = field(init=False, repr=False)  # (L, T) the entering stream into mid i
    _weighed: np.ndarray = field(init=False, repr=False)  # (L, T) which mid states are filled in
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        L, T = self.mlp.shape
        object.__setattr__(self, "_attention", np.zeros((L, T, T, self.n_heads), dtype=np.float32))
        object.__setattr__(self, "_attn_residual", np.zeros((L, T), dtype=np.float32))
        object.__setattr__(self, "_weighed", np.zeros((L, T), dtype=bool))
        for name in ("mlp", "mlp_residual"):
            getattr(self, name).setflags(write=False)

    @property
    def n_layers(self) -> int:
        return int(self.mlp.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.mlp.shape[1])

    def into_mid(self, layer: int, positions: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, T, H) each head's share of each source and (n,) the residual's share in the mid state
        of block `layer` at `positions` (0 for a later source: it is no part of the sum)."""
        rows = np.asarray(positions, dtype=np.int64)
        with self._lock:  # sessions share one graph: each mid state is weighed once
            missing = rows[~self._weighed[layer, rows]]
            if missing.size:
                heads, residual = self.weigh(layer, missing)
                self._attention[layer, missing] = heads
                self._attn_residual[layer, missing] = residual
                self._weighed[layer, missing] = True
            return self._attention[layer, rows], self._attn_residual[layer, rows]

    def weights_into(self, position: int) -> np.ndarray:
        """(L, T) the weight of every attention edge into the mid states at `position` (its heads'
        shares summed, as a pruning weighs it), kept by a pruning or not."""
        return np.stack([self.into_mid(layer, [position])[0][0].sum(-1) for layer in range(self.n_layers)])


@dataclass(frozen=True)
class Edge:
    """One kept edge: from (source level, source position) to (target level, target position)."""

    kind: Kind
    block: int
    source: tuple[int, int]
    target: tuple[int, int]
    weight: float  # share in the target state (attention: summed over heads)
    heads: tuple[float, ...] = ()  # attention only: each head's share, by head index


@dataclass(frozen=True)
class FlowPaths:
    """The pruned graph for one prediction position."""

    tokens: list[str]
    n_layers: int
    position: int
    threshold: float
    edges: list[Edge]

    @property
    def nodes(self) -> set[tuple[int, int]]:
        """Every (level, position) an edge touches, plus the prediction's own state."""
        found = {(2 * self.n_layers, self.position)}
        for e in self.edges:
            found.update((e.source, e.target))
        return found


def flow_paths(graph: FlowGraph, position: int, threshold: float = DEFAULT_THRESHOLD,
               progress: Callable[[float], None] | None = None) -> FlowPaths:
    """The edges above `threshold` on some route down from the last block's output at `position`.
    An attention edge (position j -> i in block l) weighs the sum of its heads' shares, as in LLM-TT.
    Only the mid states on such a route are weighed; `progress(fraction)` hears after each block."""
    L, T = graph.n_layers, graph.n_tokens
    if not 0 <= position < T:
        raise ValueError(f"position must be in 0..{T - 1}, got {position}")
    live = np.zeros(T, dtype=bool)  # positions alive at the current level
    live[position] = True
    edges: list[Edge] = []
    for layer in range(L - 1, -1, -1):
        top, mid, bottom = 2 * layer + 2, 2 * layer + 1, 2 * layer
        alive_mid = np.zeros(T, dtype=bool)
        for i in np.flatnonzero(live):
            weighed: tuple[tuple[Kind, float], ...] = (("mlp", graph.mlp[layer, i]), ("residual", graph.mlp_residual[layer, i]))
            for kind, w in weighed:
                if w > threshold:
                    edges.append(Edge(kind, layer, (mid, int(i)), (top, int(i)), float(w)))
                    alive_mid[i] = True
        alive_bottom = np.zeros(T, dtype=bool)
        mids = np.flatnonzero(alive_mid)
        heads, residual = graph.into_mid(layer, mids)
        pair = heads.sum(-1)  # (n, T) summed over heads
        for k, i in enumerate(mids):
            if residual[k] > threshold:
                edges.append(Edge("residual", layer, (bottom, int(i)), (mid, int(i)), float(residual[k])))
                alive_bottom[i] = True
            for j in np.flatnonzero(pair[k, : i + 1] > threshold):
                weights = tuple(float(x) for x in heads[k, j])
                edges.append(Edge("attention", layer, (bottom, int(j)), (mid, int(i)), float(pair[k, j]), weights))
                alive_bottom[j] = True
        live = alive_bottom
        if progress is not None:
            progress((L - layer) / L)
    return FlowPaths(list(graph.tokens), L, position, threshold, edges)


@dataclass(frozen=True)
class EdgeReading:
    """The attention edges into one position's mid states, read through a direction: for logit(A) −
    logit(B), W_U[A] − W_U[B] through the final norm held fixed (model/flow.metric_direction). The
    shares say how much a piece looks like the state it joins (L1); the reading says what it writes
    into the metric directly. It is linear: an edge's heads add up to the edge, and every edge of a
    block plus its output projection's bias to that block's attention bar on the Attribution page."""

    position: int
    heads: np.ndarray  # (L, T, H) head h's piece of the edge source j -> position in block l, read

    @property
    def edges(self) -> np.ndarray:
        """(L, T) each edge read whole: the sum of its heads (0 from a later source)."""
        return self.heads.sum(-1)

    def carrier(self, block: int, source: int) -> int:
        """The head that carries the most of an edge's value: the largest part in the edge's own
        direction (the most positive on an edge that raises the metric, the most negative on one that
        lowers it), so a head that works against its edge is never named for it."""
        parts = self.heads[block, source]  # (H,)
        return int(np.argmax(parts if parts.sum() >= 0 else -parts))

    def strongest(self, n: int) -> list[tuple[int, int]]:
        """The n edges with the largest value either way, as (block, source), strongest first."""
        T = self.heads.shape[1]
        order = np.argsort(-np.abs(self.edges), axis=None, kind="stable")[:n]
        return [(int(k // T), int(k % T)) for k in order]


def read_edges(graph: FlowGraph, position: int, direction: np.ndarray) -> EdgeReading:
    """Every attention edge into the mid states at `position` (all blocks, kept by a pruning or not),
    read through `direction` (D,): the graph's own values and pattern, no pass of the model."""
    if graph.read is None:
        raise ValueError("this graph was built without its values: it cannot read its edges")
    if not 0 <= position < graph.n_tokens:
        raise ValueError(f"position must be in 0..{graph.n_tokens - 1}, got {position}")
    direction = np.asarray(direction, dtype=np.float64)
    return EdgeReading(position, np.stack([graph.read(layer, position, direction) for layer in range(graph.n_layers)]))
