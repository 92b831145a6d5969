"""The CUDA path: skipped without a GPU; on one, half-precision captures agree with the CPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model import load_model
from model.sampling import probabilities

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_gpu_capture_matches_cpu(default_lm, dtype):
    gpu = load_model(device="cuda", dtype=dtype)
    prompt = "The capital of France is"
    cap, ref = gpu.capture(prompt), default_lm.capture(prompt)
    assert cap.device == "cuda" and cap.dtype == dtype
    assert cap.attention.dtype == np.float32  # always handed over as float32
    np.testing.assert_allclose(cap.attention.sum(-1), 1, atol=1e-2)
    assert (np.triu(np.ones((cap.n_tokens,) * 2), 1) * cap.attention == 0).all()
    np.testing.assert_allclose(cap.attention, ref.attention, atol=0.05)
    p = probabilities(cap.logits[-1], 1.0)
    assert gpu.tokenizer.decode([int(p.argmax())]) == " Paris"
    print(f"GPU {dtype}: {cap.n_tokens} tokens in {cap.seconds * 1000:.1f} ms")
