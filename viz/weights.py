"""Weights at a glance: the parameter tally (model/weights.py) as table rows and one bar chart.
Plain data in, plotly out; the tally's kinds keep the lesson's order (embedding first)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

if TYPE_CHECKING:  # types only: drawing needs no model code at run time
    from model.weights import WeightTally


def shape_text(shapes: tuple[tuple[int, ...], ...]) -> str:
    """'576 × 576' for one shape; several (weights and biases) joined by ' and '."""
    return " and ".join(" × ".join(str(n) for n in shape) for shape in shapes)


def tally_rows(tally: WeightTally) -> list[dict]:
    """One row per kind: how many tensors, their shapes, how many numbers and their share of the total."""
    return [{"kind": k.kind, "tensors": k.tensors, "shape": shape_text(k.shapes), "numbers": k.params,
             "share": k.params / tally.total if tally.total else 0.0, "note": k.note} for k in tally.kinds]


def tally_figure(tally: WeightTally, title: str = "Where the model's numbers live") -> go.Figure:
    """Horizontal bars: numbers per kind (the tied unembedding shows as 0 with its note in the hover)."""
    kinds = [k.kind for k in tally.kinds]
    values = [k.params for k in tally.kinds]
    hovers = [f"{k.tensors} tensor(s) of {shape_text(k.shapes)}<br>{k.params:,} numbers"
              + (f"<br>{k.note}" if k.note else "") for k in tally.kinds]
    text = [f"{v / tally.total:.1%}" if v else (k.note.split(":")[0] or "0") for v, k in zip(values, tally.kinds)]
    fig = go.Figure(go.Bar(x=values, y=kinds, orientation="h", text=text, textposition="outside", cliponaxis=False,
                           customdata=hovers, hovertemplate="%{y}<br>%{customdata}<extra></extra>",
                           marker_color="#4c78a8"))
    fig.update_layout(height=120 + 26 * len(kinds), margin=dict(l=10, r=60, t=40, b=10),
                      title=f"{title}: {tally.total:,} in all",
                      xaxis_title="numbers (parameters)", yaxis=dict(autorange="reversed"))
    return fig
