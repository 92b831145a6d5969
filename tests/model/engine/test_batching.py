"""Captures asked for together share one padded pass (model/engine/batching.py): each row must equal the
capture of its own ids alone, keys and values included, and every request gets its own answer."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from model.core.errors import CaptureError
from model.engine.batching import Request

PROMPTS = ["The quick brown fox jumps over the lazy dog",
           "A short one",
           "Seven students counted the ships in the harbor every single night of the winter"]
FIELDS = ("attention", "residual", "attn_out", "mlp_out", "logits")


def assert_same(got, want) -> None:
    assert got.n_tokens == want.n_tokens and np.array_equal(got.token_ids, want.token_ids)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=2e-5, rtol=0, err_msg=name)
    for (k, v), (k2, v2) in zip(got.kv, want.kv, strict=True):
        np.testing.assert_allclose(k, k2, atol=2e-5, rtol=0)
        np.testing.assert_allclose(v, v2, atol=2e-5, rtol=0)


def test_rows_equal_single_captures(tiny_lm):
    requests = [Request(tiny_lm.encode(p), p) for p in PROMPTS]  # three lengths: two rows padded
    tiny_lm._capture_rows(requests)
    for request in requests:
        assert request.done.is_set()
        assert_same(request.answer(), tiny_lm.capture_ids(request.ids, request.prompt))


def test_batched_capture_extends_exactly(tiny_lm):
    """A batched capture's keys and values (cut from a padded row) extend like a single capture's."""
    ids = tiny_lm.encode(PROMPTS[2])
    requests = [Request(ids[:-4], None), Request(tiny_lm.encode(PROMPTS[0]), None)]
    tiny_lm._capture_rows(requests)
    assert_same(tiny_lm.extend_capture(requests[0].answer(), ids), tiny_lm.capture_ids(ids))


def concurrent_captures(lm, prompts: list[str]) -> tuple[list, int]:
    """Start one capture per prompt while the model is busy, then free it: (captures, passes run)."""
    passes = [0]
    handle = lm.model.register_forward_pre_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))
    results: list = [None] * len(prompts)

    def ask(i: int) -> None:
        try:
            results[i] = lm.capture(prompts[i])
        except Exception as exc:  # noqa: BLE001  the test reads each outcome
            results[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    try:
        with lm.lock:  # another session's pass is running
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while len(lm._queue._pending) < len(prompts) and time.monotonic() < deadline:
                time.sleep(0.01)
        for t in threads:
            t.join(60)
    finally:
        handle.remove()
    return results, passes[0]


def test_waiting_captures_share_one_pass(tiny_lm):
    results, passes = concurrent_captures(tiny_lm, PROMPTS)
    assert passes == 1  # the first thread to get the model ran all three
    for prompt, cap in zip(PROMPTS, results):
        assert cap.prompt == prompt
        assert_same(cap, tiny_lm.capture(prompt))


def test_a_failing_request_fails_alone(tiny_lm):
    """A batch that fails is run again one by one: only the request at fault sees an error."""
    good = [Request(tiny_lm.encode(p), p) for p in PROMPTS[:2]]
    bad = Request([len(tiny_lm.tokenizer) + 10_000], None)  # an id beyond the vocabulary
    tiny_lm._capture_requests([good[0], bad, good[1]])
    with pytest.raises((IndexError, CaptureError)):  # its own error, from its own pass
        bad.answer()
    for request in good:
        assert_same(request.answer(), tiny_lm.capture_ids(request.ids, request.prompt))


def test_one_request_runs_as_ever(tiny_lm):
    """No one else waiting: the capture is the single pass it always was (bitwise)."""
    ids = tiny_lm.encode(PROMPTS[0])
    alone = tiny_lm._capture_one(ids, None)
    via_queue = tiny_lm.capture_ids(ids)
    for name in FIELDS:
        assert np.array_equal(getattr(alone, name), getattr(via_queue, name)), name


def test_rows_equal_single_captures_default(default_lm):
    """Thirty blocks of float32 rounding on the real model: the batch stays within reading precision."""
    requests = [Request(default_lm.encode(p), p) for p in PROMPTS]
    default_lm._capture_rows(requests)
    for request in requests:
        got, want = request.answer(), default_lm.capture_ids(request.ids, request.prompt)
        np.testing.assert_allclose(got.attention, want.attention, atol=1e-5, rtol=0)
        for name in FIELDS[1:]:  # float32 rounding through 30 blocks: ~3e-4 at most, seen on a stream of ~10^2
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=1e-3, rtol=1e-5, err_msg=name)
        assert int(got.logits[-1].argmax()) == int(want.logits[-1].argmax())
