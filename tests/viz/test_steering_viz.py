"""Steering's figures: tokens are shown as text (markup escaped), bars carry the numbers given, and the
norm sentence states the ratio of the push to the stream."""
from __future__ import annotations

import numpy as np

from viz import steering as draw


def test_token_scores_figure_escapes_tokens_and_keeps_numbers():
    fig = draw.token_scores_figure(["<b>", "·cat"], np.array([-1.0, -2.0]), np.array([-0.5, -3.0]), "t")
    assert [t.name for t in fig.data] == ["unsteered model", "steered model"]
    assert list(fig.data[0].x) == ["1: &lt;b&gt;", "2: ·cat"]
    assert list(fig.data[1].y) == [-0.5, -3.0]


def test_moved_figure_says_the_change_in_points():
    fig = draw.moved_figure(["·Paris", "<i>"], np.array([0.5, 0.1]), np.array([0.2, 0.3]))
    assert list(fig.data[0].y) == ["·Paris", "&lt;i&gt;"]
    assert [list(row) for row in fig.data[1].customdata] == [["20.0%", "-30.0 pp"], ["30.0%", "+20.0 pp"]]


def test_moved_figure_never_hovers_a_tiny_probability_as_zero():
    fig = draw.moved_figure(["a"], np.array([0.00002]), np.array([0.4]))
    assert list(fig.data[0].customdata) == ["<0.1%"] and "%{customdata}" in fig.data[0].hovertemplate


def test_reading_rows_and_norm_sentence():
    rows = draw.reading_rows(["a"], np.array([1.234]), ["b"], np.array([-2.0]), ["c"], np.array([0.5]))
    assert rows == [{"rank": 1, "pushed up": "a", "logit +": 1.23, "pushed down": "b", "logit −": -2.0,
                     "nearest embedding": "c", "cosine": 0.5}]
    sentence = draw.norm_sentence(50.0, -2.0, 100.0, 6)
    assert "length is 50.0" in sentence and "length 100.0" in sentence and "about 1× " in sentence
    assert "entering block 6 (100.0" in sentence
