"""Patchscope: writing the identity prompt's own stream back at its placeholder changes nothing, a
different stream changes the reading, a batch of cells equals the cells one at a time, and an
identity prompt without a one-token placeholder is refused with a message."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses import patchscope as patchscope_module
from model.analyses.patchscope import (
    from_capture,
    identity_prompt,
    patched_logits,
    patchscope,
    plain_run,
    read_cells,
)
from model.analyses.sampling import probabilities
from model.core.errors import PromptError

SOURCE = "The capital of France is Paris, and the capital of Italy is"


def _probs(logits: np.ndarray) -> np.ndarray:
    return np.stack([probabilities(row, 1.0) for row in np.atleast_2d(logits)])


def _own_stream_changes_nothing(lm) -> None:
    identity = identity_prompt(lm)
    cells = [(layer, identity.slot) for layer in range(lm.summary.n_layers + 1)]
    vectors = read_cells(lm, identity.ids, cells)  # (L+1, D) the identity prompt's own streams
    patched = patched_logits(lm, identity, vectors, [layer for layer, _ in cells])  # (L+1, V)
    plain = lm.forward(list(identity.ids), last_only=True).logits  # (V,)
    assert np.allclose(patched, plain[None], atol=1e-4, rtol=0)
    assert np.abs(_probs(patched) - _probs(plain)).max() < 1e-5  # batch rows and reused keys: last bits


def test_own_stream_changes_nothing_tiny(tiny_lm) -> None:
    _own_stream_changes_nothing(tiny_lm)


def test_own_stream_changes_nothing_default(default_lm) -> None:
    _own_stream_changes_nothing(default_lm)


def test_the_capture_holds_the_same_streams(tiny_lm) -> None:
    cap = tiny_lm.capture(SOURCE)
    cells = [(0, 1), (1, 3), (2, cap.n_tokens - 1)]
    assert np.allclose(from_capture(cap.residual, cells), read_cells(tiny_lm, cap.token_ids.tolist(), cells), atol=1e-5)


def test_another_stream_changes_the_reading(default_lm) -> None:
    identity = identity_prompt(default_lm)
    cap = default_lm.capture(SOURCE)
    layer = 8
    reading = patchscope(default_lm, from_capture(cap.residual, [(layer, 5)]), [(layer, 5)], identity, k=10)
    plain = probabilities(plain_run(default_lm, identity)[0], 1.0)
    assert reading.top_ids[0, 0] != reading.plain_ids[0]  # " France" read instead of the identity prompt's guess
    assert np.abs(reading.top_probs[0, 0] - plain[reading.top_ids[0, 0]]) > 0.05


def test_embedding_row_reads_the_token_back(default_lm) -> None:
    """Written at the embedding, the source token simply takes the placeholder's place: the identity
    prompt then repeats it."""
    identity = identity_prompt(default_lm)
    cap = default_lm.capture(SOURCE)
    position = 3  # " France"
    reading = patchscope(default_lm, from_capture(cap.residual, [(0, position)]), [(0, position)], identity, n_new=2)
    assert int(reading.top_ids[0, 0]) == int(cap.token_ids[position])
    assert reading.continuations[0].startswith(default_lm.tokenizer.decode([int(cap.token_ids[position])]))


def test_a_batch_equals_cells_one_at_a_time(tiny_lm) -> None:
    identity = identity_prompt(tiny_lm)
    cap = tiny_lm.capture(SOURCE)
    cells = [(0, 2), (1, 4), (2, 4), (1, cap.n_tokens - 1)]
    vectors = from_capture(cap.residual, cells)
    layers = [layer for layer, _ in cells]
    batch = patched_logits(tiny_lm, identity, vectors, layers)  # (4, V)
    alone = np.concatenate([patched_logits(tiny_lm, identity, vectors[i:i + 1], layers[i:i + 1]) for i in range(4)])
    assert np.allclose(batch, alone, atol=1e-5, rtol=0)
    whole = patchscope(tiny_lm, vectors, cells, identity, k=3, n_new=3)
    single = [patchscope(tiny_lm, vectors[i:i + 1], cells[i:i + 1], identity, k=3, n_new=3) for i in range(4)]
    assert np.allclose(whole.top_probs, np.concatenate([s.top_probs for s in single]), atol=1e-5)
    assert whole.continuations == tuple(s.continuations[0] for s in single)


def test_whole_reruns_continue_as_carried_keys_do(tiny_lm, monkeypatch) -> None:
    """Where the model's cache cannot be carried, each step runs the patched rows whole: the same tokens."""
    identity = identity_prompt(tiny_lm)
    cap = tiny_lm.capture(SOURCE)
    cells = [(0, 2), (2, 5)]
    vectors = from_capture(cap.residual, cells)
    carried = patchscope(tiny_lm, vectors, cells, identity, n_new=4)
    monkeypatch.setattr(patchscope_module, "_carried", lambda rows: None)
    whole = patchscope(tiny_lm, vectors, cells, identity, n_new=4)
    assert whole.continuations == carried.continuations and all(carried.continuations)


@pytest.mark.parametrize(("text", "placeholder", "why"), [
    ("cat -> cat; hello -> hello", "?", "does not occur"),
    ("cat -> cat; xqzvw ->", "xqzvw", "not one token of its own"),
    ("", "?", "empty"),
])
def test_bad_identity_prompt_is_refused(tiny_lm, text: str, placeholder: str, why: str) -> None:
    with pytest.raises(PromptError, match=why):
        identity_prompt(tiny_lm, text, placeholder)


def test_placeholder_is_its_last_occurrence(tiny_lm) -> None:
    identity = identity_prompt(tiny_lm, "? -> ?; x -> x; ? ->")
    assert tiny_lm.tokenizer.decode([identity.ids[identity.slot]]).strip() == "?"
    assert identity.slot == len(identity.ids) - 2
