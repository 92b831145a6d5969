"""The capture cache keeps to its byte budget, evicts least-recently-used, computes once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from model.engine import language_model
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


def test_a_whole_capture_makes_room_before_its_pass(tiny_lm, monkeypatch):
    """The captures a new one will push out go before its pass runs (its pass reuses their memory),
    and the cache ends as it would have after the pass; an extension keeps its base meanwhile. The
    captures are long ones (queries and keys, the last rows of logits), whose size the room asked for
    nears: a short one keeps more (whole patterns, every row), so less room than it takes is made."""
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 8)
    ids = [list(range(3 + i, 40 + i)) for i in range(3)]  # no two share a first token
    size = tiny_lm.capture_ids(ids[0]).nbytes
    room = tiny_lm.held_bytes(len(ids[0]))
    assert 0 < room <= size  # the room asked for is never more than a capture keeps
    cache = CaptureCache(budget_bytes=2 * size + room - 1)  # two fit, and no room for a third beside them
    held_during: list[int] = []
    real = type(tiny_lm).capture_ids

    def watched(self, *args, **kwargs):
        held_during.append(len(cache))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(tiny_lm), "capture_ids", watched)
    for i, row in enumerate(ids):
        cache.get_or_extend(f"k{i}", tiny_lm, ids=row)
    assert held_during == [0, 1, 1]  # the third pass ran with the oldest already gone
    assert cache.get("k0") is None and cache.get("k1") is not None and cache.get("k2") is not None
    extended = cache.get_or_extend("k3", tiny_lm, ids=ids[2] + [5, 6])
    assert extended.n_tokens == len(ids[2]) + 2 and held_during == [0, 1, 1]  # no whole pass ran
