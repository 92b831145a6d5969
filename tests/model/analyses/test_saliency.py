"""Input saliency against independent references: gradient × input equals torch.autograd on the
transformers model itself (float64 copy), occlusion equals the target of each modified prompt run
alone, integrated gradients add up to the change along the path within Captum's delta (small at 32
steps on the default model), batching changes nothing, and a model with quantised weights is refused."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from model.analyses.saliency import (
    gradient_x_input,
    integrated_gradients,
    metric,
    neutral_token,
    occluded_rows,
    occlusion,
    saliency,
)
from model.engine.gradients import NoExactGradients

PROMPT = "The capital of France is Paris and"
NO_DOUBLE = {"gpt_oss", "granitemoe", "mixtral", "olmoe", "qwen2_moe", "qwen3_moe"}  # grouped matmuls: float32 only


def _double(lm) -> torch.nn.Module:
    return copy.deepcopy(lm.model).double()


def _target(model, ids: list[int], a: int, b: int | None) -> float:
    """Plain transformers, float64: logit(A) − logit(B) at the last position of `ids` run alone."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    return float(logits[a] - (logits[b] if b is not None else 0.0))


def test_gradient_x_input_equals_autograd_on_the_model(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    a, b = 7, 11
    model = _double(tiny_lm)
    embeds = model.get_input_embeddings()(torch.tensor([ids])).detach().requires_grad_()
    logits = model(inputs_embeds=embeds).logits[0, -1]
    (grad,) = torch.autograd.grad(logits[a] - logits[b], embeds)
    expected = (grad * embeds).sum(-1)[0].detach().numpy()
    result = gradient_x_input(tiny_lm, ids, a, b)
    np.testing.assert_allclose(result.values, expected, atol=1e-4, rtol=1e-4)
    assert result.target == pytest.approx(_target(model, ids, a, b), abs=1e-4)


def test_the_weights_flags_come_back_as_they_were(tiny_lm):
    """The gradient door freezes every weight while it runs (less backward state) and restores them."""
    before = [p.requires_grad for p in tiny_lm.model.parameters()]
    integrated_gradients(tiny_lm, tiny_lm.encode(PROMPT), 7, None, steps=4)
    assert [p.requires_grad for p in tiny_lm.model.parameters()] == before


def test_a_position_reads_only_the_tokens_up_to_it(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    result = saliency(tiny_lm, ids, 3, 5, None, "gradient")
    assert result.position == 3 and result.values.shape == (4,)
    np.testing.assert_allclose(result.values, gradient_x_input(tiny_lm, ids[:4], 5, None).values)


@pytest.mark.parametrize("remove", [False, True])
def test_occlusion_is_the_change_of_each_modified_prompt_run_alone(tiny_lm, remove):
    ids = tiny_lm.encode(PROMPT)
    a, b = 7, 11
    model = _double(tiny_lm)
    result = occlusion(tiny_lm, ids, a, b, remove=remove)
    neutral = neutral_token(tiny_lm.tokenizer).id
    expected = [_target(model, ids, a, b) - _target(model, row, a, b) for row in occluded_rows(ids, neutral, remove)]
    np.testing.assert_allclose(result.values, expected, atol=1e-4)
    assert result.method == ("remove" if remove else "replace")


def test_occluded_rows_replace_or_drop_one_token():
    assert occluded_rows([1, 2, 3], 9, remove=False) == [[9, 2, 3], [1, 9, 3], [1, 2, 9]]
    assert occluded_rows([1, 2, 3], 9, remove=True) == [[2, 3], [1, 3], [1, 2]]


def test_batching_gives_the_same_as_one_at_a_time(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    batched = occlusion(tiny_lm, ids, 7, None, remove=False)
    single = occlusion(tiny_lm, ids, 7, None, remove=False, tokens_per_pass=1)
    assert single.passes == len(ids) + 1 and batched.passes == 2
    np.testing.assert_allclose(batched.values, single.values, atol=1e-5)
    whole = integrated_gradients(tiny_lm, ids, 7, 11, steps=8)
    one_by_one = integrated_gradients(tiny_lm, ids, 7, 11, steps=8, tokens_per_pass=1)
    assert one_by_one.passes > whole.passes
    np.testing.assert_allclose(whole.values, one_by_one.values, atol=1e-5)


def test_integrated_gradients_add_up_within_the_delta(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    result = integrated_gradients(tiny_lm, ids, 7, 11, steps=32)
    change = result.target - result.reference
    assert result.values.sum() - change == pytest.approx(result.delta, abs=1e-4)
    model = _double(tiny_lm)
    assert result.target == pytest.approx(_target(model, ids, 7, 11), abs=1e-4)
    start = [ids[0]] + [neutral_token(tiny_lm.tokenizer).id] * (len(ids) - 1)  # the first token stays
    assert result.reference == pytest.approx(_target(model, start, 7, 11), abs=1e-4)


def test_a_minus_b_is_a_minus_b(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    both = gradient_x_input(tiny_lm, ids, 7, 11).values
    np.testing.assert_allclose(both, gradient_x_input(tiny_lm, ids, 7, None).values
                               - gradient_x_input(tiny_lm, ids, 11, None).values, atol=1e-5)
    logits = torch.tensor([[1.0, 2.0, 5.0]])
    assert metric(2, 0)(logits).item() == 4.0 and metric(1, None)(logits).item() == 2.0


def test_quantised_weights_are_refused_with_the_reason(tiny_lm):
    from model import LanguageModel

    model = copy.deepcopy(tiny_lm.model)
    head = model.get_output_embeddings()
    head.weight = torch.nn.Parameter(head.weight.detach().to(torch.int8), requires_grad=False)
    lm = LanguageModel.__new__(LanguageModel)  # the refusal comes before any pass: no probe needed
    lm.__dict__.update(tiny_lm.__dict__, model=model)
    with pytest.raises(NoExactGradients, match="quantised .*int8"):
        gradient_x_input(lm, tiny_lm.encode("one two"), 1, None)


def test_the_neutral_token_is_a_space_on_the_default_tokenizer(tokenizer):
    neutral = neutral_token(tokenizer)
    assert neutral.what == "a space" and tokenizer.decode([neutral.id]) == " "


def test_default_model_integrated_gradients_converge_at_32_steps(default_lm):
    ids = default_lm.encode("When Mary and John went to the store, John gave a drink to")
    a, b = (default_lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" Mary", " John"))
    result = integrated_gradients(default_lm, ids, a, b, steps=32)
    change = result.target - result.reference
    assert result.values.sum() - change == pytest.approx(result.delta, abs=1e-3)
    assert abs(result.delta) < 0.1 * abs(change)
    assert result.passes <= 5  # 32 steps in one batched pass, plus the endpoints


@pytest.mark.parametrize("family", sorted(__import__("tiny_families").FAMILIES))
def test_gradient_x_input_on_every_family(family, tokenizer):
    """The embedding module's output is what is differentiated, whatever a family adds after it
    (positions, a scale): the same numbers as autograd through the family's own inputs_embeds path."""
    from tiny_families import PROMPT, build

    from model import LanguageModel

    lm = LanguageModel(build(family), tokenizer, f"tiny-{family}", "cpu", torch.float32)
    ids = lm.encode(PROMPT)
    model = copy.deepcopy(lm.model) if family in NO_DOUBLE else _double(lm)
    embeds = model.get_input_embeddings()(torch.tensor([ids])).detach().requires_grad_()
    logits = model(inputs_embeds=embeds).logits[0, -1]
    (grad,) = torch.autograd.grad(logits[7] - logits[11], embeds)
    expected = (grad * embeds).sum(-1)[0].detach().numpy()
    np.testing.assert_allclose(gradient_x_input(lm, ids, 7, 11).values, expected, atol=1e-4, rtol=1e-3)


def test_default_prompt_converges_at_the_pages_default_64_steps(default_lm):
    ids = default_lm.encode("The capital of France is")
    paris = default_lm.tokenizer(" Paris", add_special_tokens=False)["input_ids"][0]
    result = integrated_gradients(default_lm, ids, paris, None, steps=64)
    assert abs(result.delta) < 0.05 * abs(result.target - result.reference)  # 0.21 of 7.2 measured
    assert result.values[0] == 0.0  # the first token stays put along the path: no share
