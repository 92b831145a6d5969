"""The capture cache keeps to its byte budget, evicts least-recently-used, computes once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from model.capture_cache import CaptureCache


def test_budget_and_lru(tiny_lm):
    prompts = ["one two three", "four five six", "seven eight nine"]
    caps = [tiny_lm.capture(p) for p in prompts]
    assert len({c.nbytes for c in caps}) == 1  # same size, so the budget holds exactly two
    cache = CaptureCache(budget_bytes=int(caps[0].nbytes * 2.5))
    for prompt, cap in zip(prompts, caps):
        cache.get_or_compute(prompt, lambda c=cap: c)
        assert cache.nbytes <= cache.budget_bytes
    assert len(cache) == 2 and cache.get(prompts[0]) is None
    assert cache.get(prompts[2]) is not None


def test_oversized_capture_is_returned_not_kept(tiny_lm):
    cache = CaptureCache(budget_bytes=10)
    cap = cache.get_or_compute("k", lambda: tiny_lm.capture("hello"))
    assert cap.n_tokens > 0 and len(cache) == 0


def test_concurrent_requests_compute_once(tiny_lm):
    cache = CaptureCache(budget_bytes=2**30)
    with ThreadPoolExecutor(8) as pool:
        caps = list(pool.map(lambda _: cache.get_or_compute("same", lambda: tiny_lm.capture("same prompt")), range(8)))
    assert cache.computed == 1 and all(c is caps[0] for c in caps)
