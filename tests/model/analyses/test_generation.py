"""Step-by-step generation: greedy is the argmax of a capture's logits, seeded sampling repeats."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses.generation import Decoding, continuation_text, generate, ids_key, last_logits, step_attention
from model.engine import language_model

PROMPT = "Once upon a time there was"


def test_greedy_equals_argmax_of_capture(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    steps = generate(tiny_lm, ids, 4, Decoding(greedy=True))
    assert len(steps) >= 1
    for step in steps:
        cap = tiny_lm.capture_ids(list(step.context))
        assert step.token_id == int(np.argmax(cap.logits[-1]))
        np.testing.assert_allclose(step.logits, cap.logits[-1], atol=1e-5, rtol=0)  # KV-cached steps
        assert step.alternatives[0][0] == step.token_id
    assert list(steps[1].context) == ids + [steps[0].token_id]


def test_sampling_is_deterministic_with_a_seed(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    hot = Decoding(greedy=False, temperature=2.0, seed=7)
    a = [s.token_id for s in generate(tiny_lm, ids, 4, hot)]
    b = [s.token_id for s in generate(tiny_lm, ids, 4, hot)]
    others = {tuple(s.token_id for s in generate(tiny_lm, ids, 4, Decoding(greedy=False, temperature=2.0, seed=k)))
              for k in range(8, 10)}
    assert a == b
    assert len(others | {tuple(a)}) > 1  # different seeds give different continuations


def test_probabilities_and_alternatives_follow_settings(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    steps = generate(tiny_lm, ids, 3, Decoding(greedy=False, temperature=1.0, top_k=3, seed=1), n_alternatives=5)
    for s in steps:
        assert len(s.alternatives) == 5
        kept = [p for _, _, p in s.alternatives if p > 0]
        assert len(kept) == 3 and abs(sum(kept) - 1) < 1e-9
        assert s.token_id in [t for t, _, _ in s.alternatives[:3]]


def test_progress_and_limits(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    seen = []
    steps = generate(tiny_lm, ids, 3, Decoding(), on_step=lambda i, n: seen.append((i, n)))
    assert seen[: len(steps)] == [(i + 1, 3) for i in range(len(steps))]
    assert generate(tiny_lm, ids, 5, Decoding(), max_tokens=len(ids) + 2).__len__() <= 2


def test_last_logits_and_keys(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    assert np.array_equal(last_logits(tiny_lm, ids), tiny_lm.capture_ids(ids).logits[-1])
    assert ids_key("m", [1, 2]) != ids_key("m", [12])


def test_continuation_text_round_trips(default_lm):
    ids = default_lm.encode("The capital of France is")
    steps = generate(default_lm, ids, 3, Decoding())
    text = continuation_text(default_lm, ids, [s.token_id for s in steps])
    assert text and default_lm.tokenizer.decode(ids + [s.token_id for s in steps]).endswith(text)
    assert steps[0].token.replace("·", " ").strip()  # a real, visible word


def test_a_capture_answers_the_first_step(tiny_lm, monkeypatch):
    """With the prompt's capture, no pass runs the whole prompt again; the steps are the plain run's."""
    ids = tiny_lm.encode(PROMPT)
    plain = generate(tiny_lm, ids, 4, Decoding())
    cap = tiny_lm.capture_ids(ids)
    passes: list[int] = []
    forward = tiny_lm.forward
    monkeypatch.setattr(tiny_lm, "forward", lambda run, **kw: passes.append(len(run)) or forward(run, **kw))
    seeded = generate(tiny_lm, ids, 4, Decoding(), start=cap)
    assert passes == [1] * (len(seeded) - 1)  # one new token per later step
    assert [s.token_id for s in seeded] == [s.token_id for s in plain]
    for got, want in zip(seeded, plain):
        np.testing.assert_allclose(got.logits, want.logits, atol=1e-5, rtol=0)
    other = tiny_lm.capture_ids(ids[:-1])  # another prompt's capture is not used
    passes.clear()
    assert [s.token_id for s in generate(tiny_lm, ids, 2, Decoding(), start=other)] == [s.token_id for s in plain[:2]]
    assert passes[0] == len(ids)
    with pytest.raises(ValueError, match="edited generation"):
        generate(tiny_lm, ids, 2, Decoding(), start=cap, sites=lambda offset: {})


def test_step_attention_is_the_last_row_of_every_head(tiny_lm, monkeypatch):
    """A step's rows, lent by a long prompt's capture, equal the whole context's own patterns' last rows."""
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 4)
    ids = tiny_lm.encode(PROMPT)
    cap = tiny_lm.capture_ids(ids)
    steps = generate(tiny_lm, ids, 3, Decoding(), start=cap)
    for step in steps:
        rows = step_attention(tiny_lm, cap, step.context)
        T = len(step.context)
        want = tiny_lm.capture_ids(list(step.context)).attention
        assert rows.shape == (want.n_layers, want.n_heads(0), T)
        for layer in range(want.n_layers):
            np.testing.assert_allclose(rows[layer], want.layer_rows(layer, T - 1, T)[:, 0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(rows.sum(-1), 1, atol=1e-5)
