"""Weights at a glance: the parameter tally (model/analyses/weights.py) as table rows and one bar chart.
Plain data in, plotly out; the tally's kinds keep the lesson's order (embedding first). A kind can be
`hidden`: its count (and anything it could be worked back from: shares, the total) is left out, for a
lesson task that asks the learner to work that count out."""
from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from viz.labels import readable

if TYPE_CHECKING:  # types only: drawing needs no model code at run time
    from model.analyses.weights import WeightTally

ASKED = "? (work it out)"  # shown instead of a count the learner is asked for


def shape_text(shapes: tuple[tuple[int, ...], ...]) -> str:
    """'576 × 576' for one shape; several (weights and biases) joined by ' and '."""
    return " and ".join(" × ".join(str(n) for n in shape) for shape in shapes)


def compact(n: int) -> str:
    """'84.9 M', '12.3 k', '576': a count short enough for a bar's end."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} M"
    return f"{n / 1_000:.1f} k" if n >= 1_000 else str(n)


def tally_rows(tally: WeightTally, hidden: tuple[str, ...] = ()) -> list[dict]:
    """One row per kind: how many tensors, their shapes, how many numbers and their share of the total.
    With `hidden` kinds the numbers are text, the hidden ones ASKED, and no share is given."""
    if not hidden:
        return [{"kind": k.kind, "tensors": k.tensors, "shape": shape_text(k.shapes), "numbers": k.params,
                 "share": k.params / tally.total if tally.total else 0.0, "note": k.note} for k in tally.kinds]
    return [{"kind": k.kind, "tensors": k.tensors, "shape": shape_text(k.shapes),
             "numbers": ASKED if k.kind in hidden else f"{k.params:,}", "note": k.note} for k in tally.kinds]


def _bar_text(tally: WeightTally, hidden: tuple[str, ...]) -> list[str]:
    """Each bar's end: its share of the total, or (with hidden kinds) its count in short, ASKED for those."""
    def one(kind) -> str:
        if kind.kind in hidden:
            return ASKED
        if not kind.params:
            return kind.note.split(":")[0] or "0"
        return compact(kind.params) if hidden else f"{kind.params / tally.total:.1%}"
    return [one(k) for k in tally.kinds]


def _hover(kind, hidden: tuple[str, ...]) -> str:
    count = "how many numbers? Multiply the shape." if kind.kind in hidden else f"{kind.params:,} numbers"
    return f"{kind.tensors} tensor(s) of {shape_text(kind.shapes)}<br>{count}" + (f"<br>{kind.note}" if kind.note else "")


def tally_figure(tally: WeightTally, title: str = "Where the model's numbers live",
                 hidden: tuple[str, ...] = ()) -> go.Figure:
    """Horizontal bars: numbers per kind (the tied unembedding shows as 0 with its note in the hover).
    Hidden kinds keep their bar but show no count; the title then gives no total."""
    kinds = [k.kind for k in tally.kinds]
    values = [k.params for k in tally.kinds]
    fig = go.Figure(go.Bar(x=values, y=kinds, orientation="h", text=_bar_text(tally, hidden), textposition="outside",
                           cliponaxis=False, customdata=[_hover(k, hidden) for k in tally.kinds],
                           hovertemplate="%{y}<br>%{customdata}<extra></extra>", marker_color="#4c78a8"))
    fig.update_layout(height=120 + 26 * len(kinds), margin=dict(l=10, r=110 if hidden else 60, t=40, b=10),
                      title=title if hidden else f"{title}: {tally.total:,} in all",
                      xaxis_title="numbers (parameters)", yaxis=dict(autorange="reversed"))
    return readable(fig)
