"""The direct attention path (softmax written straight into the capture) gives exactly the numbers of
the copying hooks, is used only where it applies, and always leaves the model on eager attention."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model import CaptureError
from model.engine import attention

PROMPT = "Every swing of the pendulum received a tiny push, just enough to replace what friction stole."


def test_direct_path_is_used_for_llama_only(tiny_lm):
    ids = torch.tensor([tiny_lm.encode(PROMPT)])
    expected = tiny_lm.name == "tiny-llama"
    assert attention._can_write_directly(tiny_lm.model, tiny_lm.layout, ids) is expected


def test_direct_equals_copying_hooks_exactly(tiny_lm, monkeypatch):
    direct = tiny_lm.capture(PROMPT)
    monkeypatch.setattr(attention, "_can_write_directly", lambda *args: False)
    copied = tiny_lm.capture(PROMPT)
    for name in ("attention", "residual", "attn_out", "mlp_out", "logits"):
        np.testing.assert_array_equal(getattr(direct, name), getattr(copied, name), err_msg=name)


def test_model_is_back_on_eager_even_when_the_pass_raises(tiny_lm, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("pass failed")

    handle = tiny_lm.layout.mlps[-1].register_forward_pre_hook(boom)
    try:
        with pytest.raises(CaptureError, match="pass failed"):
            tiny_lm.capture(PROMPT)
    finally:
        handle.remove()
    assert tiny_lm.model.config._attn_implementation == "eager"
    assert not attention._PATTERNS
    assert tiny_lm.capture(PROMPT).attention.shape[0] == tiny_lm.summary.n_layers
