"""The MLP opened up, against references: the stages recomposed give the captured mlp_out, the
neurons replayed from the recorded inputs are what the pass's down projection read, the
neurons' direct effects add up to the MLP's attribution bar, zeroing neurons matches a deep copy
with those down-projection columns zeroed, and an MLP that cannot be opened is refused."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from model.analyses.attribution import direct_logit_attribution, readout
from model.analyses.mlp import block_neurons, inputs_from_capture, mlp_steps, neurons_at, record_mlp
from model.analyses.neurons import ablated_logits, neuron_effects, neuron_vocab
from model.core.errors import UnsupportedModelError
from model.engine.linear import matrix
from model.engine.mlp_parts import find_parts
from model.engine.patch_sites import reader

PROMPT = "The capital of France is Paris and the capital of Italy is"


@pytest.fixture(scope="module")
def run(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    return cap, record_mlp(tiny_lm, cap.token_ids.tolist(), range(cap.summary.n_layers))


def test_stages_recompose_the_captured_mlp_out(tiny_lm, run):
    cap, acts = run
    for layer in range(cap.summary.n_layers):
        for pos in (0, cap.n_tokens - 1):
            st = mlp_steps(tiny_lm, cap, acts, layer, pos)
            assert np.allclose(st.out, cap.mlp_out[layer, pos], atol=1e-5)
            assert np.allclose(st.hidden, block_neurons(tiny_lm, acts, layer)[pos], atol=1e-6)
            assert st.stream is not None  # the block's MLP norm was found from the stream
            assert np.allclose(st.after, cap.residual[layer + 1, pos], atol=1e-5)  # added to the stream
            w = matrix(find_parts(tiny_lm.layout.mlps[layer], cap.summary.d_model).down)
            assert np.allclose(w @ st.hidden.astype(np.float64), st.out, atol=1e-4)  # down, by hand


def test_stage_shapes_and_activation_name(tiny_lm, run):
    cap, acts = run
    st = mlp_steps(tiny_lm, cap, acts, 1, 2)
    width = block_neurons(tiny_lm, acts, 1).shape[-1]
    assert st.up.shape == st.activated.shape == st.hidden.shape == (width,)
    assert st.normed.shape == st.out.shape == (cap.summary.d_model,)
    if tiny_lm.name == "tiny-llama":
        assert st.gate.shape == (width,) and st.activation.startswith("SwiGLU")
        assert np.allclose(st.hidden, st.up * (st.gate / (1 + np.exp(-st.gate))), atol=1e-5)  # silu(gate) x up
    else:
        assert st.gate is None and "gelu" in st.activation


def test_neuron_effects_sum_to_the_mlp_bar(tiny_lm, run):
    cap, acts = run
    pos = cap.n_tokens - 1
    token, other = int(np.argmax(cap.logits[pos])), 7
    for versus in (None, other):
        attr = direct_logit_attribution(tiny_lm, cap, pos, token, versus)
        read = readout(tiny_lm, cap, pos, token, versus)
        for layer in range(cap.summary.n_layers):
            eff = neuron_effects(tiny_lm, block_neurons(tiny_lm, acts, layer)[pos], layer, pos, read)
            assert eff.total == pytest.approx(attr.mlp[layer], abs=1e-4)


def test_replayed_neurons_are_what_the_down_projection_read(tiny_lm, run):
    cap, acts = run
    read = {}
    sites = {("mlp_hidden", layer): reader(lambda x, layer=layer: read.__setitem__(layer, x[0].numpy().copy()))
             for layer in acts.layers}
    tiny_lm.forward(cap.token_ids.tolist(), sites=sites)
    for layer in acts.layers:
        np.testing.assert_allclose(block_neurons(tiny_lm, acts, layer), read[layer], atol=1e-6, rtol=0)
    for pos in (0, cap.n_tokens - 1):
        np.testing.assert_allclose(neurons_at(tiny_lm, acts, pos), np.stack([read[layer][pos] for layer in acts.layers]),
                                   atol=1e-6, rtol=0)


def test_inputs_from_the_capture_are_the_recorded_ones(tiny_lm, run):
    cap, acts = run
    found = inputs_from_capture(tiny_lm, cap, acts.layers)
    assert found is not None and found.layers == acts.layers
    np.testing.assert_allclose(found.inputs, acts.inputs, atol=1e-6, rtol=0)


def test_inputs_from_the_capture_refuse_a_capture_they_cannot_rebuild(tiny_lm, run):
    cap, acts = run
    odd = dataclasses.replace(cap, mlp_out=cap.mlp_out * 1.01)  # not what these MLPs write
    assert inputs_from_capture(tiny_lm, odd, acts.layers) is None
    assert inputs_from_capture(tiny_lm, dataclasses.replace(cap, dtype="bfloat16"), acts.layers) is None


def test_neuron_vocab_is_the_unembedding_of_the_output_column(tiny_lm):
    layer, neuron = 2, 5
    vocab = neuron_vocab(tiny_lm, layer, neuron, k=5)
    w_out = matrix(find_parts(tiny_lm.layout.mlps[layer], tiny_lm.summary.d_model).down)[:, neuron]
    norm = tiny_lm.layout.final_norm
    col = w_out - w_out.mean() if isinstance(norm, nn.LayerNorm) else w_out
    unembed = tiny_lm.model.get_output_embeddings().weight.double().detach().numpy()  # (V, D)
    scores = unembed @ (col * norm.weight.double().detach().numpy())
    assert vocab.promoted[0] == int(np.argmax(scores)) and vocab.suppressed[0] == int(np.argmin(scores))
    assert np.all(np.diff(vocab.promoted_by) <= 0) and vocab.promoted_by[0] > vocab.suppressed_by[0]


def test_zeroing_no_neurons_reproduces_the_logits_exactly(tiny_lm, run):
    cap, _ = run
    assert np.array_equal(ablated_logits(tiny_lm, cap.token_ids.tolist(), []).logits.rows, cap.logits)


def test_zeroing_neurons_matches_a_copy_without_their_columns(tiny_lm, run):
    cap, _ = run
    chosen = [(1, 3), (1, 10), (2, 0)]
    got = ablated_logits(tiny_lm, cap.token_ids.tolist(), chosen).logits.rows
    twin = copy.deepcopy(tiny_lm.model)
    names = {id(m): n for n, m in tiny_lm.model.named_modules()}
    modules = dict(twin.named_modules())
    with torch.no_grad():
        for layer, n in chosen:
            down = modules[names[id(find_parts(tiny_lm.layout.mlps[layer], cap.summary.d_model).down)]]
            if isinstance(down, nn.Linear):
                down.weight[:, n] = 0
            else:  # GPT-2 Conv1D: weight (in, out)
                down.weight[n, :] = 0
        ref = twin(torch.tensor([cap.token_ids.tolist()]), use_cache=False).logits[0].numpy()
    assert np.allclose(got, ref, atol=1e-5)
    assert not np.allclose(got, cap.logits, atol=1e-5)


def test_an_mlp_it_cannot_rebuild_is_refused():
    class Fused(nn.Module):  # gate and up in one matrix (Phi-3 style)
        def __init__(self) -> None:
            super().__init__()
            self.gate_up_proj, self.down_proj, self.act = nn.Linear(8, 32), nn.Linear(16, 8), nn.SiLU()

        def forward(self, x):
            g, u = self.gate_up_proj(x).chunk(2, dim=-1)
            return self.down_proj(self.act(g) * u)

    class Experts(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.router, self.experts = nn.Linear(8, 2), nn.ModuleList([nn.Linear(8, 8)] * 2)

    with pytest.raises(UnsupportedModelError, match="fused"):
        find_parts(Fused(), 8)
    with pytest.raises(UnsupportedModelError, match="mixture of experts"):
        find_parts(Experts(), 8)


def test_parts_are_probed_once_per_module_and_a_refusal_is_remembered():
    """The MLP page asks for every block's parts several times per prompt; the probe runs the module,
    so it runs once per module (the answer, parts or refusal, is the same every time)."""
    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate_proj, self.up_proj, self.down_proj = nn.Linear(8, 16), nn.Linear(8, 16), nn.Linear(16, 8)
            self.act_fn, self.calls = nn.SiLU(), 0

        def forward(self, x):
            self.calls += 1
            return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))

    mlp = Gated()
    first, again = find_parts(mlp, 8), find_parts(mlp, 8)
    assert again is first and first.gate is mlp.gate_proj and mlp.calls == 1
    assert find_parts(Gated(), 8).gate is not first.gate  # another module is probed on its own

    class Residual(Gated):  # Bloom-style: its forward needs the residual too
        def forward(self, x, residual):
            self.calls += 1
            return x + residual

    odd = Residual()
    for _ in range(2):
        with pytest.raises(UnsupportedModelError, match="adds the residual"):
            find_parts(odd, 8)
    assert odd.calls == 0


def test_unrecorded_block_is_named(tiny_lm):
    acts = record_mlp(tiny_lm, [1, 2, 3], [1])
    with pytest.raises(ValueError, match="block 0 was not recorded"):
        acts.of(0)
