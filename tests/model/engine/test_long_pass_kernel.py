"""Long passes that read no patterns (model/engine/language_model.py, `fast_when_long`): from
PATTERNS_ON_DEMAND_TOKENS new positions a plain pass runs the family's sdpa kernel, as a long capture
does, and equals transformers' eager forward to float rounding; a shorter one stays on the model's own
eager. Views of one query row of a long capture read that row only, never a whole layer's patterns.
Tiny models lower the threshold (their positions end at 256)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model import LanguageModel
from model.analyses.head_attribution import head_outputs
from model.analyses.mlp import MlpRecording, block_neurons, record_mlp
from model.core import patterns
from model.engine import language_model

PROMPT = ("The quick brown fox jumps over the lazy dog because it can, and then it runs home again to sleep "
          "until the morning, when the birds sing and the sun rises over the quiet hills.")
LONG_FROM = 16


@pytest.fixture
def low_threshold(monkeypatch):
    """Long from 16 tokens: the tiny models' prompts count as long, their first 15 tokens as short."""
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", LONG_FROM)


def kernel_heard(lm: LanguageModel, ids: list[int]) -> str:
    """The attention implementation the first attention module runs under during a default pass."""
    heard = []
    handle = lm.layout.attentions[0].register_forward_pre_hook(
        lambda module, args: heard.append(lm.model.config._attn_implementation))
    try:
        lm.forward(ids, last_only=True)
    finally:
        handle.remove()
    return heard[0]


def test_a_long_pass_runs_the_fast_kernel_and_a_short_one_eager(tiny_lm, low_threshold):
    ids = tiny_lm.encode(PROMPT)
    assert len(ids) > LONG_FROM
    assert kernel_heard(tiny_lm, ids) == "sdpa"
    assert kernel_heard(tiny_lm, ids[:LONG_FROM - 1]) == "eager"
    assert tiny_lm.model.config._attn_implementation == "eager"  # restored after the pass


def test_a_long_pass_equals_transformers_eager_forward(tiny_lm, low_threshold):
    ids = tiny_lm.encode(PROMPT)
    with torch.no_grad():
        want = tiny_lm.model(torch.tensor(ids)[None], use_cache=False).logits[0].numpy()
    np.testing.assert_allclose(tiny_lm.forward(ids).logits, want, atol=1e-5, rtol=0)


def test_mlp_recorded_alone_equals_the_recording_on_a_long_capture(tiny_lm, low_threshold):
    ids = tiny_lm.encode(PROMPT)
    layers = range(tiny_lm.summary.n_layers)
    riding = MlpRecording(tiny_lm, layers)
    tiny_lm._capture_one(ids, None, also=riding.hooks)  # the capture's own pass, as the MLP page's first visit
    alone, with_capture = record_mlp(tiny_lm, ids, layers), riding.result(len(ids))
    np.testing.assert_allclose(alone.inputs, with_capture.inputs, atol=1e-6, rtol=0)
    last = tiny_lm.summary.n_layers - 1
    np.testing.assert_allclose(block_neurons(tiny_lm, alone, last), block_neurons(tiny_lm, with_capture, last), atol=1e-6)


def test_head_outputs_of_a_long_capture_read_one_row_of_patterns(tiny_lm, low_threshold, monkeypatch):
    ids = tiny_lm.encode(PROMPT)
    long = tiny_lm.capture_ids(ids)
    assert long.attention.full is None
    pos = len(ids) - 3
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 10_000)
    short = tiny_lm.capture_ids(ids)  # eager's whole patterns: the reference
    assert short.attention.full is not None
    want = head_outputs(tiny_lm, short, pos)
    monkeypatch.setattr(patterns, "MATERIALIZE_BUDGET", 1024)  # a whole layer of the long capture is refused
    with pytest.raises(Exception, match="budget"):
        long.attention.layer(0)
    np.testing.assert_allclose(head_outputs(tiny_lm, long, pos), want, atol=1e-5, rtol=0)


def test_passes_over_parts_of_one_prompt_run_its_kernel(tiny_lm, low_threshold):
    """Occlusion sets its rows (a token shorter) against the prompt's own pass: at exactly the
    threshold all of them run the prompt's fast kernel, not eager for the shorter rows."""
    from model.analyses.saliency import occlusion

    ids = tiny_lm.encode(PROMPT)[:LONG_FROM]
    heard: list[str] = []
    handle = tiny_lm.layout.attentions[0].register_forward_pre_hook(
        lambda module, args: heard.append(tiny_lm.model.config._attn_implementation))
    try:
        occlusion(tiny_lm, ids, ids[-1], None, remove=True)
    finally:
        handle.remove()
    assert len(heard) >= 2 and set(heard) == {"sdpa"}
