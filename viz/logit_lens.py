"""The logit lens drawn: a layer x position heatmap of the top token (escaped text in each cell)
coloured by its probability, and one position's tracked token followed through the layers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.labels import escape, short, tick_step

if TYPE_CHECKING:  # types only: drawing needs no model code at run time
    from model.logit_lens import LogitLens


MAX_CELL_TEXT = 48  # positions above this: cell text would be unreadable, the hover still has it


def row_names(n_rows: int) -> list[str]:
    """Row 0 is the embeddings alone; row r is the stream after layer r-1 (layers count from 0)."""
    return ["embeddings"] + [f"after layer {layer}" for layer in range(n_rows - 1)]


def column_labels(lens: LogitLens, tokens: list[str]) -> list[str]:
    """Escaped 'token (pos)' per column, with the true prompt position even for a window."""
    return [f"{escape(short(tokens[p]))} ({p})" for p in lens.positions]


def _hovers(lens: LogitLens, tokens: list[str], top_texts: np.ndarray, target_texts: list[str]) -> np.ndarray:
    """(L+1, T) escaped hover strings for every cell."""
    names = row_names(lens.top_ids.shape[0])
    out = np.empty(lens.top_ids.shape, dtype=object)
    for r, name in enumerate(names):
        for t, p in enumerate(lens.positions):
            out[r, t] = (f"{name} · after {escape(tokens[p])} (pos {p})<br>top: {escape(top_texts[r, t])} "
                         f"{lens.top_probs[r, t]:.1%}<br>model's final choice {escape(target_texts[t])}: "
                         f"{lens.target_probs[r, t]:.1%}, rank {int(lens.target_ranks[r, t]) + 1}")
    return out


def lens_heatmap(lens: LogitLens, tokens: list[str], top_texts: np.ndarray, target_texts: list[str],
                 height: int | None = None) -> go.Figure:
    """Heatmap (L+1 rows x T columns): cell text = top token, colour = its probability. `tokens` is
    the whole prompt; the lens's `positions` pick the columns."""
    n_rows, T = lens.top_ids.shape
    if len(tokens) <= int(lens.positions.max()) or top_texts.shape != (n_rows, T) or len(target_texts) != T:
        raise ValueError(f"lens covers {n_rows} x {T} up to position {int(lens.positions.max())}, got "
                         f"{len(tokens)} tokens, {top_texts.shape} top texts, {len(target_texts)} targets")
    x = column_labels(lens, tokens)
    cell = np.vectorize(lambda s: escape(short(s, 8)), otypes=[object])(top_texts) if T <= MAX_CELL_TEXT else None
    fig = go.Figure(go.Heatmap(
        z=lens.top_probs, x=x, y=row_names(n_rows), zmin=0.0, zmax=1.0, colorscale="Viridis",
        text=cell, texttemplate="%{text}" if cell is not None else None, textfont=dict(size=10),
        customdata=_hovers(lens, tokens, top_texts, target_texts), hovertemplate="%{customdata}<extra></extra>",
        colorbar=dict(title="top-1 prob", thickness=12),
    ))
    step = tick_step(T, 48)
    fig.update_xaxes(title="position (the token read so far)", tickmode="array", tickvals=x[::step],
                     ticktext=x[::step], tickangle=-60, type="category")
    fig.update_yaxes(title="residual stream read at", autorange="reversed", type="category")
    fig.update_layout(height=height or max(420, 18 * n_rows + 160), margin=dict(l=10, r=10, t=40, b=10),
                      title="Top next-token guess at every layer")
    return fig


def tracked_figure(lens: LogitLens, position: int, target_text: str) -> go.Figure:
    """The tracked token at one position: probability (left) and rank (right, log) per layer."""
    col = lens.column(position)
    names = row_names(lens.top_ids.shape[0])
    label = escape(target_text)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=names, y=lens.target_probs[:, col], name=f"probability of {label}",
                             mode="lines+markers", line=dict(color="#1f77b4"),
                             hovertemplate="%{x}: %{y:.2%}<extra>probability</extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=names, y=lens.target_ranks[:, col] + 1, name=f"rank of {label}",
                             mode="lines+markers", line=dict(color="#d62728", dash="dot"),
                             hovertemplate="%{x}: rank %{y}<extra>rank</extra>"), secondary_y=True)
    fig.update_yaxes(title_text="probability", range=[0, 1.02], tickformat=".0%", secondary_y=False)
    fig.update_yaxes(title_text="rank (1 = top, log)", type="log", autorange="reversed", dtick=1,
                     tickformat="~s", secondary_y=True)  # powers of ten only: 1, 10, 100, 1k, 10k
    fig.update_xaxes(tickangle=-60, type="category")
    fig.update_layout(height=400, margin=dict(l=10, r=70, t=80, b=10), legend=dict(orientation="h", y=1.08),
                      title=f"The model's final choice at position {position}: {label}")
    return fig
