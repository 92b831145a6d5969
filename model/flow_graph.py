"""The information-flow graph as plain numpy (every edge weight, model/flow.py computes them), and
its pruning: keep the edges whose weight exceeds a threshold and that lead, backwards, to the state
leaving the last block at one position; the rest fed that prediction through no important route.
Plain numpy (no torch): viz draws what this returns.

Levels number the residual states bottom to top: level 2l is the stream entering block l (level 0 is
the embedding), 2l + 1 the stream after block l's attention, 2l + 2 the stream leaving block l.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["attention", "residual", "mlp"]
DEFAULT_THRESHOLD = 0.04  # Ferrando & Voita's and LLM-TT's usual choice


@dataclass(frozen=True)
class FlowGraph:
    """Every edge weight of the full graph (before any threshold). float32, read-only."""

    tokens: list[str]
    attention: np.ndarray  # (L, T, T, H) share of source j via head h in the mid state of i; 0 for j > i
    attn_residual: np.ndarray  # (L, T) share of the stream entering block l in its mid state
    mlp: np.ndarray  # (L, T) share of the MLP's output in the stream leaving block l
    mlp_residual: np.ndarray  # (L, T) share of the mid state in the stream leaving block l

    def __post_init__(self) -> None:
        for name in ("attention", "attn_residual", "mlp", "mlp_residual"):
            getattr(self, name).setflags(write=False)

    @property
    def n_layers(self) -> int:
        return int(self.attention.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.attention.shape[1])

    @property
    def n_heads(self) -> int:
        return int(self.attention.shape[3])


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


def flow_paths(graph: FlowGraph, position: int, threshold: float = DEFAULT_THRESHOLD) -> FlowPaths:
    """The edges above `threshold` on some route down from the last block's output at `position`.
    An attention edge (position j -> i in block l) weighs the sum of its heads' shares, as in LLM-TT."""
    L, T = graph.n_layers, graph.n_tokens
    if not 0 <= position < T:
        raise ValueError(f"position must be in 0..{T - 1}, got {position}")
    live = np.zeros(T, dtype=bool)  # positions alive at the current level
    live[position] = True
    edges: list[Edge] = []
    pair = graph.attention.sum(-1)  # (L, T, T) summed over heads
    for layer in range(L - 1, -1, -1):
        top, mid, bottom = 2 * layer + 2, 2 * layer + 1, 2 * layer
        alive_mid = np.zeros(T, dtype=bool)
        for i in np.flatnonzero(live):
            for kind, w in (("mlp", graph.mlp[layer, i]), ("residual", graph.mlp_residual[layer, i])):
                if w > threshold:
                    edges.append(Edge(kind, layer, (mid, int(i)), (top, int(i)), float(w)))
                    alive_mid[i] = True
        alive_bottom = np.zeros(T, dtype=bool)
        for i in np.flatnonzero(alive_mid):
            if graph.attn_residual[layer, i] > threshold:
                edges.append(Edge("residual", layer, (bottom, int(i)), (mid, int(i)), float(graph.attn_residual[layer, i])))
                alive_bottom[i] = True
            for j in np.flatnonzero(pair[layer, i, : i + 1] > threshold):
                heads = tuple(float(x) for x in graph.attention[layer, i, j])
                edges.append(Edge("attention", layer, (bottom, int(j)), (mid, int(i)), float(pair[layer, i, j]), heads))
                alive_bottom[j] = True
        live = alive_bottom
    return FlowPaths(list(graph.tokens), L, position, threshold, edges)
