"""Drawing meaning: similarity of one word across contexts, layer by layer, and word arithmetic as
arrows in a plane. Inputs are plain arrays from model/analyses/embeddings.py; every text shown is escaped.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .embeddings import PALETTE, axis_title
from .labels import escape, readable, stream_names, tick_step

KIND_STYLE = {  # marker style per kind of point in the arithmetic plane
    "input": dict(color="#1f77b4", size=11, symbol="circle"),
    "result": dict(color="#d62728", size=14, symbol="star"),
    "nearest": dict(color="#7f7f7f", size=7, symbol="circle-open"),
    "expected": dict(color="#2ca02c", size=11, symbol="diamond"),
}


DASHES = ["solid", "dot", "dash", "dashdot"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up"]


MAX_DEPTH_TICKS = 32  # 'emb', '0', '1'... upright: at 12 px about this many fit across a chart


def depth_ticks(n: int) -> dict:
    """x axis over residual indices 0..n-1: short upright labels ('emb', then the block number) under the
    title 'after block', every k-th when many, so no label is cut or overlaps."""
    short = ["emb", *(str(b) for b in range(n - 1))]
    every = tick_step(n, MAX_DEPTH_TICKS)
    shown = list(range(0, n, every))
    return dict(title="after block (emb: the embedding, before block 0)", tickmode="array", tickvals=shown,
                ticktext=[short[i] for i in shown], tickangle=0, range=[-0.5, n - 0.5], zeroline=False)


def fitted_range(curves: dict[str, np.ndarray], pad: float = 0.1) -> list[float]:
    """y range around the curves (not 0-1): a drift from 0.95 to 0.8 must fill the frame to be seen."""
    values = np.concatenate([np.ravel(v) for v in curves.values()]) if curves else np.array([0.0, 1.0])
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    margin = max(pad * (hi - lo), 0.02)
    return [lo - margin, hi + margin]


def similarity_figure(curves: dict[str, np.ndarray], baseline: np.ndarray | None = None,
                      title: str = "Cosine similarity between contexts, layer by layer") -> go.Figure:
    """One line per pair of contexts over the residual index (0 = embedding); optional dashed yardstick.
    The y range fits the pairs' curves; the yardstick runs off the bottom where it is lower."""
    fig = go.Figure()
    for n, (name, values) in enumerate(curves.items()):  # earlier curves wider underneath: none hides
        safe = escape(name)
        fig.add_trace(go.Scatter(
            x=list(range(len(values))), y=values, mode="lines+markers", name=safe,
            line=dict(color=PALETTE[n % len(PALETTE)], width=max(2, 7 - 2 * n), dash=DASHES[n % len(DASHES)]),
            marker=dict(symbol=SYMBOLS[n % len(SYMBOLS)], size=max(6, 11 - 2 * n)),
            customdata=[[safe, depth] for depth in stream_names(len(values))],
            hovertemplate="%{customdata[0]}<br>%{customdata[1]}: cosine %{y:.3f}<extra></extra>",
        ))
    y_range = fitted_range(curves)
    if baseline is not None:
        below = bool(np.nanmin(baseline) < y_range[0])
        fig.add_trace(go.Scatter(
            x=list(range(len(baseline))), y=baseline, mode="lines",
            name="yardstick: other words" + (" (runs below the frame)" if below else ""),
            line=dict(color="#7f7f7f", dash="dash"), customdata=stream_names(len(baseline)),
            hovertemplate="other words<br>%{customdata}: mean cosine %{y:.3f}<extra></extra>",
        ))
    n = max((len(v) for v in curves.values()), default=len(baseline) if baseline is not None else 1)
    fig.update_layout(
        title=escape(title), height=420, margin=dict(l=10, r=10, t=50, b=10),
        xaxis=depth_ticks(n), yaxis_title="cosine similarity", yaxis=dict(range=y_range),
        legend=dict(orientation="h", yanchor="top", y=-0.25, x=0),
    )
    return readable(fig)


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
    return readable(fig)
