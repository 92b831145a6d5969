"""A prompt set drawn: the per-prompt logit differences as a strip (a click opens that prompt), and
(block x head) or (block x position) means over the set with their spread beside them. Every figure
shows how many prompts its mean is over: a mean alone hides the spread.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.labels import blocks_top_down, escape, readable

DIVERGING = "RdBu"  # red = down, blue = up, as the one-prompt head heatmap
_UP, _DOWN = "#2166ac", "#b2182b"


def diff_strip(numbers: Sequence[int], diffs: np.ndarray, prompts: Sequence[str], metric: str,
               corrupted: np.ndarray | None = None) -> go.Figure:
    """One dot per prompt: its logit difference (above 0: the answer beats the contrast), the
    corrupted prompt's as hollow dots where the set has them. customdata is the prompt's position in
    the set, for clicks."""
    text = [escape(p) for p in prompts]
    colours = [_UP if d > 0 else _DOWN for d in diffs]
    fig = go.Figure(go.Scatter(
        x=list(numbers), y=diffs, mode="markers", name="prompt", marker=dict(color=colours, size=8),
        customdata=list(range(len(numbers))), text=text,
        hovertemplate="#%{x}: %{y:+.2f}<br>%{text}<extra>click to choose</extra>",
    ))
    if corrupted is not None:
        fig.add_trace(go.Scatter(x=list(numbers), y=corrupted, mode="markers", name="corrupted prompt",
                                 marker=dict(color="#777", size=7, symbol="circle-open"),
                                 customdata=list(range(len(numbers))), text=text,
                                 hovertemplate="#%{x} corrupted: %{y:+.2f}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#999", width=1))
    above = int((diffs > 0).sum())
    fig.update_layout(
        title=f"{escape(metric)} per prompt: above 0 on {above} of {len(diffs)} prompts (mean {diffs.mean():+.2f})",
        height=340, margin=dict(l=10, r=10, t=60, b=10), showlegend=corrupted is not None,
        xaxis_title="prompt", yaxis_title="logit difference",
    )
    return readable(fig)


def mean_heatmap(values: np.ndarray, title: str, what: str, *, cols: Sequence[str] | None = None,
                 rows: Sequence[str] | None = None, spread: bool = False) -> go.Figure:
    """(N, R, C) per-prompt values as the mean over prompts (NaN prompts left out), or with `spread`
    their standard deviation; hover gives mean ± sd and how many prompts. Rows are blocks, drawn top down."""
    count = np.sum(~np.isnan(values), axis=0)  # (R, C)
    mean, sd = _mean_sd(values)
    R, C = mean.shape
    z = sd if spread else mean
    limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    custom = np.stack([mean, sd, count], axis=-1)
    fig = go.Figure(go.Heatmap(
        z=z, x=list(cols or [f"head {h}" for h in range(C)]), y=list(rows or [f"block {b}" for b in range(R)]),
        zmid=None if spread else 0.0, zmin=0.0 if spread else -(limit or 1.0), zmax=limit or 1.0,
        colorscale="Greys" if spread else DIVERGING, customdata=custom, xgap=1, ygap=1,
        colorbar=dict(title="spread (sd)" if spread else "mean", thickness=12),
        hovertemplate=(f"%{{y}} · %{{x}}<br>{escape(what)}: %{{customdata[0]:+.3f}} ± %{{customdata[1]:.3f}} "
                       "over %{customdata[2]} prompts<extra></extra>"),
    ))
    blocks_top_down(fig, type="category")
    fig.update_xaxes(type="category", side="top", tickangle=-45 if C > 16 else 0)
    fig.update_layout(title=escape(title) + (" (spread)" if spread else ""), height=max(340, 16 * R + 130),
                      margin=dict(l=10, r=10, t=80, b=10))
    return readable(fig)


def _mean_sd(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the first axis, NaN entries left out (NaN where all are)."""
    count = np.sum(~np.isnan(values), axis=0)
    safe = np.where(count > 0, count, 1)
    mean = np.where(count > 0, np.nansum(values, axis=0) / safe, np.nan)
    sd = np.sqrt(np.where(count > 0, np.nansum((values - mean) ** 2, axis=0) / safe, np.nan))
    return mean, sd


def effect_bars(names: Sequence[str], effects: np.ndarray, metric: str) -> go.Figure:
    """(N, k) per-prompt effects of k ablated heads: each head's mean with its standard deviation as an
    error bar, and every prompt's own effect as a dot beside it."""
    mean, sd = _mean_sd(effects)
    fig = go.Figure(go.Bar(x=list(names), y=mean, error_y=dict(type="data", array=sd, visible=True),
                           marker_color=[_DOWN if m < 0 else _UP for m in mean], name="mean ± sd",
                           hovertemplate="%{x}: %{y:+.3f} mean<extra></extra>"))
    xs = np.repeat(np.asarray(names, dtype=object)[None], effects.shape[0], axis=0).ravel()
    fig.add_trace(go.Box(x=xs, y=effects.ravel(), boxpoints="all", jitter=0.5, pointpos=0, fillcolor="rgba(0,0,0,0)",
                         line=dict(width=0), marker=dict(color="rgba(60,60,60,0.45)", size=4), name="each prompt",
                         hovertemplate="%{x}: %{y:+.3f}<extra>one prompt</extra>"))
    fig.add_hline(y=0, line=dict(color="#999", width=1))
    fig.update_layout(title=f"Change of {escape(metric)} with each head switched off, over {effects.shape[0]} prompts",
                      height=380, margin=dict(l=10, r=10, t=60, b=10), yaxis_title="change of the difference",
                      xaxis=dict(type="category"), legend=dict(orientation="h"))
    return readable(fig)


def from_end_labels(k: int) -> list[str]:
    """Column labels of grids lined up at the last position: 'last', 'last−1', ..."""
    return [("last" if i == 0 else f"last−{i}") for i in range(k - 1, -1, -1)]
