"""Steering's figures and tables: each continuation's tokens read by the unsteered and the steered model,
the next tokens whose probability moved most, and what a direction reads as. Plain numbers in, plotly
figures and rows out; nothing here runs a model."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .labels import TICK_FONT, escape, percent, points, readable, short

DEFAULT_COLOR, STEERED_COLOR = "#3b6fd8", "#e8890c"


def _categories(tokens: Sequence[str], width: int = 12) -> list[str]:
    """One escaped, unique category per token: '3: ·Paris'."""
    return [f"{i + 1}: {escape(short(t, width))}" for i, t in enumerate(tokens)]


def token_scores_figure(tokens: Sequence[str], by_default: np.ndarray, by_steered: np.ndarray, title: str) -> go.Figure:
    """Two bars per token of one continuation: its log-probability under the unsteered and the steered model."""
    x = _categories(tokens)
    fig = go.Figure([
        go.Bar(x=x, y=np.asarray(by_default), name="unsteered model", marker_color=DEFAULT_COLOR,
               hovertemplate="%{x}<br>log p = %{y:.2f}<extra>unsteered</extra>"),
        go.Bar(x=x, y=np.asarray(by_steered), name="steered model", marker_color=STEERED_COLOR,
               hovertemplate="%{x}<br>log p = %{y:.2f}<extra>steered</extra>"),
    ])
    fig.update_layout(
        title=title, barmode="group", height=300, margin=dict(l=10, r=10, t=40, b=10),
        yaxis=dict(title="log-probability (0 = certain)"),
        xaxis=dict(type="category", tickangle=-45 if len(x) > 8 else 0, tickfont=TICK_FONT),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    return readable(fig)


def moved_figure(tokens: Sequence[str], p_default: np.ndarray, p_steered: np.ndarray,
                 title: str = "Next token after the prompt: the probabilities that moved most") -> go.Figure:
    """The next tokens after the prompt whose probability moved most: before and after, side by side."""
    y = [escape(short(t, 16)) for t in tokens]
    change = [points(float(b - a)) for a, b in zip(p_default, p_steered)]
    before = [percent(float(p)) for p in p_default]  # hover text: a tiny probability reads <0.1%, never 0.00%
    after = [[percent(float(p)), moved] for p, moved in zip(p_steered, change)]
    fig = go.Figure([
        go.Bar(y=y, x=np.asarray(p_default), orientation="h", name="unsteered", marker_color=DEFAULT_COLOR,
               customdata=before, hovertemplate="%{y}: %{customdata}<extra>unsteered</extra>"),
        go.Bar(y=y, x=np.asarray(p_steered), orientation="h", name="steered", marker_color=STEERED_COLOR,
               customdata=after, hovertemplate="%{y}: %{customdata[0]} (%{customdata[1]})<extra>steered</extra>"),
    ])
    fig.update_layout(
        title=title, barmode="group",
        height=max(260, 34 * len(y)), margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(title="probability", tickformat=".2~%"),  # small moves: 0.05%, not five ticks of 0%
        yaxis=dict(type="category", autorange="reversed", tickfont=TICK_FONT),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    return readable(fig)


def reading_rows(promoted: Sequence[str], promoted_by: np.ndarray, suppressed: Sequence[str],
                 suppressed_by: np.ndarray, similar: Sequence[str], similar_cos: np.ndarray) -> list[dict]:
    """One row per rank: the tokens the direction pushes up and down most, and the embeddings nearest it
    (tokens as text: a table shows them as typed, never as markup)."""
    return [{"rank": i + 1, "pushed up": up, "logit +": round(float(u), 2), "pushed down": down,
             "logit −": round(float(d), 2), "nearest embedding": near, "cosine": round(float(c), 3)}
            for i, (up, u, down, d, near, c) in enumerate(zip(promoted, promoted_by, suppressed, suppressed_by,
                                                              similar, similar_cos))]


def norm_sentence(direction_norm: float, coefficient: float, stream_norm: float, block: int) -> str:
    """The teaching line under the settings: how big the push is next to the stream it is added to."""
    added = abs(coefficient) * direction_norm
    ratio = added / stream_norm if stream_norm > 0 else float("inf")
    return (f"The direction's length is {direction_norm:,.1f}; times the coefficient {coefficient:g} the model's "
            f"stream gains a vector of length {added:,.1f} at every steered position, about {ratio:.2g}× the "
            f"stream's typical length entering block {block} ({stream_norm:,.1f}, the median over this prompt's "
            "tokens).")
