"""One position's streams read two ways, side by side: the logit lens's top token (the unembedding's
reading) and patchscope's top tokens (the model's own reading through an identity prompt), one row per
stream, coloured by probability, the greedy continuation on hover.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from viz.labels import TICK_FONT, blocks_top_down, cell_text, escape, percent, readable, stream_name, tick_label_px

if TYPE_CHECKING:  # types only: drawing needs no model code at run time
    from model.analyses.patchscope import Patchscope

CELL_PX = 110  # px per column: cell text is cut to fit it


def columns(k: int) -> list[str]:
    """The lens's column, then patchscope's k ranks."""
    return ["logit lens"] + [f"patchscope #{i + 1}" for i in range(k)]


def _hover(row: str, lens: tuple[str, float], reading: Patchscope, r: int, k: int) -> list[str]:
    """Escaped hover strings of one row's k + 1 cells."""
    more = f"<br>patchscope continues: {escape(reading.continuations[r])}" if reading.continuations[r] else ""
    cells = [f"{row}<br>logit lens top: {escape(lens[0])} {percent(lens[1])}"]
    cells += [f"{row}<br>patchscope #{i + 1}: {escape(reading.top_texts[r][i])} {percent(reading.top_probs[r, i])}{more}"
              for i in range(k)]
    return cells


def reading_figure(reading: Patchscope, lens_texts: Sequence[str], lens_probs: np.ndarray, position: int,
                   token: str) -> go.Figure:
    """Heatmap (one row per cell's stream x (1 + k) columns): the lens's top token at each stream, then
    patchscope's k most likely tokens; text = token cut to its cell, colour = its probability."""
    n, k = reading.top_ids.shape
    if len(lens_texts) != n or len(lens_probs) != n:
        raise ValueError(f"patchscope has {n} rows, got {len(lens_texts)} lens texts and {len(lens_probs)} probabilities")
    rows = [stream_name(layer) for layer, _ in reading.cells]
    texts = [[lens_texts[r], *reading.top_texts[r]] for r in range(n)]
    z = np.column_stack([np.asarray(lens_probs, dtype=np.float32), reading.top_probs])  # (n, 1 + k)
    hover = [_hover(rows[r], (lens_texts[r], float(lens_probs[r])), reading, r, k) for r in range(n)]
    x = columns(k)
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=rows, zmin=0.0, zmax=1.0, colorscale="Viridis", colorbar=dict(title="probability", thickness=12),
        text=[[cell_text(t, CELL_PX) for t in row] for row in texts], texttemplate="%{text}", textfont=dict(size=11),
        customdata=hover, hovertemplate="%{customdata}<extra></extra>", xgap=1,
    ))
    fig.add_vline(x=0.5, line_color="white", line_width=4)  # the lens apart from patchscope
    fig.update_xaxes(type="category", side="top", tickfont=TICK_FONT)
    blocks_top_down(fig, title="residual stream read", type="category", tickfont=TICK_FONT, automargin=False)
    fig.update_layout(height=max(360, 18 * n + 160), margin=dict(l=tick_label_px(rows) + 40, r=10, t=110, b=10),
                      title=f"Position {position} ({escape(token)}): the logit lens and patchscope")
    return readable(fig)
