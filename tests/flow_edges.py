"""Every edge of a flow graph at once, for tests that check the weights against a reference (the app
weighs only the states a pruning reaches: FlowGraph.into_mid)."""
from __future__ import annotations

import numpy as np

from model.analyses.flow_graph import FlowGraph


def dense(graph: FlowGraph) -> tuple[np.ndarray, np.ndarray]:
    """Every attention edge, (L, T, T, H), and every residual edge into a mid state, (L, T)."""
    every = np.arange(graph.n_tokens)
    pairs = [graph.into_mid(layer, every) for layer in range(graph.n_layers)]
    return np.stack([h for h, _ in pairs]), np.stack([r for _, r in pairs])
