"""The prompt-set figures: the strip says how many prompts favour the answer, means leave out NaN
prompts and say over how many, spread is the standard deviation, bars carry every prompt's dot."""
from __future__ import annotations

import numpy as np

from viz.prompt_sets import diff_strip, effect_bars, from_end_labels, mean_heatmap


def test_strip_counts_prompts_above_zero_and_keeps_text_as_text():
    fig = diff_strip([1, 2, 3], np.array([1.5, -0.5, 2.0]), ["<b>a</b>", "b", "c"], "logit(A) − logit(B)",
                     np.array([0.1, 0.2, -1.0]))
    assert "above 0 on 2 of 3 prompts" in fig.layout.title.text
    assert fig.data[0].text[0] == "&lt;b&gt;a&lt;/b&gt;"  # a prompt's markup is shown, never run
    assert len(fig.data) == 2 and list(fig.data[0].customdata) == [0, 1, 2]


def test_mean_and_spread_leave_out_prompts_that_cannot_test_a_head():
    values = np.array([[[1.0, np.nan]], [[3.0, np.nan]], [[np.nan, np.nan]]])  # (3 prompts, 1 block, 2 heads)
    mean = mean_heatmap(values, "t", "score")
    assert np.allclose(np.asarray(mean.data[0].z)[0, 0], 2.0)
    assert np.isnan(np.asarray(mean.data[0].z)[0, 1])
    assert np.asarray(mean.data[0].customdata)[0, 0, 2] == 2  # over two prompts, not three
    spread = mean_heatmap(values, "t", "score", spread=True)
    assert np.allclose(np.asarray(spread.data[0].z)[0, 0], 1.0)  # sd of 1 and 3


def test_effect_bars_show_mean_sd_and_every_prompt():
    effects = np.array([[-1.0, 0.5], [-3.0, 0.5]])
    fig = effect_bars(["L1H2", "L3H4"], effects, "m")
    assert np.allclose(fig.data[0].y, [-2.0, 0.5]) and np.allclose(fig.data[0].error_y.array, [1.0, 0.0])
    assert len(fig.data[1].y) == 4


def test_positions_from_the_end():
    assert from_end_labels(3) == ["last−2", "last−1", "last"]
