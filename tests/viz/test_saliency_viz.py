"""The saliency drawings: token text stays text (escaped) in the chips, the bars and the reading; the
colours follow the sign; the reading names the tokens that raised and lowered the target most."""
from __future__ import annotations

import numpy as np

from viz.saliency import bars_figure, chips_html, reading_html

TOKENS = ["<b>", "·cat", "·&amp;", "·sat"]
VALUES = np.array([0.5, -2.0, 0.0, 1.0])


def test_chips_escape_token_text_and_colour_by_sign():
    html = chips_html(TOKENS, VALUES)
    assert "&lt;b&gt;" in html and "·&amp;amp;" in html and "<b><sub>" not in html
    spans = html.split("<span")[1:]
    assert "background:#ffffff" in spans[2]  # zero: white
    assert "background:#be3b4b;color:#ffffff" in spans[1]  # the strongest: deep red, white ink
    assert "background:#a1bedc" in spans[3]  # half the strongest, upward: light blue
    assert 'class="xr-target"' in spans[3] and 'class="xr-target"' not in spans[0]  # the prediction's chip


def test_a_window_of_chips_keeps_the_positions_and_the_whole_scale():
    """A long reading's window: its chips only, numbered by prompt position, coloured on the scale of
    every share (the strongest, outside the window, still sets it); the prediction's outline only there."""
    first = chips_html(TOKENS, VALUES, window=(2, 4)).split("<span")[1:]
    assert len(first) == 2 and "<sub>2</sub>" in first[0] and "<sub>3</sub>" in first[1]
    assert "background:#a1bedc" in first[1] and 'class="xr-target"' in first[1]  # 1.0 of the whole 2.0
    start = chips_html(TOKENS, VALUES, window=(0, 2)).split("<span")[1:]
    assert len(start) == 2 and not any("xr-target" in span for span in start)


def test_bars_escape_labels_and_colour_by_sign():
    fig = bars_figure(TOKENS, VALUES, "integrated", "logit(<i>x</i>)")
    bar = fig.data[0]
    assert list(bar.marker.color) == ["#2166ac", "#b2182b", "#2166ac", "#2166ac"]
    assert "&lt;i&gt;" in fig.layout.title.text and "<i>" not in fig.layout.title.text
    assert bar.customdata[0] == "&lt;b&gt;" and bar.x[1] == "·cat (1)"


def test_reading_names_the_strongest_tokens_from_the_numbers():
    text = reading_html(TOKENS, VALUES, "integrated", "logit(·mat)", 3.0, reference=-1.0, delta=-0.5,
                        steps=64, neutral="a space")
    assert "<b>&lt;b&gt;</b> (+0.50)" not in text  # the strongest raiser is ·sat (+1.00)
    assert "<b>·sat</b> (+1.00) at position 3 raised it most" in text
    assert "<b>·cat</b> (-2.00) at position 1 lowered it most" in text
    assert "a change of +4.00" in text and "off by -0.500" in text and "64 steps" in text
