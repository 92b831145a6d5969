"""The MLP and per-head figures on synthetic numbers: every stage is drawn with its shape, the
neuron views pick the strongest neurons and keep token text as escaped text, and the head heatmap
is centred on zero."""
from __future__ import annotations

import numpy as np

from model.analyses.head_attribution import HeadAttribution
from model.analyses.mlp import MlpSteps
from viz.head_attribution import head_heatmap, top_head_rows
from viz.mlp import layers_figure, neuron_tokens_figure, neurons_heatmap, stages, stages_figure, top_neurons

RNG = np.random.default_rng(0)
D, d = 8, 20


def _steps(gated: bool = True, stream: bool = True) -> MlpSteps:
    v = lambda n: RNG.normal(size=n).astype(np.float32)  # noqa: E731
    s, out = v(D), v(D)
    return MlpSteps(layer=2, position=3, activation="SwiGLU: silu(gate) × up", stream=s if stream else None,
                    norm_name="LlamaRMSNorm", normed=v(D), gate=v(d) if gated else None, up=v(d), activated=v(d),
                    hidden=v(d), out=out, after=s + out if stream else None)


def test_every_stage_is_drawn_with_its_shape():
    titles = [t for _, t, _ in stages(_steps())]
    assert len(titles) == 8
    assert sum(f"({d},)" in t for t in titles) == 4 and sum(f"({D},)" in t for t in titles) == 4
    fig = stages_figure(_steps())
    assert len(fig.data) == 8 and "SwiGLU" in fig.layout.title.text
    plain = stages(_steps(gated=False, stream=False))
    assert [k for k, _, _ in plain] == ["norm", "up", "hidden", "down"]


def test_top_neurons_by_magnitude_either_sign():
    assert top_neurons(np.array([0.1, -5.0, 3.0, -0.2]), 2).tolist() == [1, 2]


def test_neurons_heatmap_hover_names_token_neuron_and_value():
    tokens = ["<b>", "·x", "·y"]
    hidden = RNG.normal(size=(3, d))
    fig = neurons_heatmap(hidden, tokens, top_neurons(hidden[-1], 5), layer=4)
    trace = fig.data[0]
    assert list(trace.x) == [f"N{n}" for n in top_neurons(hidden[-1], 5)]
    assert trace.customdata[0][0] == "&lt;b&gt; (0)"  # escaped text, never markup
    assert "neuron" in trace.hovertemplate and "activation" in trace.hovertemplate
    assert trace.zmid == 0


def test_layers_figure_shows_each_blocks_strongest_neurons():
    hidden_at = RNG.normal(size=(5, d))
    fig = layers_figure(hidden_at, 3, position=7)
    z, text = np.asarray(fig.data[0].z), np.asarray(fig.data[0].text)
    assert z.shape == (5, 3)
    for b in range(5):
        assert text[b].tolist() == [str(n) for n in top_neurons(hidden_at[b], 3)]
        assert np.allclose(np.abs(z[b]), np.sort(np.abs(hidden_at[b]))[::-1][:3])


def test_neuron_tokens_wrap_in_reading_order():
    tokens = [f"t{i}" for i in range(14)] + ["<script>"]
    acts = np.arange(15, dtype=np.float32) - 7
    fig = neuron_tokens_figure(tokens, acts, neuron=9, layer=1, per_row=6)
    z, text = np.asarray(fig.data[0].z, dtype=float), np.asarray(fig.data[0].text)
    assert z.shape == (3, 6) and z[1, 0] == acts[6] and np.isnan(z[2, 5])
    assert text[2, 2] == "&lt;script&gt;"


def test_a_window_of_positions_keeps_their_numbers_and_the_whole_scale():
    """A long prompt's window: only its rows (cells), labelled with prompt positions, coloured on the
    scale of every position (the strongest, outside the window, still sets it)."""
    tokens = [f"t{i}" for i in range(10)]
    hidden = np.zeros((10, d))
    hidden[1, 3], hidden[7, 3] = -4.0, 1.0
    heat = neurons_heatmap(hidden, tokens, np.array([3]), layer=2, window=(6, 9)).data[0]
    assert list(heat.y) == ["t6 (6)", "t7 (7)", "t8 (8)"] and (heat.zmin, heat.zmax) == (-4.0, 4.0)
    cells = neuron_tokens_figure(tokens, hidden[:, 3], neuron=3, layer=2, per_row=2, window=(6, 9)).data[0]
    z = np.asarray(cells.z, dtype=float)
    assert z.shape == (2, 2) and z[0, 1] == 1.0 and np.isnan(z[1, 1]) and cells.zmax == 4.0
    assert cells.customdata[0][0] == "t6 (6)"


def test_head_heatmap_and_rows():
    heads = HeadAttribution(position=5, heads=np.array([[0.5, -2.0], [1.0, 0.1]]), bias=np.zeros(2))
    fig = head_heatmap(heads, "logit(<a>) − logit(b)")
    assert fig.data[0].zmid == 0 and fig.data[0].zmax == 2.0
    assert "&lt;a&gt;" in fig.layout.title.text
    rows = top_head_rows(heads, 2)
    assert [(r["block"], r["head"], r["direction"]) for r in rows] == [(0, 1, "down"), (1, 0, "up")]
