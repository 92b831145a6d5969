"""A long prompt's head: the pooled overview (blocks wholly in the future left out, the window boxed)
and the window of exact weights (future keys grey), and the token strip's window keeping positions."""
from __future__ import annotations

import numpy as np

from viz import attention as va
from viz.token_strip import token_strip_html


def test_overview_leaves_out_future_blocks_and_boxes_the_window(capture_builder) -> None:
    T = 300
    cap = capture_builder(tokens=[f"t{i}" for i in range(T)], n_layers=1, n_heads=1)
    pooled = cap.attention.pooled(0, 0, 64, "max")
    fig = va.overview_heatmap(pooled, T, 0, 0, (100, 164, 40, 104), "max")
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (64, 64) and np.isnan(z[0, -1]) and not np.isnan(np.diag(z)).any()
    assert np.allclose(np.tril(z, -1)[np.tril(np.ones_like(z, bool), -1)], pooled[np.tril(np.ones_like(z, bool), -1)])
    box = fig.layout.shapes[0]
    assert (box.x0, box.x1, box.y0, box.y1) == (39.5, 103.5, 99.5, 163.5)
    assert fig.data[0].zmax == 1.0 and va.overview_heatmap(pooled, T, 0, 0, (0, 64, 0, 64)).data[0].zmax is None


def test_window_draws_exact_weights_with_future_keys_grey(capture_builder) -> None:
    T = 80
    cap = capture_builder(tokens=[f"<t{i}>" for i in range(T)], n_layers=1, n_heads=1)
    values = cap.attention[0, 0, 20:30, 15:35]
    fig = va.window_heatmap(values, cap.tokens, (20, 15), 0, 0)
    weights, grey = (np.asarray(t.z, dtype=float) for t in fig.data)
    future = np.arange(15, 35)[None, :] > np.arange(20, 30)[:, None]
    assert np.allclose(weights[~future], values[~future]) and np.isnan(weights[future]).all()
    assert (grey[future] == 1).all() and np.isnan(grey[~future]).all()
    assert fig.data[0].y[0].endswith("(pos 20)") and fig.data[0].x[0].endswith("(pos 15)")
    assert "&lt;t20&gt;" in fig.data[0].y[0]  # token text is text, escaped
    assert "queries 20–29 × keys 15–34" in fig.layout.title.text


def test_token_strip_window_keeps_prompt_positions() -> None:
    html = token_strip_html(["a", "<b>", "c"], [1, 2, 3], highlight=501, start=500)
    assert "<sub>500</sub>" in html and "<sub>502</sub>" in html and "position 501" in html
    assert "xr-hi" in html and "&lt;b&gt;" in html and "<b>" not in html.replace("<sub>", "")
