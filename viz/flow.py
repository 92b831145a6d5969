"""The information-flow graph drawn: tokens left to right, residual states top to bottom like every
block figure (the embedding on top, then two rows per block: after its attention, after its MLP),
one line per kept edge, its width by weight and its colour by kind. A marker at the middle of each
edge carries the hover and, for attention edges, the (block, head) a click opens.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from viz.labels import TICK_FONT, axis_labels, blocks_top_down, escape, fit_ticks, readable

if TYPE_CHECKING:  # types only: drawing needs no model code at run time
    from model.analyses.flow_graph import Edge, EdgeReading, FlowPaths

COLOURS = {"attention": "#e66101", "mlp": "#5e3c99", "residual": "#8c8c8c"}
NAMES = {"attention": "attention head", "mlp": "MLP", "residual": "residual"}
WIDTH_BINS = 6  # line widths per kind: one trace each (plotly has one width per trace)
MAX_WIDTH = 9.0
BULGE = 0.22  # how far an MLP edge (right) or a head reading its own position (left) bows sideways
HEADS_IN_HOVER = 3


def level_name(level: int) -> str:
    """The depth vocabulary for a row of the graph: embedding, after block l's attention, after block l."""
    if level == 0:
        return "embedding"
    block = (level - 1) // 2
    return f"block {block}, after attention" if level % 2 else f"after block {block}"


def _y(level: int) -> float:
    """Rows in block units: the stream leaving block l sits at l + 1, its mid state at l + 0.5."""
    return level / 2


def _points(edge: Edge) -> tuple[list[float], list[float]]:
    """The polyline of one edge: straight, or bowed through a side point where it would overlap the
    residual line (an MLP edge, or a head reading its own position)."""
    (l0, x0), (l1, x1) = edge.source, edge.target
    y0, y1 = _y(l0), _y(l1)
    if edge.kind == "mlp":
        return [x0, x0 + BULGE, x1], [y0, (y0 + y1) / 2, y1]
    if edge.kind == "attention" and x0 == x1:
        return [x0, x0 - BULGE, x1], [y0, (y0 + y1) / 2, y1]
    return [x0, x1], [y0, y1]


def _middle(edge: Edge) -> tuple[float, float]:
    xs, ys = _points(edge)
    if len(xs) == 3:
        return xs[1], ys[1]
    return (xs[0] + xs[1]) / 2, (ys[0] + ys[1]) / 2


def _bin(weight: float, threshold: float) -> int:
    span = max(1e-9, 1.0 - threshold)
    return min(WIDTH_BINS - 1, int((weight - threshold) / span * WIDTH_BINS))


def _line_traces(edges: list[Edge], threshold: float) -> list[go.Scatter]:
    """One trace per (kind, width bin): each edge a polyline, separated by gaps (None)."""
    groups: dict[tuple[str, int], tuple[list, list]] = {}
    for e in edges:
        xs, ys = groups.setdefault((e.kind, _bin(e.weight, threshold)), ([], []))
        px, py = _points(e)
        xs += px + [None]
        ys += py + [None]
    traces = []
    for (kind, b), (xs, ys) in sorted(groups.items()):
        width = 0.8 + (MAX_WIDTH - 0.8) * (b + 0.5) / WIDTH_BINS
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                 line=dict(color=COLOURS[kind], width=width), opacity=0.55 if kind == "residual" else 0.8))
    return traces


def top_head(edge: Edge) -> int:
    """The head that carries the most of an attention edge (the one a click opens)."""
    return int(np.argmax(edge.heads))


def reads(edge: Edge, reading: EdgeReading | None) -> bool:
    """Whether the reading covers this edge: an attention edge into the position it was read at."""
    return reading is not None and edge.kind == "attention" and edge.target[1] == reading.position


def _reading_line(edge: Edge, reading: EdgeReading | None, metric: str) -> str:
    """'<br>logit(·Mary) − logit(·John) via this edge: +3.57, most by head 0 (+1.14)', or '' off the reading."""
    if not reads(edge, reading):
        return ""
    j = edge.source[1]
    h = reading.carrier(edge.block, j)
    return (f"<br>{escape(metric)} via this edge: {reading.edges[edge.block, j]:+.3f}, most by head {h} "
            f"({reading.heads[edge.block, j, h]:+.3f})")


def _hover(edge: Edge, tokens: list[str], reading: EdgeReading | None = None, metric: str = "") -> str:
    j, i = edge.source[1], edge.target[1]
    source, target = escape(tokens[j]), escape(tokens[i])
    if edge.kind == "mlp":
        return f"MLP, block {edge.block}, at {target} ({i})<br>weight {edge.weight:.3f}"
    order = np.argsort(edge.heads)[::-1][:HEADS_IN_HOVER]
    heads = "<br>".join(f"block {edge.block}, head {h}: {edge.heads[h]:.3f}" for h in order)
    return (f"attention, block {edge.block}: {source} ({j}) → {target} ({i})<br>weight {edge.weight:.3f} "
            f"(all heads)<br>{heads}{_reading_line(edge, reading, metric)}<br>"
            f"<i>click: open block {edge.block}, head {top_head(edge)}</i>")


def _marker_traces(edges: list[Edge], tokens: list[str], reading: EdgeReading | None = None,
                   metric: str = "") -> list[go.Scatter]:
    """Midpoint markers: attention ones (visible) carry (block, head) to click; MLP ones (invisible, at
    the bow's apex) only hover. Residual edges get none: a dot on their line would steal the clicks
    meant for the head dots beside it (the nodes at both ends hover instead)."""
    traces = []
    for kind in ("attention", "mlp"):
        chosen = [e for e in edges if e.kind == kind]
        if not chosen:
            continue
        mids = [_middle(e) for e in chosen]
        custom = [[e.block, top_head(e) if kind == "attention" else -1] for e in chosen]
        traces.append(go.Scatter(
            x=[m[0] for m in mids], y=[m[1] for m in mids], mode="markers", name=f"{kind} edges",
            marker=dict(size=7 if kind == "attention" else 5, color=COLOURS[kind],
                        opacity=0.9 if kind == "attention" else 0.0, line=dict(width=0)),
            customdata=custom, hovertext=[_hover(e, tokens, reading, metric) for e in chosen], hoverinfo="text",
            showlegend=False))
    return traces


def _legend() -> list[go.Scatter]:
    """Legend-only entries: a short line per kind in its colour."""
    return [go.Scatter(x=[None], y=[None], mode="lines", name=NAMES[kind], line=dict(color=colour, width=4),
                       hoverinfo="skip") for kind, colour in COLOURS.items()]


def _node_trace(paths: FlowPaths) -> go.Scatter:
    nodes = sorted(paths.nodes)
    return go.Scatter(x=[n[1] for n in nodes], y=[_y(n[0]) for n in nodes], mode="markers", hoverinfo="text",
                      hovertext=[f"{escape(paths.tokens[p])} ({p}), {level_name(lv)}" for lv, p in nodes],
                      marker=dict(size=4, color="#1f2430"), name="residual state", showlegend=False)


def flow_figure(paths: FlowPaths, *, width_px: int = 1100, reading: EdgeReading | None = None,
                metric: str = "") -> go.Figure:
    """The pruned graph as one plotly figure (the embedding on top, the prediction's state at the
    bottom, tokens left to right). With a reading of the edges into the prediction through `metric`
    (plain text, e.g. 'logit(·Mary) − logit(·John)'), their hovers give it and the head carrying most."""
    T, L = len(paths.tokens), paths.n_layers
    fig = go.Figure(_line_traces(paths.edges, paths.threshold) + _marker_traces(paths.edges, paths.tokens, reading, metric)
                    + [_node_trace(paths)] + _legend())
    fig.add_trace(go.Scatter(x=[paths.position], y=[L], mode="markers", hoverinfo="skip", showlegend=False,
                             marker=dict(size=16, symbol="star", color="#d7191c")))
    step = fit_ticks(T, width_px)
    rows = list(range(0, L + 1, max(1, -(-L // 16))))
    fig.update_layout(
        height=max(520, min(1400, 34 * L + 160)), margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white",
        hovermode="closest", dragmode="pan", clickmode="event+select",
        legend=dict(orientation="h", y=1.02, x=0, yanchor="bottom", itemclick=False, itemdoubleclick=False),
        title=dict(text=f"What fed the prediction at {escape(paths.tokens[paths.position])} ({paths.position})",
                   x=0.5, y=0.995),
        xaxis=dict(tickmode="array", tickvals=list(range(0, T, step)), ticktext=axis_labels(paths.tokens)[::step],
                   tickangle=-60, tickfont=TICK_FONT, range=[-0.7, T - 0.3], showgrid=False, zeroline=False),
    )
    blocks_top_down(fig, (-0.4, L + 0.4), tickmode="array", tickvals=rows, ticktext=[level_name(2 * r) for r in rows],
                    tickfont=TICK_FONT, showgrid=True, gridcolor="#eeeeee", zeroline=False)
    return readable(fig)


def picked_head(points: list[dict]) -> tuple[int, int] | None:
    """(block, head) of a clicked attention-edge marker, from a plotly selection's points."""
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple)) and len(custom) == 2 and int(custom[1]) >= 0:
            return int(custom[0]), int(custom[1])
    return None


def reading_columns(metric: str) -> tuple[str, str, str]:
    """The columns a reading adds to an edge's row (plain text): its value, its head, that head's part."""
    return f"direct effect on {metric}", "head carrying most of it", "that head's part"


def _reading_cells(block: int, source: int, reading: EdgeReading, metric: str) -> dict:
    value, head, part = reading_columns(metric)
    h = reading.carrier(block, source)
    return {value: round(float(reading.edges[block, source]), 3), head: f"L{block} H{h}",
            part: round(float(reading.heads[block, source, h]), 3)}


def edge_rows(paths: FlowPaths, n: int | None = 10, reading: EdgeReading | None = None, metric: str = "") -> list[dict]:
    """The heaviest attention edges of the pruned graph as table rows (the graph's main routes; n=None:
    every one). With a reading, the edges into its position also give their direct effect on `metric`
    and the head that carries most of it (blank on the others: they feed the prediction only through
    later states)."""
    heads = sorted((e for e in paths.edges if e.kind == "attention"), key=lambda e: -e.weight)[:n]
    blank = dict.fromkeys(reading_columns(metric)) if reading is not None else {}
    return [{"block": e.block, "head (largest)": top_head(e), "from": f"{paths.tokens[e.source[1]]} ({e.source[1]})",
             "to": f"{paths.tokens[e.target[1]]} ({e.target[1]})", "weight": round(e.weight, 3),
             "largest head's share": round(max(e.heads), 3),
             **(_reading_cells(e.block, e.source[1], reading, metric) if reads(e, reading) else blank)}
            for e in heads]


def reading_rows(reading: EdgeReading, paths: FlowPaths, weights: np.ndarray, metric: str, n: int = 8) -> list[dict]:
    """The edges into the reading's position with the largest direct effect on `metric` either way,
    kept by the pruning or not: each with its head, its weight (weights: (L, T) every such edge's
    share, heads summed) and whether the graph above draws it. A head can write much of the metric
    through an edge whose piece looks little like the state it joins: a small weight, pruned."""
    i = reading.position
    kept = {(e.block, e.source[1]) for e in paths.edges if reads(e, reading)}
    return [{"block": b, "from": f"{paths.tokens[j]} ({j})", "to": f"{paths.tokens[i]} ({i})",
             **_reading_cells(b, j, reading, metric), "weight": round(float(weights[b, j]), 3),
             "in the graph": (b, j) in kept} for b, j in reading.strongest(n)]
