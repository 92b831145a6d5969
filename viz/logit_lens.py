"""The logit lens drawn: a layer x position heatmap of the top token (escaped text in each cell)
coloured by its probability, and one position's tracked token followed through the layers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.core.tokens import character_labels
from viz.labels import (
    TICK_FONT,
    blocks_top_down,
    cell_text,
    escape,
    fit_ticks,
    percent,
    readable,
    short,
    stream_names,
    tick_label_px,
)

if TYPE_CHECKING:  # types only: drawing needs no model code at run time
    from model.analyses.logit_lens import LogitLens


PLOT_PX = 860  # px across the cells the chart is assumed to get: cell text is cut to fit it
# Cells narrower than two characters carry no text (hover names the token): one character showed
# little but punctuation.
MIN_TEXT_CELL_PX = 14


def row_names(n_rows: int) -> list[str]:
    """Row 0 is the embedding (the stream before block 0); row r is the stream after block r-1."""
    return stream_names(n_rows)


def column_labels(lens: LogitLens, tokens: list[str]) -> list[str]:
    """Escaped 'token (pos)' per column, with the true prompt position even for a window; characters
    split over byte tokens are rebuilt from the whole prompt (我…, …我)."""
    labels = character_labels(tokens)
    return [f"{escape(short(labels[p]))} ({p})" for p in lens.positions]


def _hovers(lens: LogitLens, tokens: list[str], top_texts: np.ndarray, target_texts: list[str]) -> np.ndarray:
    """(L+1, T) escaped hover strings for every cell."""
    names = row_names(lens.top_ids.shape[0])
    labels = character_labels(tokens)
    out = np.empty(lens.top_ids.shape, dtype=object)
    for r, name in enumerate(names):
        for t, p in enumerate(lens.positions):
            out[r, t] = (f"{name} · reading “{escape(labels[p])}” (pos {p})<br>top: {escape(top_texts[r, t])} "
                         f"{percent(lens.top_probs[r, t])}<br>model's final choice {escape(target_texts[t])}: "
                         f"{percent(lens.target_probs[r, t])}, rank {int(lens.target_ranks[r, t]) + 1}")
    return out


def lens_heatmap(lens: LogitLens, tokens: list[str], top_texts: np.ndarray, target_texts: list[str],
                 height: int | None = None) -> go.Figure:
    """Heatmap (L+1 rows x T columns): cell text = top token cut to its cell, colour = its probability.
    `tokens` is the whole prompt; the lens's `positions` pick the columns."""
    n_rows, T = lens.top_ids.shape
    if len(tokens) <= int(lens.positions.max()) or top_texts.shape != (n_rows, T) or len(target_texts) != T:
        raise ValueError(f"lens covers {n_rows} x {T} up to position {int(lens.positions.max())}, got "
                         f"{len(tokens)} tokens, {top_texts.shape} top texts, {len(target_texts)} targets")
    x = column_labels(lens, tokens)
    text = {}
    if PLOT_PX / T >= MIN_TEXT_CELL_PX:
        cell = np.vectorize(lambda s: cell_text(s, PLOT_PX / T), otypes=[object])(top_texts)  # (L+1, T)
        text = dict(text=cell, texttemplate="%{text}", textfont=dict(size=11))
    fig = go.Figure(go.Heatmap(
        z=lens.top_probs, x=x, y=row_names(n_rows), zmin=0.0, zmax=1.0, colorscale="Viridis", **text,
        customdata=_hovers(lens, tokens, top_texts, target_texts), hovertemplate="%{customdata}<extra></extra>",
        colorbar=dict(title="top-1 prob", thickness=12),
    ))
    step = fit_ticks(T, PLOT_PX)
    # Margins computed here, not by plotly's automargin: measuring the labels after a draw and then
    # drawing the heatmap's every cell again took 0.6 s of the browser per prompt edit (bench/HISTORY.md, 2026-11-26 fifth pass).
    fig.update_xaxes(title="position (the token read so far)", tickmode="array", tickvals=x[::step],
                     ticktext=x[::step], type="category", tickfont=TICK_FONT, tickangle=-90, automargin=False)
    blocks_top_down(fig, title="residual stream read", type="category", tickfont=TICK_FONT, automargin=False)
    fig.update_layout(height=height or max(420, 18 * n_rows + 160 + tick_label_px(x)),
                      margin=dict(l=tick_label_px(row_names(n_rows)) + 40, r=10, t=40,
                                  b=tick_label_px(x[::step]) + 45),
                      title="Top next-token guess at every depth (embedding, then after each block)")
    return readable(fig)


def tracked_figure(lens: LogitLens, position: int, target_text: str) -> go.Figure:
    """The tracked token at one position: probability (left) and rank (right, log) per layer."""
    col = lens.column(position)
    names = row_names(lens.top_ids.shape[0])
    label = escape(target_text)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=names, y=lens.target_probs[:, col], name=f"probability of {label}",
                             mode="lines+markers", line=dict(color="#1f77b4"),
                             customdata=[percent(float(p)) for p in lens.target_probs[:, col]],  # never a false 0.00%
                             hovertemplate="%{x}: %{customdata}<extra>probability</extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=names, y=lens.target_ranks[:, col] + 1, name=f"rank of {label}",
                             mode="lines+markers", line=dict(color="#d62728", dash="dot"),
                             hovertemplate="%{x}: rank %{y}<extra>rank</extra>"), secondary_y=True)
    fig.update_yaxes(title_text="probability", range=[0, 1.02], tickformat=".0%", secondary_y=False)
    fig.update_yaxes(title_text="rank (1 = top, log)", type="log", autorange="reversed", dtick=1,
                     tickformat="~s", secondary_y=True)  # powers of ten only: 1, 10, 100, 1k, 10k
    fig.update_xaxes(type="category", tickfont=TICK_FONT)
    fig.update_layout(height=400, margin=dict(l=10, r=70, t=80, b=10), legend=dict(orientation="h", y=1.08),
                      title=f"The model's final choice at position {position}: {label}")
    return readable(fig)


def metric_figure(values: np.ndarray, metric: str, position: int) -> go.Figure:
    """(L+1,) a metric read at every depth at one position, e.g. logit(A) − logit(B) (plain text)."""
    names = row_names(len(values))
    what = escape(metric)
    fig = go.Figure(go.Scatter(x=names, y=values, mode="lines+markers", line=dict(color="#7b3294"), name=what,
                               hovertemplate=f"%{{x}}: {what} = %{{y:+.3f}}<extra></extra>"))
    fig.add_hline(y=0, line_color="#666", line_width=1)
    fig.update_xaxes(type="category", tickfont=TICK_FONT)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=50, b=10), yaxis_title="logits",
                      title=f"{what} read at every depth at position {position}")
    return readable(fig)
