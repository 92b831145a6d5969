"""The information-flow figure from a seeded synthetic graph: every kept edge drawn once, widths grow
with weight, attention dots carry the (block, head) a click opens, hovers name the head and tokens
stay text."""
from __future__ import annotations

import numpy as np

from model.analyses.flow_graph import EdgeReading, FlowGraph, flow_paths
from viz.flow import edge_rows, flow_figure, level_name, picked_head, reading_columns, reading_rows

TOKENS = ["<b>", "·Mary", "·and", "·John", "·gave"]


def _graph(seed: int = 0) -> FlowGraph:
    """Random shares that add up to 1 into every node, like the real graph's."""
    rng = np.random.default_rng(seed)
    L, T, H = 3, len(TOKENS), 4
    attention = rng.random((L, T, T, H)) * np.tril(np.ones((T, T)))[None, :, :, None]
    residual = rng.random((L, T)) * 3
    total = attention.sum((2, 3)) + residual
    mlp = rng.random((L, T))
    heads, into_mid = (attention / total[..., None, None]).astype(np.float32), (residual / total).astype(np.float32)
    return FlowGraph(TOKENS, mlp.astype(np.float32), (1 - mlp).astype(np.float32), H,
                     lambda layer, rows: (heads[layer, rows], into_mid[layer, rows]))


def test_every_kept_edge_is_drawn_with_width_by_weight():
    paths = flow_paths(_graph(), 4, threshold=0.02)
    fig = flow_figure(paths)
    lines = [t for t in fig.data if t.mode == "lines" and t.showlegend is False]
    drawn = sum(sum(1 for v in t.x if v is None) for t in lines)  # one gap after each edge
    assert drawn == len(paths.edges)
    widths = {t.line.color: [] for t in lines}
    for t in lines:
        widths[t.line.color].append(t.line.width)
    assert all(w == sorted(w) for w in widths.values())  # traces come thin to wide per kind


def test_attention_dots_carry_block_and_top_head_and_hover_names_it():
    paths = flow_paths(_graph(), 4, threshold=0.02)
    fig = flow_figure(paths)
    dots = next(t for t in fig.data if t.name == "attention edges")
    attention = [e for e in paths.edges if e.kind == "attention"]
    assert len(dots.x) == len(attention)
    first = attention[0]
    head = int(np.argmax(first.heads))
    assert list(dots.customdata[0]) == [first.block, head]
    assert f"block {first.block}, head {head}" in dots.hovertext[0]
    from_bos = [h for h, e in zip(dots.hovertext, attention) if e.source[1] == 0]
    assert from_bos and all("&lt;b&gt; (0)" in h for h in from_bos)  # token text, never markup
    assert "<b>" not in " ".join(dots.hovertext)


def test_a_click_point_names_its_head_and_other_points_none():
    assert picked_head([{"x": 1.5, "y": 2.0, "customdata": [7, 3]}]) == (7, 3)
    assert picked_head([{"x": 1.0, "y": 2.5, "customdata": [7, -1]}]) is None  # an MLP dot
    assert picked_head([{"x": 1.0, "y": 2.0}]) is None  # a node


def test_depth_vocabulary_and_table():
    assert [level_name(i) for i in range(4)] == ["embedding", "block 0, after attention", "after block 0",
                                                 "block 1, after attention"]
    rows = edge_rows(flow_paths(_graph(), 4, threshold=0.02), n=3)
    assert len(rows) <= 3 and rows == sorted(rows, key=lambda r: -r["weight"])


def _reading(paths) -> EdgeReading:
    """A reading of the edges into the prediction: head h's part of edge (b, j) is b + j + 1 - h / 4."""
    L, T, H = 3, len(TOKENS), 4
    heads = np.fromfunction(lambda b, j, h: b + j + 1 - h / 4, (L, T, H))
    heads[:, paths.position + 1:] = 0
    return EdgeReading(paths.position, heads)


def test_a_reading_names_the_head_on_each_edge_into_the_prediction():
    paths = flow_paths(_graph(), 4, threshold=0.02)
    reading = _reading(paths)
    metric = "logit(·<b>) − logit(·John)"
    value, head, part = reading_columns(metric)
    rows = edge_rows(paths, None, reading, metric)
    assert len(rows) == sum(e.kind == "attention" for e in paths.edges)  # n=None: every kept head edge
    into = [r for r in rows if r["to"] == "·gave (4)"]
    assert into and all(r[head] == f"L{r['block']} H0" for r in into)  # the most positive part of each
    assert all(r[value] == round(float(reading.edges[r["block"], int(r["from"].split("(")[1][:-1])]), 3) for r in into)
    assert all(r[value] is None and r[head] is None for r in rows if r["to"] != "·gave (4)")
    dots = next(t for t in flow_figure(paths, reading=reading, metric=metric).data if t.name == "attention edges")
    hovers = [h for h, e in zip(dots.hovertext, [e for e in paths.edges if e.kind == "attention"]) if e.target[1] == 4]
    assert all("logit(·&lt;b&gt;) − logit(·John) via this edge" in h and "most by head 0" in h for h in hovers)
    strongest = reading_rows(reading, paths, np.zeros((3, len(TOKENS))), metric, n=3)
    assert [(r["block"], r["from"]) for r in strongest] == [(2, "·gave (4)"), (1, "·gave (4)"), (2, "·John (3)")]
    assert all(isinstance(r["in the graph"], bool) for r in strongest)
