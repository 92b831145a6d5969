"""The patchscope figure: one row per stream (embedding on top), the lens's column then patchscope's
ranks, probabilities as colour, escaped tokens, the continuation on hover."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses.patchscope import IdentityPrompt, Patchscope
from viz.patchscope import columns, reading_figure


def _reading(n: int, k: int, seed: int = 0) -> Patchscope:
    rng = np.random.default_rng(seed)
    return Patchscope(
        identity=IdentityPrompt("a -> a; ? ->", (1, 2, 3, 4, 5, 2), 4),
        cells=tuple((layer, 7) for layer in range(n)),
        top_ids=rng.integers(0, 50, size=(n, k)).astype(np.int64),
        top_probs=rng.uniform(0, 1, size=(n, k)).astype(np.float32),
        top_texts=tuple(tuple(f"<t{r}{i}>" for i in range(k)) for r in range(n)),
        continuations=tuple(f"·go <{r}>" if r else "" for r in range(n)),
        plain_ids=np.arange(k, dtype=np.int64),
        plain_probs=np.full(k, 0.1, dtype=np.float32),
    )


def test_rows_are_streams_and_columns_lens_then_ranks():
    reading = _reading(3, 4)
    lens_probs = np.array([0.1, 0.5, 0.9], dtype=np.float32)
    fig = reading_figure(reading, ["a", "&", "c"], lens_probs, 7, "<b>")
    trace = fig.data[0]
    assert list(trace.y) == ["embedding", "after block 0", "after block 1"]
    assert list(trace.x) == columns(4) == ["logit lens", "patchscope #1", "patchscope #2", "patchscope #3", "patchscope #4"]
    z = np.asarray(trace.z)
    assert np.allclose(z[:, 0], lens_probs) and np.allclose(z[:, 1:], reading.top_probs)
    assert trace.text[1][0] == "&amp;" and trace.text[0][1] == "&lt;t00&gt;"
    assert "·go &lt;1&gt;" in trace.customdata[1][2] and "continues" not in trace.customdata[0][2]
    assert "&lt;b&gt;" in fig.layout.title.text and "<b>" not in fig.layout.title.text
    assert fig.layout.yaxis.autorange == "reversed"  # the embedding on top


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="3 rows"):
        reading_figure(_reading(3, 2), ["a"], np.zeros(3), 0, "x")
