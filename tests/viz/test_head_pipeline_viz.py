"""The score pipeline figures: masked cells drawn grey on exactly the future keys, hover with score,
mask state and weight, escaped labels, a caption naming the shared key/value head."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model.analyses.head_pipeline import HeadPipeline
from viz.head_pipeline import CELL_TEXT_MAX, MASKED_NAME, STEPS, head_caption, step_figure, weights_caption


def _pipe(T: int, H: int = 4, kv: int = 2, seed: int = 0) -> HeadPipeline:
    rng = np.random.default_rng(seed)
    masked = np.triu(np.ones((T, T), dtype=bool), k=1)
    return HeadPipeline(
        layer=1, query=rng.normal(0, 2, size=(H, T, 4)).astype(np.float32),
        key=rng.normal(size=(kv, T, 4)).astype(np.float32), value=rng.normal(size=(kv, T, 4)).astype(np.float32),
        masked=masked, scaling=0.5, group_size=H // kv,
    )


@pytest.mark.parametrize("step", ["masked", "pattern", "value_weighted"])
def test_masked_cells_are_drawn_on_the_future(synthetic_capture, step):
    tokens = synthetic_capture.tokens
    pipe = _pipe(len(tokens))
    fig = step_figure(pipe, 1, tokens, step)
    main, grey = fig.data
    assert grey.name == MASKED_NAME
    assert (~np.isnan(np.asarray(grey.z, dtype=float)) == pipe.masked).all()
    assert np.isnan(np.asarray(main.z, dtype=float)[pipe.masked]).all()  # colour only where unmasked
    assert "masked" in grey.meta and main.meta == "unmasked"
    assert fig.layout.title.text == STEPS[step]


def test_raw_scores_show_every_cell_and_hover_values(synthetic_capture):
    tokens = synthetic_capture.tokens
    pipe = _pipe(len(tokens))
    fig = step_figure(pipe, 2, tokens, "scores")
    assert len(fig.data) == 1 and np.allclose(np.asarray(fig.data[0].z), pipe.score_rows(2, 0, pipe.n_tokens))
    custom = np.asarray(fig.data[0].customdata)
    assert np.allclose(custom[..., 0], pipe.score_rows(2, 0, pipe.n_tokens)) and np.allclose(custom[..., 1], pipe.softmax(2))
    assert "score" in fig.data[0].hovertemplate and "weight" in fig.data[0].hovertemplate


def test_value_weighting_scales_columns(synthetic_capture):
    tokens = synthetic_capture.tokens
    pipe = _pipe(len(tokens))
    z = np.asarray(step_figure(pipe, 3, tokens, "value_weighted").data[0].z, dtype=float)
    norms = np.linalg.norm(pipe.value[1], axis=-1)  # head 3 reads kv head 1
    assert np.allclose(np.nan_to_num(z), np.where(pipe.masked, 0, pipe.softmax(3) * norms))


def test_labels_are_escaped_and_window_slices(capture_builder):
    cap = capture_builder(tokens=["<b>a</b>", "b", "c", "d"])
    pipe = _pipe(4)
    fig = step_figure(pipe, 0, cap.tokens, "pattern", window=(1, 4))
    assert len(fig.data[0].x) == 3
    full = step_figure(pipe, 0, cap.tokens, "pattern")
    assert all("<b>" not in str(v) for v in list(full.data[0].x) + list(full.layout.xaxis.ticktext))


def test_caption_names_the_shared_kv_head():
    text = head_caption(_pipe(5, H=9, kv=3), 4)
    assert "key/value head 1" in text and "3, 5" in text
    assert "no sharing" in head_caption(_pipe(5, H=2, kv=2), 1)


def test_quotes_survive_plotly(capture_builder):
    cap = capture_builder(tokens=['"', "a", "<i>"])
    fig = step_figure(_pipe(3), 0, cap.tokens, "pattern")
    assert fig.data[0].x[0] == '""" (pos 0)' and "&quot;" not in str(fig.layout.xaxis.ticktext)
    assert fig.data[0].x[2] == '"&lt;i&gt;" (pos 2)'


def test_short_windows_write_each_score_in_its_cell(synthetic_capture) -> None:
    """Near ties share a colour: up to CELL_TEXT_MAX positions each cell carries its value."""
    tokens = synthetic_capture.tokens
    pipe = _pipe(len(tokens))
    fig = step_figure(pipe, 0, tokens, "masked")
    text = fig.data[0].text
    assert fig.data[0].texttemplate == "%{text}"
    last = pipe.n_tokens - 1
    assert text[-1][0] == f"{pipe.score_rows(0, last, last + 1)[0, 0]:.2f}" and text[0][-1] == ""  # masked cells stay blank
    long = [f"t{i}" for i in range(CELL_TEXT_MAX + 1)]
    assert step_figure(_pipe(len(long)), 0, long, "masked").data[0].text is None


def test_computed_weights_are_named_as_such():
    pipe = _pipe(6)
    assert pipe.weights is None
    text = weights_caption(pipe)
    assert "6 tokens" in text and "softmax of these scores" in text and "first and last rows" in text
    held = dataclasses.replace(pipe, weights=np.stack([pipe.softmax(h) for h in range(pipe.n_heads)]))
    assert weights_caption(held) is None
