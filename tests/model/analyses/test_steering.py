"""Steering: coefficient 0 changes nothing (to the bit where the path is the same), a steered pass equals
plain transformers with a hook that adds the vector, frozen attention at 0 equals the unsteered run,
the same seed draws the same default text alone or batched, and each direction source equals its
definition computed another way."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.analyses import steering as S
from model.analyses.embeddings import vector_arithmetic
from model.analyses.generation import Decoding, generate
from model.engine.linear import matrix

PROMPT = "I went to the park and"
SEEDED = Decoding(greedy=False, temperature=1.0, seed=3)


def _hf_logits(lm, ids: list[int], vector: np.ndarray, layer: int, coefficient: float, start: int) -> np.ndarray:
    """The reference: transformers' own forward with a pre-hook on block `layer` adding the vector."""
    add = torch.tensor(vector, dtype=torch.float32) * coefficient

    def pre_hook(module, args, kwargs):
        hidden = (args[0] if args else kwargs["hidden_states"]).clone()
        hidden[:, start:] += add
        return ((hidden, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": hidden})

    handle = lm.layout.blocks[layer].register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        with torch.inference_mode():
            return lm.model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def love(default_lm) -> S.Direction:
    return S.actadd(default_lm, "I talk about weddings constantly", "I do not talk about weddings constantly", 6)


def test_coefficient_zero_is_the_unsteered_pass_to_the_bit(default_lm, love):
    ids = default_lm.encode(PROMPT)
    steered = S.steered_logits(default_lm, ids, S.Steering(love.vector, 6, 0.0))
    assert np.array_equal(steered, default_lm.forward(ids).logits)


def test_next_token_moves_are_the_captures_row_and_transformers_with_a_hook(default_lm, love):
    """The Lesson's question (where the next token goes): unsteered, the capture's own last row; steered,
    transformers' forward with the vector added at block 6; at coefficient 0 no pass at all."""
    from model.analyses.sampling import probabilities

    cap = default_lm.capture(PROMPT)
    ids = cap.token_ids.tolist()
    before, after = S.next_token_moves(default_lm, cap, S.Steering(love.vector, 6, 4.0))
    assert np.array_equal(before, probabilities(cap.logits[-1]))
    expected = probabilities(_hf_logits(default_lm, ids, love.vector, 6, 4.0, 0)[-1])
    np.testing.assert_allclose(after, expected, atol=1e-6)
    calls: list[int] = []
    handle = default_lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        same = S.next_token_moves(default_lm, cap, S.Steering(love.vector, 6, 0.0))
    finally:
        handle.remove()
    assert not calls and np.array_equal(same[0], same[1])


@pytest.mark.parametrize(("layer", "start"), [(6, 0), (0, 0), (20, 3)])
def test_steered_pass_equals_transformers_with_a_hook(default_lm, love, layer, start):
    ids = default_lm.encode(PROMPT)
    steering = S.Steering(love.vector, layer, 4.0, start)
    ours = S.steered_logits(default_lm, ids, steering)
    np.testing.assert_allclose(ours, _hf_logits(default_lm, ids, love.vector, layer, 4.0, start), atol=1e-5, rtol=0)
    plain = default_lm.forward(ids).logits
    assert np.array_equal(ours[:start], plain[:start])  # positions before start never see the direction
    assert np.abs(ours[-1] - plain[-1]).max() > 1.0


def test_same_seed_same_default_text_alone_or_batched_and_zero_gives_twins(default_lm, love):
    ids = default_lm.encode(PROMPT)
    twins = S.generate_pair(default_lm, ids, S.Steering(love.vector, 6, 0.0), 20, SEEDED)
    alone = tuple(s.token_id for s in generate(default_lm, ids, 20, SEEDED))
    assert twins.batched and len(alone) == 20
    assert twins.default_ids == alone and twins.steered_ids == alone
    assert twins.default_text == twins.steered_text
    steered = S.generate_pair(default_lm, ids, S.Steering(love.vector, 6, 4.0), 20, SEEDED)
    assert steered.default_ids == alone and steered.steered_ids != alone


@pytest.mark.parametrize("coefficient", [0.0, 4.0])
def test_the_prompts_capture_answers_the_unsteered_rows_first_step(default_lm, love, monkeypatch, coefficient):
    """With the prompt's capture, one row runs over the prompt (the steered one), not two; the pair,
    its texts and its scores are the pair's without it."""
    ids = default_lm.encode(PROMPT)
    steering = S.Steering(love.vector, 6, coefficient)
    without = S.generate_pair(default_lm, ids, steering, 8, SEEDED)
    cap = default_lm.capture_ids(ids)
    calls: list[tuple[int, int]] = []  # (rows, positions) of each pass
    forward = default_lm.forward
    monkeypatch.setattr(default_lm, "forward", lambda run, **kw: calls.append(
        (len(run), len(run[0])) if isinstance(run[0], list) else (1, len(run))) or forward(run, **kw))
    seeded = S.generate_pair(default_lm, ids, steering, 8, SEEDED, start=cap)
    assert calls[0] == (1, len(ids)) and (2, len(ids)) not in calls  # the prompt ran once, as one row
    assert seeded.default_ids == without.default_ids
    assert seeded.scores is not None and without.scores is not None
    np.testing.assert_allclose(seeded.scores.next_default, without.scores.next_default, atol=1e-6)
    np.testing.assert_allclose(seeded.scores.next_steered, without.scores.next_steered, atol=1e-5)
    if coefficient == 0:  # twins, as without the capture (a steered draw may round apart at a near tie)
        assert seeded.steered_ids == seeded.default_ids == without.steered_ids


def test_batched_steered_text_equals_one_row_at_a_time(default_lm, love):
    """The fallback (one continuation after the other, each step's pass edited at its own offset)."""
    ids = default_lm.encode(PROMPT)
    steering = S.Steering(love.vector, 6, 4.0, start=2)
    pair = S.generate_pair(default_lm, ids, steering, 12, Decoding(greedy=True))
    alone = generate(default_lm, ids, 12, Decoding(greedy=True),
                     sites=lambda offset: {steering.site: S.steering_edit(steering, [0], offset)})
    assert pair.steered_ids == tuple(s.token_id for s in alone)


def _reference_log_probs(lm, ids: list[int], new: tuple[int, ...], logits: np.ndarray) -> np.ndarray:
    x = torch.tensor(logits, dtype=torch.float64).log_softmax(-1)
    text = list(ids) + list(new)
    return np.array([x[j - 1, text[j]].item() for j in range(len(ids), len(text))])


@pytest.mark.parametrize("read", ["while drawing", "score", "from the capture"])
@pytest.mark.parametrize("start", [0, 2])
def test_scores_equal_single_passes(default_lm, love, read, start):
    """Both ways of reading the texts: the pair's own (its steps, then one crossed pass of two rows from
    each prompt's keys and values, also when the prompt's capture answered its first step) and score()'s
    four rows; each equals plain single passes."""
    ids = default_lm.encode(PROMPT)
    steering = S.Steering(love.vector, 6, 4.0, start)
    cap = default_lm.capture_ids(ids) if read == "from the capture" else None
    pair = S.generate_pair(default_lm, ids, steering, 10, SEEDED, start=cap)
    scores = S.score(default_lm, ids, pair, steering) if read == "score" else pair.scores
    assert scores is not None and not scores.frozen
    for new, by_default, by_steered in ((pair.default_ids, scores.default_by_default, scores.default_by_steered),
                                        (pair.steered_ids, scores.steered_by_default, scores.steered_by_steered)):
        text = list(ids) + list(new)
        plain = default_lm.forward(text).logits
        steered = _hf_logits(default_lm, text, love.vector, 6, 4.0, start)
        np.testing.assert_allclose(by_default, _reference_log_probs(default_lm, ids, new, plain), atol=1e-4)
        np.testing.assert_allclose(by_steered, _reference_log_probs(default_lm, ids, new, steered), atol=1e-4)
    assert scores.steered_by_steered.sum() > scores.steered_by_default.sum()  # the steered text is the steered model's
    np.testing.assert_allclose(scores.next_default, torch.tensor(default_lm.forward(ids).logits[-1],
                                                                 dtype=torch.float64).softmax(-1).numpy(), atol=1e-5)
    moved = scores.moved(5)
    gaps = np.abs(scores.next_steered - scores.next_default)
    assert gaps[moved[0]] == gaps.max() and list(gaps[moved]) == sorted(gaps[moved], reverse=True)


def test_texts_of_different_lengths_are_read_whole(default_lm, love):
    """A text that ended early (end of text) beside a longer one: the crossed pass pads the shorter."""
    ids = default_lm.encode(PROMPT)
    steering = S.Steering(love.vector, 6, 4.0)
    pair = S.generate_pair(default_lm, ids, steering, 10, SEEDED)
    eos = default_lm.tokenizer.eos_token_id
    default_lm.tokenizer.eos_token_id = pair.default_ids[3]  # the default text now stops at its fourth token
    try:
        short = S.generate_pair(default_lm, ids, steering, 10, SEEDED)
    finally:
        default_lm.tokenizer.eos_token_id = eos
    assert short.default_ids == pair.default_ids[:pair.default_ids.index(pair.default_ids[3]) + 1]
    assert short.scores is not None and pair.scores is not None
    n = len(short.default_ids)
    np.testing.assert_allclose(short.scores.default_by_steered, pair.scores.default_by_steered[:n], atol=1e-4)
    np.testing.assert_allclose(short.scores.default_by_default, pair.scores.default_by_default[:n], atol=1e-4)


def test_frozen_attention(default_lm, love):
    ids = default_lm.encode(PROMPT)
    zero = S.Steering(love.vector, 6, 0.0)
    pair = S.generate_pair(default_lm, ids, zero, 6, SEEDED)
    frozen = S.score(default_lm, ids, pair, zero, frozen=True)
    # Two rows of one batch: with several threads their products may round apart in the last bits.
    np.testing.assert_allclose(frozen.next_steered, frozen.next_default, rtol=0, atol=1e-6)
    np.testing.assert_allclose(frozen.default_by_steered, frozen.default_by_default, rtol=0, atol=1e-5)
    plain = S.score(default_lm, ids, pair, zero)
    np.testing.assert_allclose(frozen.next_default, plain.next_default, atol=1e-6)
    pushed = S.Steering(love.vector, 6, 4.0)
    free, held = S.score(default_lm, ids, pair, pushed), S.score(default_lm, ids, pair, pushed, frozen=True)
    np.testing.assert_array_equal(held.next_default, free.next_default)  # the unsteered rows are never edited
    assert np.abs(held.next_steered - free.next_steered).max() > 1e-3  # frozen patterns change what the MLPs see


def test_frozen_attention_at_the_last_block_leaves_attention_unchanged(default_lm, love):
    """Steering only the last position at the last block: its attention row reads keys from the
    unsteered positions anyway, and its query alone is steered: freezing must change the result,
    and the free run must equal transformers with a hook (independent of the listener)."""
    ids = default_lm.encode(PROMPT)
    last = default_lm.summary.n_layers - 1
    steering = S.Steering(love.vector, last, 4.0, start=len(ids) - 1)
    pair = S.Continuations((), (), "", "", True, 0.0)
    free = S.score(default_lm, ids, pair, steering)
    reference = torch.tensor(_hf_logits(default_lm, ids, love.vector, last, 4.0, len(ids) - 1)[-1], dtype=torch.float64)
    np.testing.assert_allclose(free.next_steered, reference.softmax(-1).numpy(), atol=1e-6)
    held = S.score(default_lm, ids, pair, steering, frozen=True)
    assert np.abs(held.next_steered - free.next_steered).max() > 0


def test_actadd_is_the_difference_of_the_captured_streams(default_lm, love):
    a = default_lm.capture("I talk about weddings constantly").residual[6, -1]
    b = default_lm.capture("I do not talk about weddings constantly").residual[6, -1]
    np.testing.assert_allclose(love.vector, a - b, atol=1e-4)
    one_pair = S.contrastive(default_lm, ["I talk about weddings constantly"],
                             ["I do not talk about weddings constantly"], 6)
    np.testing.assert_allclose(one_pair.vector, love.vector, atol=1e-5)


def test_contrastive_is_the_mean_of_pair_differences(default_lm):
    pos, neg = ["I love it", "What a joy"], ["I hate it", "What a pain"]
    mean = S.contrastive(default_lm, pos, neg, 10).vector
    parts = [S.actadd(default_lm, p, n, 10).vector for p, n in zip(pos, neg)]
    np.testing.assert_allclose(mean, np.mean(parts, axis=0), atol=1e-5)


@pytest.mark.parametrize(("positives", "negatives", "words"), [
    ([], ["x"], "at least one"), (["a", "b"], ["c"], "2 prompts"), (["a"] * 9, ["b"] * 9, "At most"),
    ([" "], ["b"], "at least one"),
])
def test_contrastive_refuses_bad_lists(default_lm, positives, negatives, words):
    with pytest.raises(ValueError, match=words):
        S.contrastive(default_lm, positives, negatives, 3)


def test_other_sources(default_lm):
    arith = S.arithmetic(default_lm, "king - man + woman")
    np.testing.assert_array_equal(arith.vector, vector_arithmetic(default_lm.tokenizer, default_lm.embedding_matrix,
                                                                  "king - man + woman").result.astype(np.float32))
    neuron = S.neuron_column(default_lm, 4, 17)
    down = default_lm.layout.mlps[4].down_proj
    np.testing.assert_array_equal(neuron.vector, down.weight[:, 17].detach().numpy())
    np.testing.assert_array_equal(neuron.vector, matrix(down)[:, 17].astype(np.float32))
    paris = default_lm.tokenizer(" Paris", add_special_tokens=False)["input_ids"][0]
    row = S.unembedding_row(default_lm, paris, "·Paris")
    assert np.linalg.norm(row.vector) == pytest.approx(1.0, abs=1e-6)
    reading = S.read_direction(default_lm, row.vector)
    assert reading.similar[0] == paris  # tied embeddings: the row is the token's own embedding direction
    with pytest.raises(ValueError, match="out of range"):
        S.neuron_column(default_lm, 4, 10**6)


def test_read_direction_equals_the_norm_and_unembedding_by_hand(default_lm, love):
    reading = S.read_direction(default_lm, love.vector)
    v = love.vector.astype(np.float64)
    g = default_lm.layout.final_norm.weight.detach().double().numpy()
    eps = default_lm.layout.final_norm.variance_epsilon
    unembed = default_lm.model.get_output_embeddings().weight.detach().double().numpy()
    scores = unembed @ (g * v / np.sqrt((v ** 2).mean() + eps))
    np.testing.assert_allclose(reading.promoted_by, np.sort(scores)[::-1][:10], rtol=1e-4, atol=1e-3)
    assert reading.promoted[0] == int(np.argmax(scores)) and reading.suppressed[0] == int(np.argmin(scores))
    cos = default_lm.embedding_matrix.astype(np.float64) @ v / (
        np.linalg.norm(default_lm.embedding_matrix, axis=1) * np.linalg.norm(v))
    assert reading.similar[0] == int(np.argmax(cos)) and reading.similar_cos[0] == pytest.approx(cos.max(), abs=1e-5)


@pytest.mark.parametrize(("layer", "coefficient", "start", "words"), [
    (30, 1.0, 0, "out of range: this model has blocks 0 to 29"), (-1, 1.0, 0, "out of range"),
    (6, 1e9, 0, "too large"), (6, float("nan"), 0, "too large"), (6, 1.0, 99, "past the prompt"),
])
def test_bad_setups_are_refused_with_words(default_lm, love, layer, coefficient, start, words):
    with pytest.raises(ValueError, match=words):
        S.steered_logits(default_lm, default_lm.encode(PROMPT), S.Steering(love.vector, layer, coefficient, start))


def test_typical_norm_is_the_median_row_length():
    stream = np.array([[300.0, 400.0], [3.0, 4.0], [6.0, 8.0]])
    assert S.typical_norm(stream) == 10.0


def test_tiny_models_coefficient_zero_and_twins(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    vector = np.ones(tiny_lm.summary.d_model, dtype=np.float32)
    zero = S.Steering(vector, 1, 0.0)
    assert np.array_equal(S.steered_logits(tiny_lm, ids, zero), tiny_lm.forward(ids).logits)
    twins = S.generate_pair(tiny_lm, ids, zero, 5, SEEDED)
    assert twins.default_ids == twins.steered_ids == tuple(s.token_id for s in generate(tiny_lm, ids, 5, SEEDED))
    assert twins.scores is not None
    np.testing.assert_allclose(twins.scores.default_by_steered, twins.scores.default_by_default, atol=1e-5)
    frozen = S.score(tiny_lm, ids, twins, zero, frozen=True)
    np.testing.assert_allclose(frozen.next_default, frozen.next_steered, rtol=0, atol=1e-6)  # rows of one batch


def test_frozen_attention_equals_transformers_with_the_unsteered_patterns(default_lm, love):
    """The reference: transformers' own forward, first unsteered with output_attentions (eager), then
    steered by a pre-hook with an attention function (registered here, in the test) that mixes each
    layer's values with the stored unsteered weights."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask
    from transformers.models.llama.modeling_llama import repeat_kv

    model, ids = default_lm.model, default_lm.encode(PROMPT)
    with torch.inference_mode():
        stored = model(input_ids=torch.tensor([ids]), output_attentions=True).attentions  # L x (1, H, T, T)

    def frozen(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        weights = stored[module.layer_idx]
        return torch.matmul(weights, repeat_kv(value, module.num_key_value_groups)).transpose(1, 2).contiguous(), weights

    AttentionInterface.register("test_frozen", frozen)
    AttentionMaskInterface.register("test_frozen", eager_mask)
    model.set_attn_implementation("test_frozen")
    try:
        reference = _hf_logits(default_lm, ids, love.vector, 6, 4.0, 0)[-1]
    finally:
        model.set_attn_implementation("eager")
    empty = S.Continuations((), (), "", "", True, 0.0)
    held = S.score(default_lm, ids, empty, S.Steering(love.vector, 6, 4.0), frozen=True)
    expected = torch.tensor(reference, dtype=torch.float64).softmax(-1).numpy()
    np.testing.assert_allclose(held.next_steered, expected, atol=1e-6)
    free = S.score(default_lm, ids, empty, S.Steering(love.vector, 6, 4.0))
    assert np.abs(free.next_steered - expected).max() > 1e-3  # freezing is not a no-op here


def test_scores_of_a_one_token_prompt(default_lm, love):
    """No prompt before the last token to lend keys and values: the texts run whole."""
    ids = default_lm.encode("Hello")[:1]
    steering = S.Steering(love.vector, 6, 4.0)
    pair = S.generate_pair(default_lm, ids, steering, 5, SEEDED)
    scores = S.score(default_lm, ids, pair, steering)
    text = list(ids) + list(pair.steered_ids)
    steered = _hf_logits(default_lm, text, love.vector, 6, 4.0, 0)
    for read in (scores, pair.scores):
        assert read is not None
        np.testing.assert_allclose(read.steered_by_steered, _reference_log_probs(default_lm, ids, pair.steered_ids,
                                                                                 steered), atol=1e-4)
    np.testing.assert_allclose(scores.next_default, torch.tensor(default_lm.forward(ids).logits[-1], dtype=torch.float64)
                               .softmax(-1).numpy(), atol=1e-5)  # a batch of four rows: float rounding (3e-6 seen)
