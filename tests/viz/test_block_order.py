"""One block order in every figure with blocks on an axis: as rows, the embedding and block 0 on top and
deeper blocks below (the lesson's "embedding, block 0, block 1…", viz/labels.blocks_top_down); as
columns, block 0 on the left. Each figure is built from plain data and its rows are read back the way
plotly will draw them, so a new figure (or a changed one) that drifts fails here."""
from __future__ import annotations

import re

import numpy as np
import pytest

from model.analyses.attribution import Attribution
from model.analyses.flow_graph import FlowGraph, flow_paths
from model.analyses.head_attribution import HeadAttribution
from model.analyses.logit_lens import LogitLens
from model.analyses.patchscope import IdentityPrompt, Patchscope
from viz import head_grid
from viz.attribution import attribution_figure
from viz.flow import flow_figure
from viz.head_attribution import head_heatmap
from viz.logit_lens import lens_heatmap
from viz.mlp import layers_figure
from viz.patching import column_labels, layer_labels, patching_heatmap
from viz.patchscope import reading_figure

L, H, T = 4, 3, 5
TOKENS = ["When", "·Mary", "·and", "·John", "·to"]


def _reversed(axis) -> bool:
    """Plotly's y axis runs upward unless reversed by autorange or by a range from high to low."""
    if axis.autorange == "reversed":
        return True
    return axis.range is not None and axis.autorange is not True and axis.range[0] > axis.range[1]


def rows_top_down(fig) -> list[str]:
    """The y labels in the order plotly draws them, top row first. A category axis's categories come in
    the order of the first trace's y (plotly's default "trace" order), the first at the bottom; a
    numeric axis's labels are its tick texts, the smallest value at the bottom."""
    axis = fig.layout.yaxis
    if axis.type == "category":
        labels = list(dict.fromkeys(fig.data[0].y))
    else:
        labels = [text for _, text in sorted(zip(axis.tickvals, axis.ticktext))]
    return labels if _reversed(axis) else labels[::-1]


def block_numbers(labels: list[str]) -> list[int]:
    """-1 for the embedding, b for 'block b', 'after block b' (or any label naming block b)."""
    return [-1 if label == "embedding" else int(re.search(r"block (\d+)", label).group(1)) for label in labels]


def _flow_graph() -> FlowGraph:
    rng = np.random.default_rng(0)
    heads = rng.random((L, T, T, H)).astype(np.float32) * np.tril(np.ones((T, T), dtype=np.float32))[None, :, :, None]
    total = heads.sum((2, 3)) + 1.0
    mlp = np.full((L, T), 0.5, dtype=np.float32)
    return FlowGraph(TOKENS, mlp, 1 - mlp, H, lambda layer, rows: (heads[layer, rows] / total[layer, rows, None, None],
                                                                   1 / total[layer, rows]))


def _lens() -> LogitLens:
    zeros = np.zeros((L + 1, T))
    return LogitLens(top_ids=zeros.astype(np.int64), top_probs=zeros.astype(np.float32),
                     target_ids=np.zeros(T, dtype=np.int64), target_probs=zeros.astype(np.float32),
                     target_ranks=zeros.astype(np.int64), positions=np.arange(T, dtype=np.int64))


def _patchscope() -> Patchscope:
    zeros = np.zeros((L + 1, 2))
    return Patchscope(IdentityPrompt("? ->", (1, 2), 0), tuple((r, 0) for r in range(L + 1)), zeros.astype(np.int64),
                      zeros.astype(np.float32), (("a", "b"),) * (L + 1), ("",) * (L + 1), np.zeros(2, dtype=np.int64),
                      np.zeros(2, dtype=np.float32))


def _row_figures() -> dict:
    values = np.zeros((L, T))
    return {
        "attribution heads": head_heatmap(HeadAttribution(4, np.arange(L * H, dtype=float).reshape(L, H), np.zeros(L)),
                                          "logit(·Mary)"),
        "patching residual": patching_heatmap(np.zeros((L + 1, T)), layer_labels("residual", L + 1),
                                              column_labels("residual", TOKENS, TOKENS, H), "residual"),
        "patching attention": patching_heatmap(values, layer_labels("attn_out", L),
                                               column_labels("attn_out", TOKENS, TOKENS, H), "attention"),
        "patching heads": patching_heatmap(np.zeros((L, H)), layer_labels("heads", L),
                                           column_labels("heads", TOKENS, TOKENS, H), "heads"),
        "mlp layers": layers_figure(np.random.default_rng(0).normal(size=(L, 16)), 3, 4),
        "logit lens": lens_heatmap(_lens(), TOKENS, np.full((L + 1, T), "a", dtype=object), ["a"] * T),
        "patchscope": reading_figure(_patchscope(), ["a"] * (L + 1), np.zeros(L + 1), 0, "When"),
        "information flow": flow_figure(flow_paths(_flow_graph(), T - 1, threshold=0.0)),
    }


ROW_FIGURES = _row_figures()


@pytest.mark.parametrize("name", list(ROW_FIGURES))
def test_block_rows_read_downward_from_block_0(name: str) -> None:
    blocks = block_numbers(rows_top_down(ROW_FIGURES[name]))
    assert blocks[0] in (-1, 0)  # the embedding or block 0 on top
    assert blocks == sorted(blocks) and blocks[-1] == L - 1  # deeper blocks below, the last at the bottom


def test_the_reader_sees_plotlys_own_order() -> None:
    """The reader above, on plotly's defaults: an unreversed category axis draws its first row at the bottom."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(z=np.zeros((2, 1)), y=["block 0", "block 1"]))
    fig.update_yaxes(type="category")
    assert rows_top_down(fig) == ["block 1", "block 0"]


def test_block_columns_run_left_to_right_from_block_0() -> None:
    grid = head_grid.grid_figure(np.zeros((L, H, T, T), dtype=np.float32),
                                 {k: np.zeros((L, H), dtype=np.float32) for k in head_grid.BADGES}, (0, 0))
    low, high = grid.layout.xaxis.range
    points = next(t for t in grid.data if t.name == "pick a head")
    assert low < high and points.x[0] == 0 and points.x[-1] == L - 1  # x = block, block 0 leftmost
    attr = Attribution(position=4, token_id=1, norm_kind="rms", embedding=0.0, attn=np.zeros(L), mlp=np.zeros(L),
                       bias=0.0, rest=0.0, logit=0.0, scale=1.0)
    bars = attribution_figure(attr, "·Mary")
    assert bars.layout.xaxis.autorange != "reversed"
    drawn = list(dict.fromkeys(x for t in bars.data for x in t.x if x is not None))
    assert drawn == ["embedding"] + [str(b) for b in range(L)]
