"""Concurrent captures over one shared model return exactly what sequential captures return."""
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
        np.testing.assert_array_equal(seq.attention, conc.attention)
        np.testing.assert_array_equal(seq.residual, conc.residual)
        np.testing.assert_array_equal(seq.logits, conc.logits)
