"""One head's attention as figures: the (query x key) heatmap with the causal mask drawn, the
weights one query puts on earlier tokens, two heads compared, and the pattern as CSV.

Pure functions: Capture (+ layer/head) -> plotly Figure or str. Token text is escaped for plotly.
"""
from __future__ import annotations

import csv
import io

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.core.capture import Capture
from model.core.patterns import pixel_starts
from model.core.tokens import character_labels
from viz.export import file_name
from viz.labels import TICK_FONT, axis_labels, escape, fit_ticks, readable, tick_label_px

MASK_NAME = "future tokens: masked"
MASK_GREY = "#c4c7cc"
WEIGHT_SCALE = "Blues"  # 0 = white, 1 = dark blue; the grey mask stays distinct from both
HOVER = "query %{y} -> key %{x}: %{z:.3f}<extra></extra>"
MASK_HOVER = "masked (future token)<extra></extra>"
DIFF_FLOOR = 0.1  # the difference scale spans at least ±0.1: a 0.01 difference stays pale, not dramatic
PLOT_WIDTH = 900  # px a chart is assumed to get across: labels are thinned to fit it, never to overlap
LONG = 256  # above this many tokens a head is drawn as a pooled overview and a window of exact values
OVERVIEW_BINS = 256  # pixels per side of the overview: pooled(layer, head, OVERVIEW_BINS, reduce)
WINDOW = 64  # query rows x key columns of exact values in the zoom window
WINDOW_BOX = "#e11d48"


def hover_labels(tokens: list[str]) -> list[str]:
    """Category values that double as hover text: '"mole" (pos 7)', escaped and unique."""
    return [f'"{escape(t)}" (pos {i})' for i, t in enumerate(character_labels(tokens))]


def future_mask(n_tokens: int) -> np.ndarray:
    """(T, T) True above the diagonal: keys a causal model cannot see from that query."""
    return np.triu(np.ones((n_tokens, n_tokens), dtype=bool), k=1)


def _pattern_check(cap: Capture, layer: int, head: int) -> None:
    """A clear error for a layer/head the model lacks."""
    L, H = cap.summary.n_layers, cap.summary.n_heads
    if not (0 <= layer < L and 0 <= head < H):
        raise ValueError(f"layer {layer}, head {head} is outside this model's {L} layers x {H} heads")


def _pattern(cap: Capture, layer: int, head: int) -> np.ndarray:
    """(T, T) one head's weights (through head(): a Patterns or the full array alike)."""
    _pattern_check(cap, layer, head)
    return cap.attention.head(layer, head)


def _ticks(tokens: list[str], axis_px: int) -> dict:
    """Dark tick labels, every position while they fit in axis_px, else every k-th (never overlapping).
    No automargin: _margins leaves room for them (upright on a horizontal axis: tickangle=-90)."""
    step = fit_ticks(len(tokens), axis_px)
    cats = hover_labels(tokens)
    short = axis_labels(tokens)
    return dict(tickmode="array", tickvals=cats[::step], ticktext=short[::step], type="category", tickfont=TICK_FONT,
                automargin=False)


def _margins(tokens: list[str], *, top: int, right: int) -> dict:
    """Margins that hold the token labels (_ticks) and the axis titles, computed here: plotly's automargin
    measured them after a first draw and drew every heatmap again (~0.35 s of the browser per chart)."""
    room = tick_label_px(axis_labels(tokens))
    return dict(l=room + 40, r=right, t=top, b=room + 45)


def mask_trace(n_tokens: int, cats: list[str], **kw) -> go.Heatmap:
    """Grey cells exactly on the masked upper triangle (NaN elsewhere), with its own legend entry."""
    z = np.where(future_mask(n_tokens), 1.0, np.nan).astype(np.float32)  # (T, T)
    return go.Heatmap(
        z=z, x=cats, y=cats, colorscale=[[0, MASK_GREY], [1, MASK_GREY]], showscale=False,
        hovertemplate=MASK_HOVER, hoverongaps=False, name=MASK_NAME, showlegend=True,
        legendgroup="mask", **kw,
    )


def mask_shape(n_tokens: int) -> dict:
    """The masked upper triangle as one grey staircase path (light: no per-cell data, no hover)."""
    points = [(0.5, -0.5)]
    for i in range(n_tokens - 1):
        points += [(i + 0.5, i + 0.5), (i + 1.5, i + 0.5)]
    path = "M " + " L ".join(f"{x},{y}" for x, y in points) + f" L {n_tokens - 0.5},-0.5 Z"
    return dict(type="path", path=path, fillcolor=MASK_GREY, line=dict(width=0), layer="above")


def mask_legend() -> go.Scatter:
    """A legend entry for a mask drawn as shapes."""
    return go.Scatter(x=[None], y=[None], mode="markers", name=MASK_NAME, showlegend=True,
                      marker=dict(symbol="square", size=12, color=MASK_GREY), hoverinfo="skip")


def weight_trace(pattern: np.ndarray, cats: list[str], **kw) -> go.Heatmap:
    """The visible (lower-triangle) weights; masked cells are gaps so the grey layer shows."""
    z = np.where(future_mask(len(cats)), np.nan, pattern).astype(np.float32)  # (T, T)
    return go.Heatmap(z=z, x=cats, y=cats, hovertemplate=HOVER, hoverongaps=False, name="weight", **kw)


def _size(n_tokens: int) -> int:
    """Figure height: 13 px per row, so every row up to 150 tokens carries its label; at most 2,250."""
    return int(min(2250, max(460, 270 + 13 * n_tokens)))


def head_heatmap(cap: Capture, layer: int, head: int) -> go.Figure:
    """Queries down the rows, keys across, colour fixed 0..1, the causal mask drawn grey."""
    pattern = _pattern(cap, layer, head)  # (T, T)
    cats = hover_labels(cap.tokens)
    kv = head // cap.summary.group_size
    fig = go.Figure([
        weight_trace(pattern, cats, zmin=0.0, zmax=1.0, colorscale=WEIGHT_SCALE,
                     colorbar=dict(title="weight", len=0.8)),
        mask_trace(cap.n_tokens, cats),
    ])
    height = _size(cap.n_tokens)
    fig.update_layout(
        title=f"Block {layer} · head {head} (key/value group {kv}): who each token reads",
        height=height, margin=_margins(cap.tokens, top=70, right=90), plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0.0),
    )
    fig.update_xaxes(title="key: the token being read", tickangle=-90, **_ticks(cap.tokens, PLOT_WIDTH))
    fig.update_yaxes(title="query: the token reading", autorange="reversed", **_ticks(cap.tokens, height - 270))
    return readable(fig)


def _centres(n_tokens: int, size: int) -> np.ndarray:
    """(size,) the middle position of each overview pixel's block (pooled's bins)."""
    starts = pixel_starts(n_tokens, size)
    ends = np.append(starts[1:], n_tokens) if n_tokens > size else starts + 1
    return (starts + ends - 1) / 2


def overview_heatmap(pooled: np.ndarray, n_tokens: int, layer: int, head: int, window: tuple[int, int, int, int],
                     reduce: str = "mean") -> go.Figure:
    """A long prompt's head at a glance: pixel = the mean (or max) weight of a block of queries x keys,
    blocks wholly in the future left out (white), and the zoom window (q0, q1, k0, k1) boxed in red.
    Positions on numeric axes: thousands of token labels would not fit."""
    size = pooled.shape[0]
    centres = _centres(n_tokens, size)
    starts = pixel_starts(n_tokens, size)
    ends = np.append(starts[1:], n_tokens) - 1 if n_tokens > size else starts
    z = np.where(starts[None, :] > ends[:, None], np.nan, pooled).astype(np.float32)  # (size, size)
    q0, q1, k0, k1 = window
    fig = go.Figure(go.Heatmap(
        z=z, x=centres, y=centres, colorscale=WEIGHT_SCALE, zmin=0.0, zmax=1.0 if reduce == "max" else None,
        colorbar=dict(title=f"block {reduce}", len=0.8), hoverongaps=False, name="overview",
        hovertemplate=f"query ≈ %{{y:.0f}} -> key ≈ %{{x:.0f}}: block {reduce} %{{z:.3f}}<extra></extra>"))
    fig.add_shape(type="rect", x0=k0 - 0.5, x1=k1 - 0.5, y0=q0 - 0.5, y1=q1 - 0.5, line=dict(color=WINDOW_BOX, width=2),
                  name="window")
    fig.update_layout(
        title=f"Block {layer} · head {head}: all {n_tokens} tokens, {size} × {size} blocks ({reduce} of each); "
              "red box: the window below", height=640, margin=dict(l=70, r=90, t=70, b=60), plot_bgcolor="white")
    fig.update_xaxes(title="key: the token being read (position)", range=[-0.5, n_tokens - 0.5], showgrid=False)
    fig.update_yaxes(title="query: the token reading (position)", range=[n_tokens - 0.5, -0.5], showgrid=False)
    return readable(fig)


def window_heatmap(values: np.ndarray, tokens: list[str], first: tuple[int, int], layer: int, head: int) -> go.Figure:
    """The exact weights of a window: queries first[0].. down, keys first[1].. across, 0..1, cells above
    the diagonal (future keys) grey as in the full heatmap."""
    q0, k0 = first
    R, C = values.shape
    cats = hover_labels(tokens)
    rows, cols = cats[q0:q0 + R], cats[k0:k0 + C]
    hidden = np.arange(k0, k0 + C)[None, :] > np.arange(q0, q0 + R)[:, None]  # (R, C) future keys
    fig = go.Figure([
        go.Heatmap(z=np.where(hidden, np.nan, values).astype(np.float32), x=cols, y=rows, zmin=0.0, zmax=1.0,
                   colorscale=WEIGHT_SCALE, colorbar=dict(title="weight", len=0.8), hovertemplate=HOVER,
                   hoverongaps=False, name="weight"),
        go.Heatmap(z=np.where(hidden, 1.0, np.nan).astype(np.float32), x=cols, y=rows,
                   colorscale=[[0, MASK_GREY], [1, MASK_GREY]], showscale=False, hovertemplate=MASK_HOVER,
                   hoverongaps=False, name=MASK_NAME, showlegend=True, legendgroup="mask"),
    ])
    height = _size(R)
    labels = axis_labels(tokens)
    room = tick_label_px(labels[q0:q0 + R] + labels[k0:k0 + C])
    fig.update_layout(
        title=f"Window: queries {q0}–{q0 + R - 1} × keys {k0}–{k0 + C - 1}, exact weights",
        height=height, margin=dict(l=room + 40, r=90, t=70, b=room + 45),
        plot_bgcolor="white", legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0.0))
    fig.update_xaxes(title="key: the token being read", tickangle=-90, **_ticks_at(tokens, k0, C, PLOT_WIDTH))
    fig.update_yaxes(title="query: the token reading", autorange="reversed", **_ticks_at(tokens, q0, R, height - 270))
    return readable(fig)


def _ticks_at(tokens: list[str], start: int, count: int, axis_px: int) -> dict:
    """_ticks for the positions [start, start + count): their labels keep their place in the prompt."""
    step = fit_ticks(count, axis_px)
    cats = hover_labels(tokens)[start:start + count]
    short = axis_labels(tokens)[start:start + count]
    return dict(tickmode="array", tickvals=cats[::step], ticktext=short[::step], type="category", tickfont=TICK_FONT,
                automargin=False)


def query_bars(cap: Capture, layer: int, head: int, position: int) -> go.Figure:
    """Bars: the weight query `position` puts on each token up to itself (its row of the heatmap)."""
    _pattern_check(cap, layer, head)
    row = cap.attention.rows(layer, head, position, position + 1)[0, : position + 1]  # (position + 1,)
    return row_bars(row, cap.tokens, position, layer, head)


def row_bars(row: np.ndarray, tokens: list[str], position: int, layer: int, head: int) -> go.Figure:
    """Bars: the weights `row` (position + 1,) that the query at `position` of `tokens` puts on each token
    up to itself."""
    cats = hover_labels(tokens)
    keys = cats[: position + 1]
    fig = go.Figure(go.Bar(
        x=keys, y=np.asarray(row, dtype=np.float32), marker_color="#2f6db3",
        hovertemplate=f"query {cats[position]} -> key %{{x}}: %{{y:.3f}}<extra></extra>",
    ))
    ticks = _ticks(tokens[: position + 1], PLOT_WIDTH)
    fig.update_layout(
        title=f"What {axis_labels(tokens)[position]} reads in block {layer}, head {head}",
        height=380 + tick_label_px(axis_labels(tokens)[: position + 1]), plot_bgcolor="white", bargap=0.15,
        margin=_margins(tokens[: position + 1], top=60, right=10) | dict(l=60),
    )
    fig.update_xaxes(title="earlier token (key)", tickangle=-90, **ticks)
    fig.update_yaxes(title="attention weight", range=[0, 1], gridcolor="#e6e8eb", automargin=False)
    return readable(fig)


def _difference_range(diff: np.ndarray) -> float:
    """Half-width of the diverging scale: symmetric around 0, at least DIFF_FLOOR."""
    return float(max(DIFF_FLOOR, np.nanmax(np.abs(diff)) if np.isfinite(diff).any() else DIFF_FLOOR))


def compare_heads(cap: Capture, first: tuple[int, int], second: tuple[int, int]) -> go.Figure:
    """Two heads on one 0..1 scale, and their difference (first - second) on a scale centred at 0 that
    spans at least ±DIFF_FLOOR (stated in the panel title). Both colour bars stand right of the panels."""
    a, b = _pattern(cap, *first), _pattern(cap, *second)  # (T, T) each
    diff = np.where(future_mask(cap.n_tokens), np.nan, a - b)  # (T, T)
    half = _difference_range(diff)
    cats = hover_labels(cap.tokens)
    scale = f"<br><sup>colour scale ±{half:.2g} (never under ±{DIFF_FLOOR:g})</sup>"
    names = [f"L{first[0]}H{first[1]}", f"L{second[0]}H{second[1]}", f"L{first[0]}H{first[1]} − L{second[0]}H{second[1]}{scale}"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=names, horizontal_spacing=0.09)
    fig.add_trace(weight_trace(a, cats, coloraxis="coloraxis"), 1, 1)
    fig.add_trace(weight_trace(b, cats, coloraxis="coloraxis"), 1, 2)
    fig.add_trace(go.Heatmap(z=diff.astype(np.float32), x=cats, y=cats, coloraxis="coloraxis2", hoverongaps=False,
                             hovertemplate="query %{y} -> key %{x}: %{z:+.3f}<extra></extra>", name="difference"), 1, 3)
    for col in (1, 2, 3):
        suffix = "" if col == 1 else str(col)
        fig.add_shape(mask_shape(cap.n_tokens), xref=f"x{suffix}", yref=f"y{suffix}")
    fig.add_trace(mask_legend())
    fig.update_layout(
        coloraxis=dict(cmin=0.0, cmax=1.0, colorscale=WEIGHT_SCALE,
                       colorbar=dict(title=dict(text="weight", side="top"), x=1.01, xanchor="left", y=1.0,
                                     yanchor="top", len=0.44, thickness=12)),
        coloraxis2=dict(cmin=-half, cmax=half, cmid=0.0, colorscale="RdBu_r",
                        colorbar=dict(title=dict(text="difference", side="top"), x=1.01, xanchor="left", y=0.0,
                                      yanchor="bottom", len=0.44, thickness=12)),
        height=_size(min(cap.n_tokens, 24)), margin=_margins(cap.tokens, top=90, right=90), plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0.0),
    )
    panel_px = PLOT_WIDTH // 3
    fig.update_xaxes(tickangle=-90, **_ticks(cap.tokens, panel_px))
    fig.update_yaxes(autorange="reversed", **_ticks(cap.tokens, _size(min(cap.n_tokens, 24)) - 270))
    fig.update_yaxes(showticklabels=False, col=2)
    fig.update_yaxes(showticklabels=False, col=3)
    return readable(fig)


def attention_csv(cap: Capture, layer: int, head: int) -> str:
    """One head as CSV: a row per query, a column per key; masked (future) cells left empty."""
    pattern = _pattern(cap, layer, head)  # (T, T)
    labels = [f"{i}:{t}" for i, t in enumerate(cap.tokens)]  # leading digit: no spreadsheet formulas
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["query \\ key", *labels])
    for i, label in enumerate(labels):
        writer.writerow([label, *(f"{w:.6f}" for w in pattern[i, : i + 1]), *([""] * (cap.n_tokens - i - 1))])
    return out.getvalue()


def csv_name(cap: Capture, layer: int, head: int) -> str:
    """e.g. attention_L5H3_the-spy-was-a-mole.csv: named after the view and the prompt."""
    return file_name(cap.prompt, f"attention_L{layer}H{head}", "csv")
