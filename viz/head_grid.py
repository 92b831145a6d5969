"""Every head of every layer at a glance: the thumbnails are ONE PNG (numpy + PIL), with a clear
clickable overlay of one point per head, head-type badges and a box around the selected head.

Layers run across (columns), heads down (rows), so a 30 x 9 model fills a wide page.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from model.analyses.overviews import pooled_heads
from model.core.patterns import Patterns, as_patterns, pixel_starts
from viz.labels import readable

CELL = 36  # pixels per thumbnail, border included
_LOW = np.array([255, 255, 255], dtype=np.float32)  # weight 0: white
_HIGH = np.array([8, 48, 107], dtype=np.float32)  # weight 1: dark blue (end of plotly's Blues)
_MASKED = np.array([222, 224, 228], dtype=np.float32)  # future cells: light grey
_BORDER = np.array([255, 255, 255], dtype=np.uint8)
BADGES = {"previous": "P", "first": "F", "self": "S", "duplicate": "D", "induction": "I"}
SCORE_SCALE = "score: share of attention on the pattern, chance taken off (0 = spread evenly, 1 = all, < 0 = avoids it)"
# Near-black bold letters with a white halo: legible on the darkest thumbnail. One text trace, not one
# annotation per head: plotly measures and lays out every annotation on each draw, and the grid is drawn
# about three times per prompt in Streamlit (badges as annotations: 300 ms a draw; as one trace: 160 ms).
BADGE_FONT = dict(size=12, color="#111827", family="ui-monospace, monospace", weight="bold",
                  shadow="-1px -1px 0 white, 1px -1px 0 white, -1px 1px 0 white, 1px 1px 0 white, 0 0 4px white, "
                  "0 0 4px white")


def thumbnails(attention: Patterns | np.ndarray, cell: int = CELL) -> np.ndarray:
    """RGB image (H*cell, L*cell, 3) uint8 of every head, masked cells grey. `attention`: the capture's
    (L, H, T, T) array or a Patterns; each tile is pooled(l, h, size, "max"), so no head is ever
    held whole beside the others (model/analyses/overviews.py spreads them over the cores).

    Each pixel row is scaled to its own maximum, so the shape (diagonal, first column, stripes) shows
    even when the weights are spread thin; the one-head heatmap keeps the true 0..1 scale. Up to
    `cell - 2` tokens a pixel row is one query row (what the tiles always showed).
    """
    source = as_patterns(attention)
    L, H, T, _ = source.shape
    inner = cell - 2  # 1 px white border on each side
    tiles = np.broadcast_to(_BORDER, (L, H, cell, cell, 3)).copy()
    masked = _future_blocks(T, inner)  # (s, s)
    pooled = pooled_heads(source, inner, "max")  # (L, H, s, s)
    for layer in range(L):
        for head in range(H):
            tiles[layer, head, 1:-1, 1:-1] = _tile(pooled[layer, head], masked)
    return tiles.transpose(1, 2, 0, 3, 4).reshape(H * cell, L * cell, 3)  # heads down, layers across


def _future_blocks(n_tokens: int, size: int) -> np.ndarray:
    """(size, size) True where a pixel's whole block lies above the diagonal (every key after every query)."""
    starts = pixel_starts(n_tokens, size)
    ends = starts if n_tokens <= size else np.append(starts[1:], n_tokens) - 1  # last position in each block
    return starts[None, :] > ends[:, None]


def _tile(pooled: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """(s, s, 3) uint8 of one head's pooled maxima, each pixel row scaled to its own maximum."""
    weights = pooled.astype(np.float32)
    weights = np.clip(weights / np.maximum(weights.max(axis=-1, keepdims=True), 1e-9), 0, 1)
    rgb = _LOW + weights[..., None] * (_HIGH - _LOW)
    return np.where(masked[..., None], _MASKED, rgb).astype(np.uint8)


def png_data_uri(image: np.ndarray) -> str:
    """A PNG data URI of an RGB uint8 image: what a plotly Image trace can show as one picture."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)  # 4x faster than optimize=True, as small
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail_uri(attention: Patterns | np.ndarray, cell: int = CELL) -> str:
    """The grid's picture of every head (an (L, H, T, T) array or a Patterns) as a PNG data URI."""
    return png_data_uri(thumbnails(attention, cell))


def badge_text(scores: dict[str, np.ndarray], threshold: float) -> np.ndarray:
    """(L, H) strings like 'P I': one letter per head type scoring at least `threshold`."""
    first = next(iter(scores.values()))
    text = np.full(first.shape, "", dtype=object)
    for kind, letter in BADGES.items():
        if kind in scores:
            hit = scores[kind] >= threshold
            text[hit] = text[hit] + letter
    return text


def _hover(scores: dict[str, np.ndarray], group_size: int) -> list[str]:
    """One hover per head (layer-major): its address, kv group, every score and what a score means."""
    first = next(iter(scores.values()))
    L, H = first.shape
    lines = []
    for layer in range(L):
        for head in range(H):
            parts = " · ".join(f"{kind} {scores[kind][layer, head]:.2f}" for kind in scores)
            lines.append(f"L{layer}H{head} (kv group {head // group_size})<br>{parts}<br>{SCORE_SCALE}")
    return lines


def grid_figure(
    attention,
    scores: dict[str, np.ndarray],
    selected: tuple[int, int],
    group_size: int = 1,
    threshold: float = 0.5,
    cell: int = CELL,
    labels: dict[str, str] | None = None,
    image_uri: str | None = None,
) -> go.Figure:
    """The overview: one image of every head (an (L, H, T, T) array or a Patterns), clickable points, badges, selection box,
    and a legend under the grid naming each badge letter (labels: kind -> words, e.g. KIND_LABELS).
    image_uri: thumbnail_uri(attention, cell) made earlier (a page caches it per capture: it does not
    change with the selected head)."""
    L, H, _, _ = as_patterns(attention).shape
    image = go.Image(source=image_uri or thumbnail_uri(attention, cell), x0=-0.5 + 0.5 / cell,
                     dx=1 / cell, y0=-0.5 + 0.5 / cell, dy=1 / cell, hoverinfo="skip", name="heads")
    layers, heads = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")  # (L, H) each, layer-major
    points = go.Scatter(
        x=layers.ravel(), y=heads.ravel(), mode="markers", name="pick a head",
        marker=dict(symbol="square", size=cell * 0.8, color="rgba(0,0,0,0)"),
        hovertext=_hover(scores, group_size), hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
    )
    layer, head = selected
    # One figure from one layout: each add_annotation would revalidate every earlier annotation
    # (quadratic: tens of seconds for the default model's hundreds of badges).
    layout = dict(
        annotations=[_legend(scores, threshold, labels or {})],
        shapes=[dict(type="rect", x0=layer - 0.5, x1=layer + 0.5, y0=head - 0.5, y1=head + 0.5,
                     line=dict(color="#e11d48", width=3))],
        height=int(min(900, max(260, 950 * H / max(L, 1) + 90))),  # the image keeps its aspect
        margin=dict(l=10, r=10, t=30, b=40), dragmode=False,
        plot_bgcolor="white", clickmode="event+select",
        xaxis=dict(title="block", tickmode="linear", dtick=1 if L <= 40 else 5, range=[-0.5, L - 0.5],
                   showgrid=False, zeroline=False, side="top"),
        yaxis=dict(title="head", tickmode="linear", dtick=1, range=[H - 0.5, -0.5], showgrid=False,
                   zeroline=False),
    )
    return readable(go.Figure(data=[image, points, _badges_trace(badge_text(scores, threshold))], layout=layout))


def _badges_trace(text: np.ndarray) -> go.Scatter:
    """Each badged head's letters at its top-left corner. Not hoverable, so a click still lands on
    the head's point underneath."""
    layers, heads = np.nonzero(text != "")
    return go.Scatter(x=layers - 0.47, y=heads - 0.47, text=[text[i, j] for i, j in zip(layers, heads)],
                      mode="text", textposition="bottom right", textfont=BADGE_FONT, hoverinfo="skip",
                      showlegend=False, name="badges")


def legend_text(scores: dict[str, np.ndarray], threshold: float, labels: dict[str, str]) -> str:
    """'P = previous-token · F = first-token (sink) · …': what each letter on the grid means."""
    named = " · ".join(f"<b>{letter}</b> = {labels.get(kind, kind)}" for kind, letter in BADGES.items()
                       if kind in scores)
    return f"Badges: {named} (score ≥ {threshold:g})"


def _legend(scores: dict[str, np.ndarray], threshold: float, labels: dict[str, str]) -> dict:
    return dict(text=legend_text(scores, threshold, labels), showarrow=False, xref="paper", yref="paper",
                x=0, y=0, xanchor="left", yanchor="top", yshift=-6, font=dict(size=13, color="#111827"),
                name="badge legend")


def picked_head(points: list[dict], n_heads: int) -> tuple[int, int] | None:
    """The (layer, head) of a clicked overlay point, from a plotly selection's point list."""
    for point in points:
        x, y = point.get("x"), point.get("y")
        if x is not None and y is not None and float(x).is_integer() and float(y).is_integer():
            if 0 <= int(y) < n_heads:
                return int(x), int(y)
    return None
