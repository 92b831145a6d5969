"""The CUDA path: skipped without a GPU; on one, half-precision captures agree with the CPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from flow_edges import dense

from model import load_model
from model.analyses.sampling import probabilities

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_gpu_capture_matches_cpu(default_lm, dtype):
    gpu = load_model(device="cuda", dtype=dtype)
    prompt = "The capital of France is"
    cap, ref = gpu.capture(prompt), default_lm.capture(prompt)
    assert cap.device == "cuda" and cap.dtype == dtype
    assert cap.attention.dtype == np.float32  # always handed over as float32
    np.testing.assert_allclose(np.asarray(cap.attention).sum(-1), 1, atol=1e-2)
    assert (np.triu(np.ones((cap.n_tokens,) * 2), 1) * cap.attention == 0).all()
    np.testing.assert_allclose(cap.attention, ref.attention, atol=0.05)
    p = probabilities(cap.logits[-1], 1.0)
    assert gpu.tokenizer.decode([int(p.argmax())]) == " Paris"
    print(f"GPU {dtype}: {cap.n_tokens} tokens in {cap.seconds * 1000:.1f} ms")


def test_gpu_extension_matches_full_capture(default_lm):
    """Prefix-incremental capture on the GPU: the cached keys and values go back in the model's dtype."""
    gpu = load_model(device="cuda", dtype="bfloat16")
    ids = gpu.encode("The capital of France is Paris, and the capital of Italy is")
    full = gpu.capture_ids(ids)
    extended = gpu.extend_capture(gpu.capture_ids(ids[:-3]), ids)
    assert extended.device == "cuda" and extended.kv is not None
    np.testing.assert_allclose(extended.attention, full.attention, atol=0.05)
    assert int(extended.logits[-1].argmax()) == int(full.logits[-1].argmax())


def test_gpu_attribution_adds_up_in_bfloat16():
    """The final norm's check must allow for bfloat16: the view once refused the default model there."""
    from model.analyses.attribution import direct_logit_attribution

    gpu = load_model(device="cuda", dtype="bfloat16")
    cap = gpu.capture("The capital of France is")
    paris = int(cap.logits[-1].argmax())
    parts = direct_logit_attribution(gpu, cap, cap.n_tokens - 1, paris)
    assert parts.logit == float(cap.logits[-1, paris])
    assert parts.total == pytest.approx(parts.logit, abs=0.02 * abs(parts.logit) + 0.1)  # bfloat16 stream


def test_gpu_flow_graph_matches_cpu(default_lm):
    """The information-flow graph from a bfloat16 GPU pass: shares still add up to 1 and stay close to
    the float32 CPU graph's (unverified on a GPU when written: no device run was spent on it)."""
    from model.analyses.flow import flow_graph

    gpu = load_model(device="cuda", dtype="bfloat16")
    prompt = "When Mary and John went to the store, John gave a drink to"
    graph, ref = flow_graph(gpu, gpu.capture(prompt)), flow_graph(default_lm, default_lm.capture(prompt))
    (attention, attn_residual), (_, ref_residual) = dense(graph), dense(ref)
    np.testing.assert_allclose(attention.sum((2, 3)) + attn_residual, 1, atol=1e-4)
    np.testing.assert_allclose(attn_residual, ref_residual, atol=0.05)
    np.testing.assert_allclose(graph.mlp, ref.mlp, atol=0.05)


def test_gpu_mlp_neurons_and_heads_add_up_in_bfloat16():
    """Issue 10's views on the GPU: the MLP stages rebuild mlp_out, neurons and heads add up to their
    bars, and switching no neuron off leaves the logits as they were."""
    from model.analyses.attribution import direct_logit_attribution, readout
    from model.analyses.head_attribution import head_attribution, head_outputs
    from model.analyses.mlp import block_neurons, mlp_steps, record_mlp
    from model.analyses.neurons import ablated_logits, neuron_effects

    gpu = load_model(device="cuda", dtype="bfloat16")
    cap = gpu.capture("When Mary and John went to the store, John gave a drink to")
    pos, layer = cap.n_tokens - 1, cap.summary.n_layers - 1
    mary, john = (gpu.tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in (" Mary", " John"))
    acts = record_mlp(gpu, cap.token_ids.tolist(), [layer])
    steps = mlp_steps(gpu, cap, acts, layer, pos)
    assert steps.stream is not None  # the MLP's norm is found in half precision too
    np.testing.assert_allclose(steps.out, cap.mlp_out[layer, pos], atol=0.05 * np.abs(cap.mlp_out[layer, pos]).max())
    attr = direct_logit_attribution(gpu, cap, pos, mary, versus=john)
    read = readout(gpu, cap, pos, mary, versus=john)
    effects = neuron_effects(gpu, block_neurons(gpu, acts, layer)[pos], layer, pos, read)
    assert effects.total == pytest.approx(attr.mlp[layer], abs=0.1)
    heads = head_attribution(gpu, head_outputs(gpu, cap, pos), pos, read)
    np.testing.assert_allclose(heads.layers, attr.attn, atol=0.1)
    assert np.array_equal(ablated_logits(gpu, cap.token_ids.tolist(), []).logits.rows, gpu.forward(cap.token_ids.tolist()).logits)
