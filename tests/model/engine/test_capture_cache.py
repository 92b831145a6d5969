"""The capture cache keeps to its byte budget, evicts least-recently-used, computes once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from model.engine.capture_cache import CaptureCache


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


def test_hooks_ride_only_a_capture_that_runs_whole(tiny_lm):
    """A page's recording rides the capture's pass on a miss; a cache hit runs no pass, and an
    extension runs only the new positions, so neither records (the page then runs its own pass)."""
    from model.analyses.mlp import MlpRecording

    cache = CaptureCache(budget_bytes=2**30)
    whole, hit, extended = (MlpRecording(tiny_lm, [0, 1]) for _ in range(3))
    cap = cache.get_or_extend("a", tiny_lm, ids=[1, 2, 3], also=whole.hooks)
    assert whole.recorded and whole.result(cap.n_tokens).inputs.shape[:2] == (2, 3)
    cache.get_or_extend("a", tiny_lm, ids=[1, 2, 3], also=hit.hooks)
    cache.get_or_extend("b", tiny_lm, ids=[1, 2, 3, 4], also=extended.hooks)
    assert not hit.recorded and not extended.recorded
