"""Figures for the Embeddings and Meaning pages, on synthetic Captures: escaped labels, variance %
on the axes, one trace per group or path, arrows where the arithmetic goes."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses import embeddings as emb
from viz import embeddings as draw
from viz import meaning

TRICKY = ["<b>x</b>", "·a&b", "<script>", "·mole", "·mole", "."]


@pytest.fixture()
def cap(capture_builder):
    return capture_builder(tokens=TRICKY, n_layers=3, d_model=8)


def _layer_map(cap, layer: int, n: int = 2):
    proj = emb.fit_pca(emb.prepare(cap.residual[layer], True), n)
    hovers = [f"{t} at {p}" for p, t in enumerate(cap.tokens)]
    return proj, draw.token_map_figure(proj.coords, cap.tokens, hovers, ["prompt"] * cap.n_tokens,
                                       proj.explained, f"layer {layer}")


def test_map_labels_are_escaped_and_axes_show_variance(cap) -> None:
    proj, fig = _layer_map(cap, 1)
    (trace,) = fig.data
    assert list(trace.text) == ["&lt;b&gt;x&lt;/b&gt;", "·a&amp;b", "&lt;script&gt;", "·mole", "·mole", "."]
    assert all("<b>" not in h and "<script>" not in h for h in trace.customdata)
    assert fig.layout.xaxis.title.text == f"PC1 ({100 * proj.explained[0]:.1f}% of variance)"
    assert fig.layout.yaxis.title.text.startswith("PC2 (")


def test_map_has_one_trace_per_group_and_3d_on_request(cap) -> None:
    coords = np.random.default_rng(0).normal(size=(4, 3))
    fig = draw.token_map_figure(coords, ["a", "b", "king", "queen"], ["h"] * 4,
                                ["prompt", "prompt", "reference", "reference"], np.array([0.5, 0.3, 0.1]), "t")
    assert [t.name for t in fig.data] == ["prompt", "reference"]
    assert all(t.type == "scatter3d" for t in fig.data)
    assert fig.layout.scene.zaxis.title.text.startswith("PC3 (")


def test_different_layers_give_different_maps(cap) -> None:
    assert _layer_map(cap, 0)[1].to_json() != _layer_map(cap, 3)[1].to_json()


def test_trajectories_one_trace_per_token_with_layer_hovers(cap) -> None:
    proj, paths = emb.project_paths(cap.residual[:, [3, 4]], 2, fit_on=cap.residual.reshape(-1, 8))
    fig = draw.trajectory_figure(paths, ["<i>mole (3)", "·mole (4)"], proj.explained, "paths")
    assert len(fig.data) == 2
    assert fig.data[0].name == "&lt;i&gt;mole (3)"
    assert len(fig.data[0].x) == cap.summary.n_layers + 1
    assert fig.data[0].customdata[0].endswith("<br>embedding")
    assert fig.data[0].customdata[-1].endswith(f"after block {cap.summary.n_layers - 1}")  # blocks count from 0
    assert fig.data[0].marker.symbol[0] == "circle-open" and fig.data[0].marker.symbol[-1] == "diamond"
    assert fig.data[0].text[-1] == "&lt;i&gt;mole (3)"
    with pytest.raises(ValueError):
        draw.trajectory_figure(paths, ["only one"], proj.explained, "paths")


def test_near_labels_are_placed_apart() -> None:
    coords = np.array([[0.0, 0.0], [0.01, 0.0], [5.0, 5.0], [0.0, 0.01]])
    fig = draw.token_map_figure(coords, ["France", "·France", "far", "·of"], ["a", "b", "c", "d"],
                                ["prompt"] * 4, np.array([0.5, 0.3]), "map")
    pos = list(fig.data[0].textposition)
    assert len({pos[0], pos[1], pos[3]}) == 3 and pos[2] == "top center"


def test_similarity_curves_and_yardstick(cap) -> None:
    curves = {"<a> ↔ b": np.linspace(1, 0.5, 4), "a ↔ c": np.linspace(1, 0.8, 4)}
    fig = meaning.similarity_figure(curves, baseline=np.full(4, 0.3))
    assert [t.name for t in fig.data] == ["&lt;a&gt; ↔ b", "a ↔ c", "yardstick: other words (runs below the frame)"]
    assert fig.data[2].line.dash == "dash"
    assert fig.layout.yaxis.title.text == "cosine similarity"


def test_similarity_axes_show_the_drift_and_never_cut_a_label() -> None:
    """The lesson's 'mole' curves sit between 0.75 and 1: the frame fits them, not 0-1; depth labels are
    short and upright ('emb', block numbers) under one axis title, thinned when there are many."""
    curves = {"1 vs 2": np.linspace(1, 0.8, 31), "1 vs 3": np.linspace(1, 0.75, 31)}
    fig = meaning.similarity_figure(curves, baseline=np.linspace(0.0, 0.7, 31))
    low, high = fig.layout.yaxis.range
    assert 0.7 < low < 0.75 and 1.0 < high < 1.05
    axis = fig.layout.xaxis
    assert axis.ticktext[:3] == ("emb", "0", "1") and axis.tickangle == 0 and "after block" in axis.title.text
    assert max(len(t) for t in axis.ticktext) <= 3 and len(axis.ticktext) == 31
    assert fig.data[0].customdata[5][1] == "after block 4"  # the hover keeps the full name
    many = meaning.similarity_figure({"a": np.ones(81)})
    assert len(many.layout.xaxis.ticktext) <= meaning.MAX_DEPTH_TICKS and many.layout.xaxis.ticktext[0] == "emb"


def test_arithmetic_figure_draws_arrows_and_escapes(cap) -> None:
    coords = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.1, 1.1]], dtype=float)
    fig = meaning.arithmetic_figure(coords, ["king", "man", "<woman>", "result", "queen"],
                                    ["input", "input", "input", "result", "nearest"], np.array([0.6, 0.3]),
                                    [(0, 3, "the whole offset"), (1, 2, "man → <woman>")], "king - man + woman")
    assert [t.name for t in fig.data] == ["input", "result", "nearest"]
    assert "&lt;woman&gt;" in list(fig.data[0].text)
    assert len(fig.layout.annotations) == 2
    assert fig.layout.annotations[1].hovertext == "man → &lt;woman&gt;"
    assert fig.layout.xaxis.title.text == "PC1 (60.0% of variance)"


def test_nearest_rows_are_plain_text() -> None:
    rows = draw.nearest_rows(["<b>", "·x"], [5, 9], [0.91234, 0.5])
    assert rows[0] == {"rank": 1, "token": "<b>", "id": 5, "cosine": 0.9123}


def test_a_map_past_the_label_limit_draws_markers_named_by_their_hovers():
    n = draw.LABELLED_POINTS + 1
    coords = np.random.default_rng(0).normal(size=(n, 2))
    hovers = [f"<b>t{i}</b> · position {i}" for i in range(n)]
    labels, groups = [f"t{i}" for i in range(n)] + ["king"], ["prompt"] * n + ["reference"]
    fig = draw.token_map_figure(np.vstack([coords, [[0.0, 0.0]]]), labels, hovers + ["king"], groups,
                                np.array([0.2, 0.1]), "map")
    trace, reference = fig.data
    assert trace.mode == "markers" and trace.text is None
    assert reference.mode == "markers+text" and list(reference.text) == ["king"]  # a small group keeps its label
    assert list(trace.customdata)[-1] == "&lt;b&gt;t400&lt;/b&gt; · position 400"  # escaped, never HTML
    small = draw.token_map_figure(coords[:3], ["a", "b", "c"], ["x"] * 3, ["prompt"] * 3, np.array([0.2, 0.1]), "map")
    assert small.data[0].mode == "markers+text" and list(small.data[0].text) == ["a", "b", "c"]
