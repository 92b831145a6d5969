"""The MLP drawn: its stages for one position (each with its shape), the neurons that fire over the
prompt, the strongest neurons of every block at one position, a neuron's activation over the
prompt's tokens, and the tokens a neuron's output column promotes. Token text is escaped text.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.labels import TICK_FONT, axis_labels, blocks_top_down, escape, readable, short

if TYPE_CHECKING:  # types only
    from model.analyses.mlp import MlpSteps

DIVERGING = "RdBu_r"  # blue = negative, red = positive activation
_STAGE_COLOURS = {"stream": "#6b7280", "norm": "#1f77b4", "gate": "#9467bd", "up": "#2ca02c",
                  "act": "#d62728", "hidden": "#ff7f0e", "down": "#17becf", "after": "#6b7280"}


def stages(steps: MlpSteps) -> list[tuple[str, str, np.ndarray]]:
    """(key, title, values) for each stage in order; titles give the stage's shape."""
    D, d = steps.normed.shape[0], steps.hidden.shape[0]
    out: list[tuple[str, str, np.ndarray]] = []
    if steps.stream is not None:
        out.append(("stream", f"1 · the stream entering the MLP's norm ({D},)", steps.stream))
    norm = steps.norm_name or "its norm"
    out.append(("norm", f"2 · after {norm}: the MLP's input x ({D},)", steps.normed))
    if steps.gate is not None:
        out.append(("gate", f"3a · gate = W_gate x ({d},)", steps.gate))
        out.append(("up", f"3b · up = W_up x ({d},)", steps.up))
        out.append(("act", f"4 · activation of the gate ({d},)", steps.activated))
        out.append(("hidden", f"5 · hidden = activation × up: one value per neuron ({d},)", steps.hidden))
    else:
        out.append(("up", f"3 · up = W_up x ({d},)", steps.up))
        out.append(("hidden", f"4-5 · hidden = activation(up): one value per neuron ({d},)", steps.hidden))
    out.append(("down", f"6 · out = W_down hidden: back to the stream ({D},)", steps.out))
    if steps.after is not None:
        out.append(("after", f"7 · stream + out: the stream after block {steps.layer} ({D},)", steps.after))
    return out


def stages_figure(steps: MlpSteps) -> go.Figure:
    """One small line chart per stage (value per dimension or neuron), top to bottom."""
    rows = stages(steps)
    fig = make_subplots(rows=len(rows), cols=1, subplot_titles=[t for _, t, _ in rows], vertical_spacing=0.045)
    for i, (key, _, values) in enumerate(rows, start=1):
        fig.add_trace(go.Scatter(y=values, mode="lines", line=dict(width=1, color=_STAGE_COLOURS[key]),
                                 name=key, showlegend=False,
                                 hovertemplate=f"{escape(key)}[%{{x}}] = %{{y:.4f}}<extra></extra>"), row=i, col=1)
    fig.update_layout(height=150 * len(rows) + 60, margin=dict(l=60, r=10, t=60, b=30),
                      title=f"Block {steps.layer}'s MLP at position {steps.position}, stage by stage "
                            f"({escape(steps.activation)})")
    # Fixed margins wide enough for these numeric ticks: automargin on 16 axes laid the chart out a
    # second time in the browser (0.37 s of a page switch; bench/HISTORY.md, 2026-11-26 fourth pass).
    fig.update_xaxes(automargin=False)
    fig.update_yaxes(automargin=False)
    fig.update_annotations(font_size=12, x=0, xanchor="left")
    return readable(fig)


def top_neurons(values: np.ndarray, n: int) -> np.ndarray:
    """(n,) indices of the largest |values|, largest first (ties to the lower index)."""
    order = np.argsort(-np.abs(np.asarray(values, dtype=np.float64)), kind="stable")
    return order[:n]


def neurons_heatmap(hidden: np.ndarray, tokens: list[str], neurons: np.ndarray, layer: int,
                    window: tuple[int, int] | None = None) -> go.Figure:
    """Positions (rows) x chosen neurons (columns) of one block: hidden (T, d_mlp); hover names all.
    `window` (start, stop) draws only those positions (a long prompt), on the whole prompt's colour scale."""
    T = hidden.shape[0]
    if len(tokens) != T:
        raise ValueError(f"{len(tokens)} tokens for {T} positions")
    start, stop = window if window is not None else (0, T)
    limit = float(np.abs(hidden[:, neurons]).max()) or 1.0
    z = hidden[start:stop, neurons]  # (stop - start, n)
    rows = axis_labels(tokens)[start:stop]
    cols = [f"N{n}" for n in neurons]
    custom = np.array([[row for _ in neurons] for row in rows], dtype=object)  # (rows, n) escaped labels
    fig = go.Figure(go.Heatmap(
        z=z, x=cols, y=rows, zmid=0.0, zmin=-limit, zmax=limit, colorscale=DIVERGING, customdata=custom,
        colorbar=dict(title="activation", thickness=12),
        hovertemplate="token %{customdata}<br>neuron %{x}<br>activation %{z:+.3f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category", tickfont=TICK_FONT)
    fig.update_xaxes(type="category", side="top", tickfont=TICK_FONT)
    fig.update_layout(height=max(320, 20 * len(rows) + 140), margin=dict(l=10, r=10, t=80, b=10),
                      title=f"Block {layer}: the neurons that fire most at the chosen position, over the prompt")
    return readable(fig)


def layers_figure(hidden_at: np.ndarray, n: int, position: int) -> go.Figure:
    """Blocks (rows) x their n strongest neurons at one position (columns by rank); hidden_at (L, d_mlp)."""
    L = hidden_at.shape[0]
    picks = np.stack([top_neurons(hidden_at[b], n) for b in range(L)])  # (L, n)
    z = np.take_along_axis(hidden_at, picks, axis=1)  # (L, n)
    limit = float(np.abs(z).max()) or 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"#{r + 1}" for r in range(n)], y=[f"block {b}" for b in range(L)], text=picks.astype(str),
        texttemplate="%{text}", textfont=dict(size=9), zmid=0.0, zmin=-limit, zmax=limit, colorscale=DIVERGING,
        colorbar=dict(title="activation", thickness=12),
        hovertemplate="%{y}, neuron %{text}<br>activation %{z:+.3f}<extra></extra>",
    ))
    blocks_top_down(fig, type="category")
    fig.update_xaxes(type="category", side="top", title="rank by |activation| (cell text = neuron index)")
    fig.update_layout(height=max(360, 18 * L + 140), margin=dict(l=10, r=10, t=90, b=10),
                      title=f"Every block's strongest neurons at position {position}")
    return readable(fig)


def neuron_tokens_figure(tokens: list[str], activations: np.ndarray, neuron: int, layer: int,
                         per_row: int = 12, window: tuple[int, int] | None = None) -> go.Figure:
    """The prompt's tokens in reading order, each cell coloured by the neuron's activation there.
    `window` (start, stop) draws only those positions (a long prompt), on the whole prompt's colour scale."""
    T = len(tokens)
    if activations.shape != (T,):
        raise ValueError(f"{activations.shape} activations for {T} tokens")
    start, stop = window if window is not None else (0, T)
    n_rows = -(-(stop - start) // per_row)
    z = np.full((n_rows, per_row), np.nan)
    text = np.full((n_rows, per_row), "", dtype=object)
    custom = np.full((n_rows, per_row), "", dtype=object)
    for t in range(start, stop):
        r, c = divmod(t - start, per_row)
        tok = tokens[t]
        z[r, c], text[r, c], custom[r, c] = activations[t], escape(short(tok, 10)), f"{escape(tok)} ({t})"
    limit = float(np.abs(activations).max()) or 1.0
    fig = go.Figure(go.Heatmap(
        z=z, text=text, texttemplate="%{text}", textfont=dict(size=12, family="monospace"), customdata=custom,
        zmid=0.0, zmin=-limit, zmax=limit, colorscale=DIVERGING, xgap=2, ygap=2,
        colorbar=dict(title="activation", thickness=12),
        hovertemplate="%{customdata}<br>activation %{z:+.3f}<extra></extra>",
    ))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(height=60 + 42 * n_rows, margin=dict(l=10, r=10, t=40, b=10),
                      title=f"Block {layer} neuron {neuron} over the prompt")
    return readable(fig)


def effect_rows(neurons: np.ndarray, activations: np.ndarray, effects: np.ndarray) -> list[dict]:
    """A table row per neuron: its activation and its direct share of the metric."""
    return [{"neuron": int(n), "activation": float(activations[n]), "direct effect": float(effects[n])}
            for n in neurons]


def vocab_rows(names: list[str], ids: np.ndarray, by: np.ndarray) -> list[dict]:
    """Tokens a neuron's column moves, with the logit change per unit of activation."""
    return [{"token": t, "id": int(i), "per unit": round(float(v), 4)} for t, i, v in zip(names, ids, by)]
