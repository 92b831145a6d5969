"""Drawing token vectors: a PCA map of one layer (2-D or 3-D) and paths through the layers.
Inputs are coordinates already projected by model/analyses/embeddings.py; every text shown is escaped.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .labels import escape, readable, stream_name

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
GROUP_STYLE = {  # marker style per group of points on the map
    "prompt": dict(color="#1f77b4", size=9, symbol="circle"),
    "reference": dict(color="#d62728", size=9, symbol="diamond"),
}


def axis_title(i: int, explained: np.ndarray) -> str:
    """'PC1 (42.0% of variance)': how much of the spread this axis shows."""
    return f"PC{i + 1} ({100 * float(explained[i]):.1f}% of variance)"


def layer_name(layer: int) -> str:
    """Residual index 0 is the embedding; index l is the stream after block l-1 (blocks from 0)."""
    return stream_name(layer)

LABELLED_POINTS = 400  # beyond, labels would cover the map (and placing them took 1.9 s at 3,500 points)


def _spread_labels(coords: np.ndarray, span: float | None = None) -> list[str]:
    """Text positions that keep near neighbours' labels apart: a point close to one already labelled
    above gets its label below (then right, then left). Close means within 6 % of `span`: the map's
    extent (default: these points')."""
    span = span or float(np.ptp(coords[:, :2], axis=0).max()) or 1.0
    places = ["top center", "bottom center", "middle right", "middle left"]
    xy = coords[:, :2]
    close = np.abs(xy[:, None, :] - xy[None, :, :]).max(axis=-1) < 0.06 * span  # (N, N) one pass, not N² in Python
    chosen: list[str] = []
    for i in range(len(xy)):
        near = {chosen[j] for j in np.flatnonzero(close[i, :i])}
        chosen.append(next((p for p in places if p not in near), places[i % len(places)]))
    return chosen


def _check(coords: np.ndarray, *named: tuple[str, list]) -> None:
    for name, items in named:
        if len(items) != coords.shape[0]:
            raise ValueError(f"{coords.shape[0]} points but {len(items)} {name}")


def _scatter(coords: np.ndarray, **kwargs) -> go.Scatter | go.Scatter3d:
    """A 2-D or 3-D scatter trace, depending on the number of columns of coords (N, 2|3)."""
    if coords.shape[1] == 3:
        return go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], **kwargs)
    return go.Scatter(x=coords[:, 0], y=coords[:, 1], **kwargs)


def _layout(fig: go.Figure, explained: np.ndarray, title: str, height: int = 560) -> go.Figure:
    titles = [axis_title(i, explained) for i in range(len(explained))]
    fig.update_layout(title=escape(title), height=height, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    if len(explained) == 3:
        fig.update_layout(scene=dict(xaxis_title=titles[0], yaxis_title=titles[1], zaxis_title=titles[2]))
    else:
        fig.update_layout(xaxis_title=titles[0], yaxis_title=titles[1])
    return readable(fig)


def token_map_figure(coords: np.ndarray, labels: list[str], hovers: list[str], groups: list[str],
                     explained: np.ndarray, title: str) -> go.Figure:
    """Points (N, 2|3) labelled by token; one trace per group ('prompt', 'reference', ...). A group of
    more than LABELLED_POINTS is drawn as markers that their hovers name."""
    _check(coords, ("labels", labels), ("hovers", hovers), ("groups", groups))
    members = {group: [i for i, g in enumerate(groups) if g == group] for group in dict.fromkeys(groups)}
    shown = [i for idx in members.values() if len(idx) <= LABELLED_POINTS for i in idx]
    # placed over every labelled group together: "France" and "·France" do not overlap
    span = float(np.ptp(coords[:, :2], axis=0).max())  # the whole map's: how close two labels may sit
    spread = dict(zip(shown, _spread_labels(coords[shown], span))) if shown else {}
    fig = go.Figure()
    for group, idx in members.items():
        text = dict(mode="markers+text", text=[escape(labels[i]) for i in idx],
                    textposition=[spread[i] for i in idx]) if len(idx) <= LABELLED_POINTS else dict(mode="markers")
        fig.add_trace(_scatter(
            coords[idx], name=escape(group), **text,
            customdata=[escape(hovers[i]) for i in idx], hovertemplate="%{customdata}<extra></extra>",
            marker=GROUP_STYLE.get(group, dict(size=9)),
        ))
    return _layout(fig, explained, title)


def trajectory_figure(paths: np.ndarray, names: list[str], explained: np.ndarray, title: str,
                      end_labels: list[str] | None = None) -> go.Figure:
    """One line per token through the layers: paths (L+1, P, 2|3). Each path starts at an open circle
    (the embedding), its markers grow with depth, and it ends at a filled diamond with the token's
    name (or a short end label, when names are long)."""
    n_layers, n_paths, _ = paths.shape
    if len(names) != n_paths:
        raise ValueError(f"{n_paths} paths but {len(names)} names")
    fig = go.Figure()
    for p, name in enumerate(names):
        safe = escape(name)
        end = escape(end_labels[p]) if end_labels else safe
        text = [""] * (n_layers - 1) + [end]  # the label marks the end
        symbols = ["circle-open"] + ["circle"] * (n_layers - 2) + ["diamond"] if n_layers > 1 else ["diamond"]
        sizes = np.linspace(4, 11, n_layers)
        sizes[0], sizes[-1] = 12, 14  # start and end stand out
        hovers = [f"{safe}<br>{layer_name(layer)}" for layer in range(n_layers)]
        color = PALETTE[p % len(PALETTE)]
        fig.add_trace(_scatter(
            paths[:, p], mode="lines+markers+text", name=safe, text=text, textposition="top center",
            customdata=hovers, hovertemplate="%{customdata}<extra></extra>",
            line=dict(color=color, width=2),
            marker=dict(color=color, size=sizes, symbol=symbols if paths.shape[2] == 2 else None,
                        line=dict(color=color, width=2)),
        ))
    fig = _layout(fig, explained, title, height=620)
    fig.add_annotation(text="○ start (embedding) → ◆ end (after the last block)", showarrow=False,
                       xref="paper", yref="paper", x=1.0, y=1.0, xanchor="right", yanchor="bottom")
    return readable(fig)


def nearest_rows(tokens: list[str], ids: list[int], scores: list[float]) -> list[dict]:
    """Table rows for nearest vocabulary tokens (shown with st.dataframe: text, never markup)."""
    return [{"rank": r + 1, "token": t, "id": int(i), "cosine": round(float(s), 4)}
            for r, (t, i, s) in enumerate(zip(tokens, ids, scores))]
