"""Direct logit attribution drawn: per layer, the attention and MLP shares of one token's logit as
bars that go up (blue) or down (red), plus a small table that shows the shares add up.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from viz.labels import escape, readable

if TYPE_CHECKING:  # types only: drawing needs no model code at run time
    from model.analyses.attribution import Attribution

UP, DOWN = "#2166ac", "#b2182b"  # diverging: pushes the logit up / down
PARTS = {"attention": "", "MLP": "/"}  # bar fill pattern per part, colour carries the sign


def _colours(values) -> list[str]:
    return [UP if v >= 0 else DOWN for v in values]


def _legend(fig: go.Figure) -> None:
    """Legend-only entries: colour means direction, fill means part (bars mix both)."""
    for name, colour, shape in (("pushes up", UP, ""), ("pushes down", DOWN, ""),
                                ("attention (solid)", "#888", ""), ("MLP (hatched)", "#888", "/")):
        fig.add_trace(go.Bar(x=[None], y=[None], name=name, marker_color=colour, marker_pattern_shape=shape,
                             hoverinfo="skip", offsetgroup="attention"))  # shares a slot: takes no bar width


def attribution_figure(attr: Attribution, token_text: str, height: int = 460, versus_text: str | None = None
                       ) -> go.Figure:
    """Bars per block (attention solid, MLP hatched) plus the embedding; sign sets the colour. With
    versus_text (contrast mode) every bar is a share of logit(token) − logit(versus)."""
    L = len(attr.attn)
    label = (f"the logit of {escape(token_text)}" if versus_text is None
             else f"logit({escape(token_text)}) − logit({escape(versus_text)})")
    x = ["embedding"] + [str(block) for block in range(L)]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x[:1], y=[attr.embedding], name="embedding", marker_color=_colours([attr.embedding]),
                         marker_line=dict(color="#333", width=1), showlegend=False, offsetgroup="attention",
                         hovertemplate=f"embedding: %{{y:+.3f}} on {label}<extra></extra>"))
    for part, values in (("attention", attr.attn), ("MLP", attr.mlp)):
        fig.add_trace(go.Bar(
            x=x[1:], y=values, name=part, marker_color=_colours(values),
            marker_pattern_shape=PARTS[part], marker_line=dict(color="#333", width=0.5), showlegend=False,
            offsetgroup=part,
            hovertemplate=f"block %{{x}} {part}: %{{y:+.3f}} on {label}<extra></extra>",
        ))
    _legend(fig)
    fig.add_hline(y=0, line_color="#666", line_width=1)
    fig.update_layout(barmode="group", height=height, margin=dict(l=10, r=10, t=50, b=10),
                      title=f"Direct effect on {label} at position {attr.position}",
                      xaxis=dict(title="block (0-based)", type="category"), yaxis_title="logit share",
                      legend=dict(orientation="h", y=1.08))
    return readable(fig)


def summary_rows(attr: Attribution) -> list[dict]:
    """Rows for a small table: each group of shares, their sum, and the model's own logit."""
    rows = [
        ("embedding", attr.embedding),
        ("all attention outputs", float(attr.attn.sum())),
        ("all MLP outputs", float(attr.mlp.sum())),
        ("constant bias (norm + unembedding)", attr.bias),
        ("not explained by the parts", attr.rest),
        ("sum of the shares", attr.total),
        ("model's own logit" if attr.versus is None else "model's own logit difference", attr.logit),
    ]
    return [{"part": name, "logit share": round(value, 4)} for name, value in rows]


def top_contributors(attr: Attribution, n: int = 5) -> list[dict]:
    """The n parts with the largest effect either way, strongest first."""
    parts = [("embedding", attr.embedding)]
    parts += [(f"block {block} attention", float(v)) for block, v in enumerate(attr.attn)]
    parts += [(f"block {block} MLP", float(v)) for block, v in enumerate(attr.mlp)]
    parts.sort(key=lambda p: -abs(p[1]))
    return [{"part": name, "logit share": round(v, 4), "direction": "up" if v >= 0 else "down"}
            for name, v in parts[:n]]
