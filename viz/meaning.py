"""Drawing meaning: similarity of one word across contexts, layer by layer, and word arithmetic as
arrows in a plane. Inputs are plain arrays from model/embeddings.py; every text shown is escaped.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .embeddings import PALETTE, axis_title
from .labels import escape, stream_names

KIND_STYLE = {  # marker style per kind of point in the arithmetic plane
    "input": dict(color="#1f77b4", size=11, symbol="circle"),
    "result": dict(color="#d62728", size=14, symbol="star"),
    "nearest": dict(color="#7f7f7f", size=7, symbol="circle-open"),
    "expected": dict(color="#2ca02c", size=11, symbol="diamond"),
}


DASHES = ["solid", "dot", "dash", "dashdot"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up"]


def similarity_figure(curves: dict[str, np.ndarray], baseline: np.ndarray | None = None,
                      title: str = "Cosine similarity between contexts, layer by layer") -> go.Figure:
    """One line per pair of contexts over the residual index (0 = embedding); optional dashed yardstick."""
    fig = go.Figure()
    for n, (name, values) in enumerate(curves.items()):  # earlier curves wider underneath: none hides
        safe = escape(name)
        fig.add_trace(go.Scatter(
            x=stream_names(len(values)), y=values, mode="lines+markers", name=safe,
            line=dict(color=PALETTE[n % len(PALETTE)], width=max(2, 7 - 2 * n), dash=DASHES[n % len(DASHES)]),
            marker=dict(symbol=SYMBOLS[n % len(SYMBOLS)], size=max(6, 11 - 2 * n)), customdata=[safe] * len(values),
            hovertemplate="%{customdata}<br>%{x}: cosine %{y:.3f}<extra></extra>",
        ))
    if baseline is not None:
        fig.add_trace(go.Scatter(
            x=stream_names(len(baseline)), y=baseline, mode="lines", name="yardstick: other words",
            line=dict(color="#7f7f7f", dash="dash"),
            hovertemplate="other words<br>%{x}: mean cosine %{y:.3f}<extra></extra>",
        ))
    fig.update_layout(
        title=escape(title), height=420, margin=dict(l=10, r=10, t=50, b=10),
        xaxis=dict(title="residual stream read", type="category"), yaxis_title="cosine similarity",
        yaxis=dict(range=[min(0.0, _lowest(curves, baseline)) - 0.05, 1.05]),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    return fig


def _lowest(curves: dict[str, np.ndarray], baseline: np.ndarray | None) -> float:
    values = list(curves.values()) + ([baseline] if baseline is not None else [])
    return float(np.nanmin([np.nanmin(v) for v in values])) if values else 0.0


def arithmetic_figure(coords: np.ndarray, labels: list[str], kinds: list[str], explained: np.ndarray,
                      arrows: list[tuple[int, int, str]], title: str) -> go.Figure:
    """Points (N, 2) by kind (input, result, nearest, expected) and arrows (from, to, name) between them."""
    if not (len(labels) == len(kinds) == coords.shape[0]):
        raise ValueError(f"{coords.shape[0]} points, {len(labels)} labels, {len(kinds)} kinds")
    fig = go.Figure()
    for kind in dict.fromkeys(kinds):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        texts = [escape(labels[i]) for i in idx]
        fig.add_trace(go.Scatter(
            x=coords[idx, 0], y=coords[idx, 1], mode="markers+text", name=kind, text=texts,
            textposition="top center", customdata=[f"{t} ({kind})" for t in texts],
            hovertemplate="%{customdata}<extra></extra>", marker=KIND_STYLE.get(kind, dict(size=9)),
        ))
    for n, (start, end, name) in enumerate(arrows):
        fig.add_annotation(
            x=coords[end, 0], y=coords[end, 1], ax=coords[start, 0], ay=coords[start, 1],
            xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=3, arrowsize=1.4,
            arrowwidth=2, arrowcolor=PALETTE[(n + 2) % len(PALETTE)], text="", hovertext=escape(name),
        )
    fig.update_layout(
        title=escape(title), height=560, margin=dict(l=10, r=10, t=50, b=10),
        xaxis_title=axis_title(0, explained), yaxis_title=axis_title(1, explained),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return fig
