"""Generation history: which token each step chose and how likely it was, and the alternatives the
model weighed at a step. Steps come from model.analyses.generation; nothing here runs a model.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from model.analyses.generation import Step
from model.analyses.sampling import rank_of

from .labels import TICK_FONT, escape, percent, readable, short

_BAR, _SELECTED = "#3b6fd8", "#e8890c"
TICK_ROW = 80  # characters of step labels that fit upright side by side; more are drawn slanted


def step_labels(steps: list[Step], width: int = 14) -> list[str]:
    """One escaped, unique category per step: '3: ·Paris'."""
    return [f"{s.index + 1}: {escape(short(s.token, width))}" for s in steps]


def history_figure(steps: list[Step], selected: int | None = None) -> go.Figure:
    """A bar per generated token: the probability it had when chosen; the selected step stands out."""
    if not steps:
        raise ValueError("no generation steps to draw")
    x = step_labels(steps)
    probs = np.array([s.probability for s in steps])  # (S,)
    colors = [_SELECTED if s.index == selected else _BAR for s in steps]
    alt = ["<br>".join(f"{escape(t)}: {percent(p)}" for _, t, p in s.alternatives[:5]) for s in steps]
    fig = go.Figure(go.Bar(
        x=x, y=probs, marker_color=colors, customdata=alt, text=[percent(p) for p in probs], textposition="outside",
        cliponaxis=False, hovertemplate="step %{x}<br>p = %{y:.3g}<br><br>alternatives:<br>%{customdata}<extra></extra>",
    ))
    fig.update_layout(
        height=300, margin=dict(l=10, r=10, t=30, b=10), yaxis=dict(title="probability when chosen", range=[0, 1.15]),
        xaxis=dict(type="category", tickangle=-45 if len(steps) * max(map(len, x)) > TICK_ROW else 0, tickfont=TICK_FONT),
        title="Each generated token and how likely it was",
    )
    return readable(fig)


def alternatives_rows(step: Step) -> list[dict]:
    """The top alternatives at a step, with the chosen one marked; a chosen token below them (sampled far
    down) comes last with its rank (sampling keeps the logits' order)."""
    rows = [{"rank": r + 1, "token": t, "id": i, "probability": p, "chosen": i == step.token_id}
            for r, (i, t, p) in enumerate(step.alternatives)]
    if not any(row["chosen"] for row in rows):
        rows.append({"rank": rank_of(step.logits, step.token_id), "token": step.token, "id": step.token_id,
                     "probability": step.probability, "chosen": True})
    return rows


def history_rows(steps: list[Step]) -> list[dict]:
    """One row per step: the token chosen, its probability, and the runner-up."""
    rows = []
    for s in steps:
        runner = next(((t, p) for i, t, p in s.alternatives if i != s.token_id), ("", 0.0))
        rows.append({"step": s.index + 1, "token": s.token, "id": s.token_id, "probability": s.probability,
                     "runner-up": runner[0], "runner-up probability": runner[1]})
    return rows
