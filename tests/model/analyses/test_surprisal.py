"""Surprisal against float64 references: the capture's own logits through a plain log-softmax (tiny
models, many row chunks), and transformers' own logits of the default model run in float64."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from model.analyses.sampling import top_tokens
from model.analyses.surprisal import surprisal
from model.core.logits import Logits

LN2 = np.log(2.0)


def fake_capture(logits: np.ndarray, token_ids: np.ndarray) -> SimpleNamespace:
    """What surprisal reads of a capture, around hand-made logits."""
    return SimpleNamespace(n_tokens=len(token_ids), summary=SimpleNamespace(vocab_size=logits.shape[1]),
                           logits=Logits.of_array(logits, token_ids), token_ids=token_ids)


def log_softmax64(rows: np.ndarray) -> np.ndarray:
    """(T, V) float64 log-softmax, the plain way."""
    x = np.asarray(rows, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def expected(logits: np.ndarray, ids: np.ndarray, top: int) -> dict[str, np.ndarray]:
    """What each prompt token i should get, read from row i - 1 by a float64 log-softmax and a stable sort."""
    logp = log_softmax64(logits[:-1])  # (T-1, V): row i-1 predicts token i
    seen = logp[np.arange(len(ids) - 1), ids[1:]]
    order = np.argsort(-logp, axis=-1, kind="stable")[:, :top]
    return {"bits": -seen / LN2, "probability": np.exp(seen),
            "rank": (logp > seen[:, None]).sum(axis=-1) + 1, "top_ids": order,
            "top_probability": np.exp(np.take_along_axis(logp, order, axis=-1))}


def check(result, want: dict[str, np.ndarray], atol: float) -> None:
    assert np.isnan(result.bits[0]) and np.isnan(result.probability[0]) and result.rank[0] == -1
    assert (result.top_ids[0] == -1).all()  # the first token: no prediction, said so, never a made-up 0
    for name in ("bits", "probability", "top_probability"):
        np.testing.assert_allclose(getattr(result, name)[1:], want[name], atol=atol, rtol=0, err_msg=name)
    np.testing.assert_array_equal(result.rank[1:], want["rank"])
    np.testing.assert_array_equal(result.top_ids[1:], want["top_ids"])


def test_equals_log_softmax_of_the_captured_logits(tiny_lm) -> None:
    """70 tokens: three chunks of rows; every figure is the float64 log-softmax of cap.logits."""
    cap = tiny_lm.capture(" ".join(f"word{i % 13}" for i in range(40)))
    assert cap.n_tokens > 64
    result = surprisal(cap, top=4)
    check(result, expected(cap.logits, cap.token_ids, 4), atol=1e-6)
    assert result.most_surprising == int(np.nanargmax(result.bits))


def test_equals_transformers_own_logits_in_float64(default_lm) -> None:
    """The default model's capture (float32) against transformers' own model loaded apart in float64."""
    from transformers import AutoModelForCausalLM

    from model.engine.default_model import converted_dir

    prompt = "The spy was a mole inside the agency. The capital of France is Paris, and the capital of Italy is"
    cap = default_lm.capture(prompt)
    model = AutoModelForCausalLM.from_pretrained(converted_dir(), dtype=torch.float64).eval()
    with torch.no_grad():
        logits = model(torch.tensor(cap.token_ids)[None]).logits[0].numpy()  # (T, V) float64
    want = expected(logits, cap.token_ids, 3)
    result = surprisal(cap, top=3)
    np.testing.assert_allclose(result.bits[1:], want["bits"], atol=2e-3, rtol=0)
    np.testing.assert_allclose(result.top_probability[1:], want["top_probability"], atol=1e-4, rtol=0)
    np.testing.assert_array_equal(result.top_ids[1:, 0], want["top_ids"][:, 0])
    assert (result.rank[1:] == want["rank"]).mean() > 0.9  # a rank can move where two logits nearly tie
    assert 0 < np.nanmean(result.bits) < 16  # a real sentence: a few bits per token, not noise


def test_ties_go_to_the_lower_id_as_on_the_next_token_page() -> None:
    """Whole-number logits tie often; vocabularies of any size (not multiples of the id groups)."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        V, T, top = int(rng.integers(2, 400)), 5, int(rng.integers(1, 6))
        logits = rng.integers(-3, 3, (T, V)).astype(np.float32)
        cap = fake_capture(logits, rng.integers(0, V, T))
        result = surprisal(cap, top=top)  # type: ignore[arg-type]
        for i in range(1, T):
            np.testing.assert_array_equal(result.top_ids[i], top_tokens(logits[i - 1], min(top, V)), err_msg=trial)


def test_one_token_has_no_prediction() -> None:
    cap = fake_capture(np.zeros((1, 7), np.float32), np.array([3]))
    result = surprisal(cap)  # type: ignore[arg-type]
    assert np.isnan(result.bits).all() and result.most_surprising is None


@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_a_sure_or_a_shocked_model_stays_finite(scale: float) -> None:
    """Logits far apart: probabilities of 1 and of e^-600 give 0 bits and ~866 bits, never inf or NaN."""
    logits = np.zeros((3, 50), np.float32)
    logits[:, 7] = 2 * scale
    cap = fake_capture(logits, np.array([0, 7, 8]))
    result = surprisal(cap)  # type: ignore[arg-type]
    assert np.isfinite(result.bits[1:]).all()
    np.testing.assert_allclose(result.bits[1:], expected(logits, cap.token_ids, 3)["bits"], rtol=1e-6)
