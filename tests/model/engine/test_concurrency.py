"""Concurrent captures over one shared model return what sequential captures return: never another
session's numbers. Captures that wait together may share one padded pass (model/engine/batching.py), which
changes only float rounding (the rows of a batch go through differently blocked matrix products)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

PROMPTS = [f"Prompt number {i}: " + "word " * (i + 2) for i in range(8)]


def test_eight_threads_equal_sequential(tiny_lm):
    sequential = [tiny_lm.capture(p) for p in PROMPTS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(tiny_lm.capture, PROMPTS))
    for seq, conc, prompt in zip(sequential, concurrent, PROMPTS):
        assert conc.prompt == prompt
        np.testing.assert_array_equal(seq.token_ids, conc.token_ids)
        for name in ("attention", "residual", "attn_out", "mlp_out", "logits"):
            np.testing.assert_allclose(getattr(conc, name), getattr(seq, name), atol=2e-5, rtol=0, err_msg=name)
