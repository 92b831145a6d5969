"""Per-head direct logit attribution drawn: a block x head heatmap (blue pushes the metric up, red
down, white none) and the strongest heads as table rows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from viz.labels import blocks_top_down, escape, readable

if TYPE_CHECKING:  # types only
    from model.analyses.head_attribution import HeadAttribution

DIVERGING = "RdBu"  # red = down, blue = up (plotly's RdBu runs red -> blue)


def head_heatmap(heads: HeadAttribution, metric: str, height: int | None = None) -> go.Figure:
    """(L, H) heads' direct shares of `metric` (plain text, e.g. 'logit(·Mary) − logit(·John)')."""
    L, H = heads.heads.shape
    limit = float(np.abs(heads.heads).max()) or 1.0
    what = escape(metric)
    fig = go.Figure(go.Heatmap(
        z=heads.heads, x=[f"head {h}" for h in range(H)], y=[f"block {b}" for b in range(L)],
        zmid=0.0, zmin=-limit, zmax=limit, colorscale=DIVERGING, colorbar=dict(title="share", thickness=12),
        hovertemplate=f"%{{y}} %{{x}}: %{{z:+.3f}} on {what}<extra></extra>",
    ))
    blocks_top_down(fig, type="category", title="block")
    fig.update_xaxes(type="category", side="top")
    fig.update_layout(height=height or max(360, 16 * L + 120), margin=dict(l=10, r=10, t=70, b=10),
                      title=f"Each head's direct effect on {what} at position {heads.position}")
    return readable(fig)


def top_head_rows(heads: HeadAttribution, n: int = 8) -> list[dict]:
    """The n strongest heads either way: block, head, share, direction."""
    return [{"block": b, "head": h, "share": round(v, 4), "direction": "up" if v >= 0 else "down"}
            for b, h, v in heads.top(n)]
