"""Activation patching drawn: layer x position (or layer x head) heatmaps of the normalised metric
(1 = the clean answer fully back, 0 = as corrupted) on a diverging scale centred at 0, the two
prompts' tokens aligned position by position, and exact vs estimate as a scatter. Plain arrays in,
plotly or escaped HTML out.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .labels import TICK_FONT, blocks_top_down, escape, readable, short, stream_names

VIEW_TITLES = {
    "residual": "Residual stream",
    "attn_out": "Attention output",
    "mlp_out": "MLP output",
    "heads": "Attention heads (all positions)",
}
_SCALE = "RdBu"  # red below 0, white at 0, blue towards the clean answer
_DIFFERS = "#fde2b8"


def layer_labels(view: str, n: int) -> list[str]:
    """The y labels: the residual stream's names (embedding, after block l), or "block l"."""
    return stream_names(n) if view == "residual" else [f"block {i}" for i in range(n)]


def position_labels(clean: list[str], corrupted: list[str]) -> list[str]:
    """One x label per position: the clean token, and "clean/corrupted" where the prompts differ."""
    if len(clean) != len(corrupted):
        raise ValueError(f"the prompts have {len(clean)} and {len(corrupted)} tokens")
    return [f"{escape(short(a, 10))}{'' if a == b else '/' + escape(short(b, 10))} ({i})"
            for i, (a, b) in enumerate(zip(clean, corrupted))]


def column_labels(view: str, clean: list[str], corrupted: list[str], n_heads: int) -> list[str]:
    return [f"head {h}" for h in range(n_heads)] if view == "heads" else position_labels(clean, corrupted)


def patching_heatmap(values: np.ndarray, rows: list[str], cols: list[str], title: str,
                     ran: np.ndarray | None = None) -> go.Figure:
    """(rows, cols) normalised metric, the first row drawn on top (the embedding or block 0, as in every
    block figure; head 0 in one block's heads); hover says how much of the clean answer came back.
    Cells a patch cannot change (`ran` False) say so in their hover."""
    if values.shape != (len(rows), len(cols)):
        raise ValueError(f"values {values.shape} vs {len(rows)} row and {len(cols)} column labels")
    span = max(1.0, float(np.abs(values).max()))  # 1 always inside the scale: clean is full colour
    note = np.where(ran, "", " (same in both runs: not patched)") if ran is not None else np.full(values.shape, "")
    fig = go.Figure(go.Heatmap(
        z=values, x=cols, y=rows, zmid=0, zmin=-span, zmax=span, colorscale=_SCALE, xgap=1, ygap=1,
        customdata=note, colorbar=dict(title="clean = 1<br>corrupted = 0", thickness=12),
        hovertemplate="%{y} · %{x}<br>%{z:.3f} of the clean answer recovered%{customdata}<extra></extra>",
    ))
    fig.update_layout(title=title, height=max(320, 22 * len(rows) + 140), margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(tickfont=TICK_FONT, tickangle=-45, type="category")
    blocks_top_down(fig, tickfont=TICK_FONT, type="category")
    return readable(fig)


def agreement_figure(exact: np.ndarray, estimate: np.ndarray, ran: np.ndarray, labels: list[str]) -> go.Figure:
    """Exact patching (x) against attribution patching (y) over the cells that ran; the diagonal is
    perfect agreement. labels: one hover text per cell that ran, in row-major order."""
    x, y = exact[ran], estimate[ran]
    if len(labels) != x.size:
        raise ValueError(f"{len(labels)} labels for {x.size} cells")
    low = float(min(x.min(initial=0), y.min(initial=0)))
    high = float(max(x.max(initial=1), y.max(initial=1)))
    fig = go.Figure([
        go.Scatter(x=[low, high], y=[low, high], mode="lines", line=dict(color="#b8bfcc", dash="dot"),
                   hoverinfo="skip", showlegend=False),
        go.Scatter(x=x, y=y, mode="markers", marker=dict(color="#3d6fd6", size=7, opacity=0.75), text=labels,
                   hovertemplate="%{text}<br>exact %{x:.3f} · estimate %{y:.3f}<extra></extra>", showlegend=False),
    ])
    fig.update_layout(title="Estimate vs exact, one dot per patched cell", height=380,
                      margin=dict(l=10, r=10, t=50, b=10), xaxis_title="exact patching",
                      yaxis_title="attribution patching (estimate)")
    return readable(fig)


def cell_names(rows: list[str], cols: list[str], ran: np.ndarray) -> list[str]:
    """'row · col' for each cell that ran, row-major (the order of `values[ran]`)."""
    return [f"{rows[r]} · {cols[c]}" for r, c in zip(*np.nonzero(ran))]


def aligned_tokens_html(clean: list[str], corrupted: list[str]) -> str:
    """Both prompts' tokens in one table, position over position; differing positions shaded.
    Token text is escaped: it shows as characters, never as markup."""
    n = max(len(clean), len(corrupted))

    def cell(tokens: list[str], i: int, shade: bool) -> str:
        text = escape(tokens[i]) if i < len(tokens) else "—"
        style = f"background:{_DIFFERS};" if shade else ""
        return f'<td style="{style}padding:2px 6px;border:1px solid #e3e6ec;white-space:pre">{text}</td>'

    rows = []
    for name, tokens in (("clean", clean), ("corrupted", corrupted)):
        cells = "".join(cell(tokens, i, i >= min(len(clean), len(corrupted)) or clean[i] != corrupted[i])
                        for i in range(n))
        rows.append(f'<tr><th style="text-align:left;padding:2px 8px">{name}</th>{cells}</tr>')
    head = "".join(f'<td style="color:#8a93a3;font-size:11px;text-align:center">{i}</td>' for i in range(n))
    return ('<div style="overflow-x:auto"><table style="border-collapse:collapse;font-family:ui-monospace,'
            f'monospace;font-size:13px"><tr><th></th>{head}</tr>{"".join(rows)}</table></div>')


def plain_position_labels(clean: list[str], corrupted: list[str]) -> list[str]:
    """position_labels as plain text, untruncated: for tables and CSV files, which show text as is."""
    if len(clean) != len(corrupted):
        raise ValueError(f"the prompts have {len(clean)} and {len(corrupted)} tokens")
    return [f"{a}{'' if a == b else '/' + b} ({i})" for i, (a, b) in enumerate(zip(clean, corrupted))]


def plain_column_labels(view: str, clean: list[str], corrupted: list[str], n_heads: int) -> list[str]:
    """column_labels as plain text (see plain_position_labels)."""
    return [f"head {h}" for h in range(n_heads)] if view == "heads" else plain_position_labels(clean, corrupted)


def top_rows(cells: list[tuple[int, int, float]], estimate: np.ndarray, rows: list[str], cols: list[str]) -> list[dict]:
    """The strongest exact cells (row, column, value) with the estimate beside each: a table row each,
    named in plain text, with both indices for a CSV."""
    return [{"where": f"{rows[r]} · {cols[c]}", "exact": v, "estimate": float(estimate[r, c]), "row index": r,
             "column index": c} for r, c, v in cells]


def head_labels(n_heads: int) -> list[str]:
    """The y labels of one block's heads x positions grid."""
    return [f"head {h}" for h in range(n_heads)]


def head_positions_title(layer: int) -> str:
    """What the heads x positions grid of one block shows (a VIEW_TITLES entry for one block)."""
    return f"Block {layer}'s heads, one position at a time"
