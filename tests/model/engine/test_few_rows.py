"""Few-row passes (a generation step) take streaming products for nn.Linear: the same numbers as
F.linear to float32 rounding, the layers left as they were after the pass, and hooks still heard."""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from torch import nn

from model.analyses.generation import Decoding, generate
from model.engine import language_model
from model.engine.few_rows import FEW_ROWS, few_row_products


@pytest.fixture
def one_thread():
    """The app's setting (one torch thread), under which one row takes the streaming product too."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 24), (2, 24), (3, 24), (4, 24), (2, 1, 24), (1, 4, 24)])
def test_streaming_forward_equals_f_linear(bias, shape, one_thread):
    torch.manual_seed(0)
    layer = nn.Linear(24, 40, bias=bias)
    model = nn.Sequential(layer)
    x = torch.randn(*shape)
    swapped = []
    with torch.inference_mode():
        want = nn.functional.linear(x, layer.weight, layer.bias)
        with few_row_products(model, int(np.prod(shape[:-1]))):
            swapped.append("forward" in vars(layer))
            got = model(x)
    assert swapped == [True] and got.shape == want.shape and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert "forward" not in vars(layer)  # the class's own forward is back


def test_a_layer_with_its_own_forward_keeps_it(one_thread):
    """accelerate's hooks give a layer an instance forward: the pass leaves it in place and uses it."""
    layer = nn.Linear(8, 8)
    called = []

    def own(x):
        called.append(True)
        return nn.functional.linear(x, layer.weight, layer.bias)
    layer.forward = own
    with torch.inference_mode(), few_row_products(nn.Sequential(layer), 2):
        layer(torch.randn(2, 8))
    assert called and vars(layer)["forward"] is own


def test_the_input_may_be_named(one_thread):
    layer = nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with torch.inference_mode(), few_row_products(nn.Sequential(layer), 2):
        assert "forward" in vars(layer)
        got = layer(input=x)
    torch.testing.assert_close(got, nn.functional.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-6)


def test_more_rows_and_one_row_on_two_threads_keep_f_linear():
    layer = nn.Linear(8, 8)
    with few_row_products(nn.Sequential(layer), FEW_ROWS + 1):
        assert "forward" not in vars(layer)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with few_row_products(nn.Sequential(layer), 1):
            assert "forward" not in vars(layer)
    finally:
        torch.set_num_threads(saved)


def _assert_steps_match_plain_products(lm, text: str, monkeypatch, atol: float) -> None:
    """Four greedy steps with the streaming products, then with F.linear throughout: same tokens, logits
    to float32 rounding, and no layer left patched."""
    ids = lm.tokenizer(text)["input_ids"]
    fast = generate(lm, ids, 4, Decoding(greedy=True))
    monkeypatch.setattr(language_model, "few_row_products", lambda model, rows: nullcontext())
    plain = generate(lm, ids, 4, Decoding(greedy=True))
    assert [s.token_id for s in fast] == [s.token_id for s in plain]
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a.logits, b.logits, rtol=1e-4, atol=atol)
    assert not any("forward" in vars(m) for m in lm.model.modules())


def test_generation_steps_match_plain_products(tiny_lm, monkeypatch, one_thread):
    _assert_steps_match_plain_products(tiny_lm, "The cat sat on the", monkeypatch, atol=1e-5)


def test_the_gateway_takes_the_streaming_products_and_hooks_still_run(tiny_lm):
    layer = next(m for m in tiny_lm.model.modules() if type(m) is nn.Linear)
    heard = []
    handle = layer.register_forward_hook(lambda module, args, out: heard.append(("forward" in vars(module),
                                                                                 tuple(out.shape))))
    try:
        tiny_lm.forward([5, 6], last_only=True)
    finally:
        handle.remove()
    assert heard and heard[0][0] and heard[0][1][-2] == 2


def test_default_model_step_matches_plain_products(default_lm, monkeypatch, one_thread):
    _assert_steps_match_plain_products(default_lm, "The capital of France is", monkeypatch, atol=1e-4)
