"""Long captures (model/engine/language_model.py, PATTERNS_ON_DEMAND_TOKENS): from that length a capture
runs the fast kernel and its `attention` keeps each layer's queries and keys, any head recomputed on
demand. Its patterns equal transformers' eager ones, and a batched row's or an extension's equal a
single capture's. Tiny models lower the threshold (their positions end at 256); the default model
runs past the real one."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model import LanguageModel
from model.core.errors import XrayError
from model.core.patterns import Patterns
from model.engine import language_model
from model.engine.batching import Request

PROMPT = ("The quick brown fox jumps over the lazy dog because it can, and then it runs home again to sleep "
          "until the morning, when the birds sing and the sun rises over the quiet hills.")
FIELDS = ("residual", "attn_out", "mlp_out", "logits")


@pytest.fixture
def low_threshold(monkeypatch):
    """Patterns on demand from 8 tokens: the tiny models' prompts count as long."""
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 8)


def eager_reference(lm: LanguageModel, ids: list[int]):
    with torch.no_grad():
        return lm.model(torch.tensor(ids)[None], output_attentions=True, output_hidden_states=True, use_cache=False)


def assert_same_patterns(got: Patterns, want: Patterns, atol: float) -> None:
    assert got.shape == want.shape
    for layer in range(want.n_layers):
        for head in range(want.n_heads(layer)):
            np.testing.assert_allclose(got.head(layer, head), want.head(layer, head), atol=atol, rtol=0,
                                       err_msg=f"layer {layer} head {head}")


def test_a_long_capture_keeps_queries_and_keys_and_matches_transformers(tiny_lm, low_threshold):
    ids = tiny_lm.encode(PROMPT)
    cap = tiny_lm.capture_ids(ids)
    assert cap.attention.full is None and cap.attention.nbytes < np.prod(cap.attention.shape) * 4
    ref = eager_reference(tiny_lm, ids)
    for layer, weights in enumerate(ref.attentions):
        for head in range(weights.shape[1]):
            np.testing.assert_allclose(cap.attention.head(layer, head), weights[0, head].numpy(), atol=1e-6)
    np.testing.assert_allclose(cap.residual[:-1], np.stack([h[0].numpy() for h in ref.hidden_states])[:-1], atol=1e-5)
    np.testing.assert_allclose(cap.logits, ref.logits[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(cap.attention[1], np.stack([w.numpy() for w in ref.attentions[1][0]]), atol=1e-6)


def test_batched_rows_keep_each_rows_own_patterns(tiny_lm, low_threshold):
    ids = tiny_lm.encode(PROMPT)
    short = ids[:-7]
    requests = [Request(ids, None), Request(short, None)]
    tiny_lm._capture_rows(requests)
    for request, want in zip(requests, (tiny_lm.capture_ids(ids), tiny_lm.capture_ids(short))):
        got = request.answer()
        assert got.attention.full is None and got.n_tokens == want.n_tokens
        assert_same_patterns(got.attention, want.attention, 1e-5)
        for name in FIELDS:
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=1e-5, err_msg=name)


def test_an_extension_equals_a_full_capture(tiny_lm, low_threshold, monkeypatch):
    ids = tiny_lm.encode(PROMPT)
    full = tiny_lm.capture_ids(ids)
    passes: list[int] = []  # tokens each pass ran
    forward = tiny_lm.forward
    monkeypatch.setattr(tiny_lm, "forward", lambda run, **kw: passes.append(len(run)) or forward(run, **kw))
    for cut in (12, len(ids) - 1):
        base = tiny_lm.capture_ids(ids[:cut])
        passes.clear()
        extended = tiny_lm.extend_capture(base, ids)
        assert passes == [len(ids) - cut]  # only the new tokens ran, from base's keys and values
        assert extended.attention.full is None
        assert_same_patterns(extended.attention, full.attention, 1e-5)
        for name in FIELDS:
            np.testing.assert_allclose(getattr(extended, name), getattr(full, name), atol=1e-5, err_msg=name)
    prefix = tiny_lm.extend_capture(full, ids[:20])  # nothing new to run: the first 20 tokens' patterns
    assert_same_patterns(prefix.attention, tiny_lm.capture_ids(ids[:20]).attention, 1e-6)


def test_patterns_lent_by_a_capture_run_only_the_tokens_after_it(tiny_lm, low_threshold, monkeypatch):
    """`patterns(ids, start=capture)`: the shared tokens' queries and keys come from the capture, a pass
    runs the rest (a Generate step's context after a long prompt), and every head equals transformers'
    eager attentions over the whole ids."""
    ids = tiny_lm.encode(PROMPT)
    ref = eager_reference(tiny_lm, ids)
    passes: list[int] = []
    forward = tiny_lm.forward
    monkeypatch.setattr(tiny_lm, "forward", lambda run, **kw: passes.append(len(run)) or forward(run, **kw))
    for cut in (12, len(ids)):
        base = tiny_lm.capture_ids(ids[:cut])
        passes.clear()
        got = tiny_lm.patterns(ids, start=base)
        assert passes == [max(1, len(ids) - cut)]  # the new tokens, or the last one when base holds them all
        for layer, weights in enumerate(ref.attentions):
            np.testing.assert_allclose(got.layer_rows(layer, 0, len(ids)), weights[0].numpy(), atol=1e-5,
                                       err_msg=f"cut {cut} layer {layer}")


def test_a_capture_with_whole_patterns_lends_nothing(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    base = tiny_lm.capture_ids(ids[:12])
    assert base.attention.full is not None  # short: eager's own patterns, no queries to lend
    got = tiny_lm.patterns(ids, start=base)
    assert_same_patterns(got, tiny_lm.patterns(ids), 0)


@pytest.fixture
def in_chunks(monkeypatch, low_threshold):
    """Captures of the tiny models run their pass 5 positions at a time, as a 4,096-token one runs 512."""
    monkeypatch.setattr(language_model, "LARGE_STREAM_BYTES", 1)
    monkeypatch.setattr(language_model, "CAPTURE_CHUNK", 5)
    monkeypatch.setattr(language_model, "KEPT_ROWS", 3)


def _capture_counting_calls(lm, ids: list[int]):
    """The capture of ids, and the positions each of its model calls ran."""
    passes: list[int] = []
    handle = lm.layout.blocks[0].register_forward_pre_hook(lambda _, args: passes.append(args[0].shape[1]))
    try:
        return lm.capture_ids(ids), passes
    finally:
        handle.remove()


def test_a_capture_in_chunks_equals_transformers(tiny_lm, in_chunks):
    ids = tiny_lm.encode(PROMPT)
    cap, passes = _capture_counting_calls(tiny_lm, ids)
    assert sum(passes) == len(ids) and len(passes) == -(-len(ids) // 5) and min(passes) >= 3  # the kept rows fit the last
    ref = eager_reference(tiny_lm, ids)
    for layer, weights in enumerate(ref.attentions):
        np.testing.assert_allclose(cap.attention.layer_rows(layer, 0, len(ids)), weights[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(cap.residual[:-1], np.stack([h[0].numpy() for h in ref.hidden_states])[:-1], atol=1e-5)
    np.testing.assert_allclose(cap.logits.rows, ref.logits[0, -3:].numpy(), atol=1e-5)
    extended = tiny_lm.extend_capture(cap, ids + ids[:4])  # its keys and values lend as a whole pass's do
    assert_same_patterns(extended.attention, tiny_lm.capture_ids(ids + ids[:4]).attention, 1e-5)


def test_chunks_that_disagree_run_the_pass_whole(tiny_lm, in_chunks, monkeypatch):
    """A family whose chunks are told different masks (or anything else `_same_recipe` refuses) is
    captured again in one pass, not kept wrong and not with whole patterns."""
    from model.engine import qk_recording

    ids = tiny_lm.encode(PROMPT)
    monkeypatch.setattr(qk_recording, "_same_recipe", lambda a, b: False)
    cap, passes = _capture_counting_calls(tiny_lm, ids)
    assert passes[-1] == len(ids) and cap.attention.full is None
    ref = eager_reference(tiny_lm, ids)
    np.testing.assert_allclose(cap.attention.layer_rows(1, 0, len(ids)), ref.attentions[1][0].numpy(), atol=1e-6)


def test_whole_patterns_past_the_budget_name_the_view(tiny_lm, low_threshold, monkeypatch):
    from model.core import patterns

    cap = tiny_lm.capture(PROMPT)
    monkeypatch.setattr(patterns, "MATERIALIZE_BUDGET", 1000)
    with pytest.raises(XrayError, match="test_long_capture.py:test_whole_patterns_past_the_budget_name_the_view"):
        np.asarray(cap.attention)
    assert cap.attention.pooled(0, 0, 4).shape == (4, 4)  # windows and overviews still answer


@pytest.mark.slow
def test_the_default_model_past_the_threshold(default_lm):
    """Past PATTERNS_ON_DEMAND_TOKENS the default model's capture is one fast pass: a few heads equal
    transformers' eager attentions within sdpa's float32 rounding, the stream and logits within the
    capture parity's tolerances."""
    words = "When Mary and John went to the store, John gave a drink to Mary because she was thirsty. "
    ids = default_lm.encode(words * 20)[:language_model.PATTERNS_ON_DEMAND_TOKENS + 44]
    cap = default_lm.capture_ids(ids)
    assert cap.attention.full is None and cap.n_tokens == language_model.PATTERNS_ON_DEMAND_TOKENS + 44
    ref = eager_reference(default_lm, ids)
    for layer, head in ((0, 0), (5, 3), (17, 8), (29, 4)):
        np.testing.assert_allclose(cap.attention.head(layer, head), ref.attentions[layer][0, head].numpy(), atol=1e-5,
                                   err_msg=f"layer {layer} head {head}")
    hidden = np.stack([h[0].numpy() for h in ref.hidden_states])
    np.testing.assert_allclose(cap.residual[:-1], hidden[:-1], atol=1e-3, rtol=1e-5)
    assert len(cap.logits.rows) == language_model.KEPT_ROWS
    assert_logits_match(default_lm, cap, ref.logits[0].numpy(), atol=1e-3)


@pytest.fixture
def few_rows(monkeypatch, low_threshold):
    """Long captures keep the logits of their last 5 positions only."""
    monkeypatch.setattr(language_model, "KEPT_ROWS", 5)


def assert_logits_match(lm: LanguageModel, cap, want: np.ndarray, atol: float = 1e-5) -> None:
    """A capture's logits, kept or not, against (T, V) reference rows: every row through logits_at,
    each position's statistics and the logit of the token that followed."""
    T = cap.n_tokens
    np.testing.assert_allclose(lm.logits_at(cap, range(T)), want, atol=atol, rtol=0)
    stats = lm.logit_stats(cap)
    assert cap.logits.stats is stats  # remembered in the capture
    lse = torch.logsumexp(torch.from_numpy(want).double(), dim=-1).numpy()
    np.testing.assert_allclose(stats.lse, lse, atol=atol, rtol=0)
    np.testing.assert_array_equal(stats.top_ids[:, 0], want.argmax(-1))
    following = want[np.arange(T - 1), cap.token_ids[1:]]
    np.testing.assert_allclose(stats.next_logit[:-1], following, atol=atol, rtol=0)
    assert np.isnan(stats.next_logit[-1]) and stats.next_rank[-1] == -1
    ranks = np.count_nonzero(want[:-1] > following[:, None], axis=-1)
    assert np.abs(stats.next_rank[:-1] - ranks).max() <= 1  # float rounding may swap near-equal logits


def test_a_long_capture_keeps_its_last_rows_and_every_positions_statistics(tiny_lm, few_rows):
    ids = tiny_lm.encode(PROMPT)
    cap = tiny_lm.capture_ids(ids)
    want = eager_reference(tiny_lm, ids).logits[0].numpy()  # (T, V) transformers' own
    assert not cap.logits.complete and len(cap.logits.rows) == 5 and cap.logits.kept(-1)
    np.testing.assert_allclose(cap.logits[-5:], want[-5:], atol=1e-5)
    with pytest.raises(XrayError, match="logit_stats"):  # the pass computes no statistics: asked, the model does
        _ = cap.logits.stats
    assert_logits_match(tiny_lm, cap, want)
    with pytest.raises(XrayError, match="position 0 were not kept"):
        cap.logits[0]
    assert cap.logits.nbytes < want.nbytes / 2


def test_long_logits_follow_batches_extensions_and_prefixes(tiny_lm, few_rows):
    ids = tiny_lm.encode(PROMPT)
    want = eager_reference(tiny_lm, ids).logits[0].numpy()
    requests = [Request(ids, None), Request(ids[:-7], None)]
    tiny_lm._capture_rows(requests)
    assert_logits_match(tiny_lm, requests[0].answer(), want)
    assert_logits_match(tiny_lm, requests[1].answer(), want[:-7])
    for cut in (12, len(ids) - 2):  # a short base (every row) and a long one (its last 5)
        extended = tiny_lm.extend_capture(tiny_lm.capture_ids(ids[:cut]), ids)
        assert len(extended.logits.rows) == 5
        assert_logits_match(tiny_lm, extended, want)
    full = tiny_lm.capture_ids(ids)
    for n in (len(ids) - 2, 20, 6):  # kept rows, rows computed again, a short prefix holding every row
        prefix = tiny_lm.extend_capture(full, ids[:n])
        assert prefix.logits.kept(-1) and prefix.logits.complete == (n < 8)
        assert_logits_match(tiny_lm, prefix, eager_reference(tiny_lm, ids[:n]).logits[0].numpy())


def test_logits_at_refuses_another_models_capture(tiny_lm, default_lm):
    with pytest.raises(ValueError, match="cannot be read"):
        default_lm.logits_at(tiny_lm.capture(PROMPT), 0)
