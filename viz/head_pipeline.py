"""One head's score pipeline as four heatmaps: raw scores, the causal mask applied, the softmax
pattern, and the pattern weighted by each key's value length. Masked cells are drawn grey; every
cell's hover gives the score, whether it is masked, and the weight that results.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import plotly.graph_objects as go

from viz.attention import MASK_GREY
from viz.labels import escape, readable, short, tick_step

if TYPE_CHECKING:  # types only: drawing needs no model code at run time
    from model.analyses.head_pipeline import HeadPipeline

Step = Literal["scores", "masked", "pattern", "value_weighted"]
STEPS: dict[Step, str] = {
    "scores": "(a) raw scores q·k / √d_k",
    "masked": "(b) causal mask applied",
    "pattern": "(c) softmax: the attention pattern",
    "value_weighted": "(d) weight × |value| of each key",
}
MASKED_NAME = "masked (future key)"
CELL_TEXT_MAX = 12  # positions: up to this many, each cell shows its value (two decimals)
_HOVER = ("query %{y}<br>key %{x}<br>score %{customdata[0]:.3f} · %{meta}<br>"
          "weight %{customdata[1]:.3f} · weight×|v| %{customdata[2]:.3f}<extra></extra>")



def _categories(tokens: list[str]) -> list[str]:
    """Unique hover/category labels: '"mole" (pos 7)'."""
    return [f'"{escape(t)}" (pos {i})' for i, t in enumerate(tokens)]


def _window(pipe: HeadPipeline, head: int, start: int, end: int) -> tuple[np.ndarray, ...]:
    """Score, masked flag, weight, weighted, each (W, W) over positions start..end-1."""
    if not 0 <= head < pipe.n_heads:
        raise ValueError(f"head must be in 0..{pipe.n_heads - 1}, got {head}")
    s = slice(start, end)
    weight = pipe.pattern_rows(head, start, end)  # (W, T)
    return (pipe.score_rows(head, start, end)[:, s], pipe.masked[s, s], weight[:, s],
            (weight * pipe.value_norms(head)[None, :])[:, s])


def _values(step: Step, score: np.ndarray, masked: np.ndarray, weight: np.ndarray,
            weighted: np.ndarray) -> np.ndarray:
    """(W, W) what the step colours; NaN where the mask's grey trace takes over."""
    if step == "scores":
        return score
    z = {"masked": score, "pattern": weight, "value_weighted": weighted}[step]
    return np.where(masked, np.nan, z)


def _colours(step: Step, z: np.ndarray) -> dict:
    if step in ("scores", "masked"):
        return dict(colorscale="RdBu_r", zmid=0.0, colorbar=dict(title="score", thickness=12))
    top = float(np.nanmax(z)) if np.isfinite(z).any() else 1.0
    title = "weight" if step == "pattern" else "weight×|v|"
    return dict(colorscale="Blues", zmin=0.0, zmax=max(top, 1e-9), colorbar=dict(title=title, thickness=12))


def _cell_values(z: np.ndarray) -> dict:
    """Each cell's value written in it while the cells are wide enough (CELL_TEXT_MAX positions): near
    ties such as 3.46 and 3.49 share a colour, their numbers do not."""
    if z.shape[-1] > CELL_TEXT_MAX:
        return {}
    text = [["" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in z]
    return dict(text=text, texttemplate="%{text}", textfont=dict(size=12))


def step_figure(pipe: HeadPipeline, head: int, tokens: list[str], step: Step,
                window: tuple[int, int] | None = None, height: int | None = None) -> go.Figure:
    """One step of one head as a (query x key) heatmap over positions window=(start, end)."""
    if len(tokens) != pipe.n_tokens:
        raise ValueError(f"{len(tokens)} tokens but the pipeline covers {pipe.n_tokens} positions")
    start, end = window or (0, len(tokens))
    score, masked, weight, weighted = _window(pipe, head, start, end)
    cats = _categories(tokens)[start:end]
    custom = np.stack([score, weight, weighted], axis=-1)  # (W, W, 3)
    z = _values(step, score, masked, weight, weighted)
    fig = go.Figure(go.Heatmap(z=z, x=cats, y=cats, customdata=custom, hovertemplate=_HOVER,
                               meta="unmasked" if step != "scores" else "mask not applied yet",
                               hoverongaps=False, name=STEPS[step], **_colours(step, z), **_cell_values(z)))
    if step != "scores":
        grey = np.where(masked, 1.0, np.nan).astype(np.float32)  # (W, W) only the masked cells
        fig.add_trace(go.Heatmap(z=grey, x=cats, y=cats, customdata=custom, hovertemplate=_HOVER,
                                 meta="masked: −∞ before softmax", colorscale=[[0, MASK_GREY], [1, MASK_GREY]],
                                 showscale=False, hoverongaps=False, name=MASKED_NAME))
    every = tick_step(end - start, 40)
    short_labels = [f"{escape(short(tokens[i]))} ({i})" for i in range(start, end)]
    ticks = dict(tickmode="array", tickvals=cats[::every], ticktext=short_labels[::every], type="category")
    fig.update_xaxes(title="key (attended to)", tickangle=-60, **ticks)
    fig.update_yaxes(title="query (attending)", autorange="reversed", **ticks)
    height = height or min(760, max(430, 200 + 9 * (end - start)))  # rows stay readable up to 64
    fig.update_layout(title=STEPS[step], height=height, margin=dict(l=10, r=10, t=40, b=10),
                      plot_bgcolor="white")
    return readable(fig)


def head_caption(pipe: HeadPipeline, head: int) -> str:
    """Plain text: which key/value head this query head reads, and who else shares it."""
    kv = pipe.kv_head(head)
    others = [h for h in pipe.heads_sharing(head) if h != head]
    if pipe.group_size == 1:
        return f"Block {pipe.layer}, head {head}: its own keys and values (no sharing). Scale on q·k: {pipe.scaling:.4f}."
    shared = ", ".join(str(h) for h in others)
    return (f"Block {pipe.layer}, head {head} reads key/value head {kv}, shared with query heads {shared} "
            f"(grouped-query attention, {pipe.group_size} query heads per key/value head). "
            f"Scale on q·k: {pipe.scaling:.4f}.")


def weights_caption(pipe: HeadPipeline) -> str | None:
    """Plain text for a long prompt, whose weights are computed here rather than kept from the model's
    pass: what they are and how they were checked. None when the model's own weights are shown."""
    if pipe.weights is not None:
        return None
    whole = pipe.n_heads * pipe.n_tokens ** 2 * 4 / 2**20
    return (f"{pipe.n_tokens:,} tokens: the weights in (c) and (d) are the softmax of these scores, computed for the "
            f"rows drawn (the model's own for every row would take {whole:,.0f} MB), and checked against the "
            "model's own attention on the prompt's first and last rows.")


def sink_caption(pipe: HeadPipeline, head: int) -> str | None:
    """Plain text for a model with learned attention sinks (gpt-oss): why the rows of (c) add up to
    less than 1, and how much went to the sink. None for a model without sinks."""
    if pipe.sinks is None or pipe.sink_weight is None:
        return None
    share = pipe.sink_weight[head]  # (T,)
    return (f"Attention sink: this model gives head {head} one more logit in its softmax ({pipe.sinks[head]:.2f}, "
            "learned in training) that belongs to no token and writes nothing. It took "
            f"{share.min():.0%} to {share.max():.0%} of a row's weight here (mean {share.mean():.0%}), so each row "
            "of (c) adds up to 1 minus that share.")


def sink_row_note(pipe: HeadPipeline, head: int, query: int) -> str | None:
    """One query row's split between the keys and the sink; None for a model without sinks."""
    if pipe.sink_weight is None:
        return None
    sink = float(pipe.sink_weight[head, query])
    return f"The keys share {1 - sink:.3f} of this row's weight; the attention sink took the other {sink:.3f}."
