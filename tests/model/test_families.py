"""The family matrix: a tiny random model of every causal-LM family we support (tests/tiny_families.py),
each view checked against transformers' own outputs, or refused with a message naming the family and
the reason. One model per family, built once for the module."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from flow_edges import dense
from tiny_families import FAMILIES, PROMPT, build

from model import LanguageModel, UnsupportedModelError, load_model
from model.analyses.ablation import ablated_logits
from model.analyses.attribution import direct_logit_attribution, final_norm
from model.analyses.generation import Decoding, generate
from model.analyses.head_pipeline import head_pipeline
from model.analyses.head_scores import head_stats, head_type_scores, induction_scores
from model.analyses.logit_lens import logit_lens
from model.analyses.patchscope import identity_prompt, patched_logits, patchscope, read_cells

# Views that refuse, and a phrase their message must hold (besides the architecture's name).
NO_STEP_BY_STEP = {"bloom": "ALiBi", "falcon": "attention interface", "mpt": "attention interface",
                   "gpt_neo": "attention interface"}
NO_ON_DEMAND = {family: "attention interface" for family in ("bloom", "falcon", "mpt", "gpt_neo")}
NO_ATTRIBUTION = {"gemma2": "soft-caps"}
POST_NORM = {"olmo2", "gemma2", "gemma3_text"}  # attention output goes through a norm before the stream
NO_FLOW = POST_NORM | {"granite"}  # the heads' pieces are not what the stream receives (a norm; a multiplier)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_lm(request, tokenizer) -> LanguageModel:
    return LanguageModel(build(request.param), tokenizer, f"tiny-{request.param}", "cpu",
                         torch.float32)


@pytest.fixture(scope="module")
def family_run(family_lm):
    """The capture and transformers' own outputs for the same tokens."""
    cap = family_lm.capture(PROMPT)
    with torch.no_grad():
        ref = family_lm.model(torch.tensor(cap.token_ids)[None], output_attentions=True, output_hidden_states=True,
                              use_cache=False)
    return cap, ref


def _family(lm: LanguageModel) -> str:
    return lm.model.config.model_type


def test_capture_equals_transformers(family_run):
    cap, ref = family_run
    np.testing.assert_allclose(cap.attention, np.stack([a[0].numpy() for a in ref.attentions]), atol=1e-6)
    hidden = np.stack([h[0].numpy() for h in ref.hidden_states])  # (L+1, T, D); the last is after the norm
    np.testing.assert_allclose(cap.residual[:-1], hidden[:-1], atol=1e-5)
    np.testing.assert_allclose(cap.logits, ref.logits[0].numpy(), atol=1e-5)


def test_stream_is_the_sum_of_what_blocks_write(family_lm, family_run):
    """attn_out and mlp_out are what each block adds (parallel blocks, post-norms, multipliers...)."""
    cap, _ = family_run
    assert family_lm.layout.writes.exact
    assert family_lm.layout.writes.heads_linear == (_family(family_lm) not in POST_NORM)
    np.testing.assert_allclose(cap.residual[1:], cap.residual[:-1] + cap.attn_out + cap.mlp_out, atol=1e-5)


def test_logit_lens_last_row_is_the_models_prediction(family_lm, family_run):
    cap, _ = family_run
    targets = np.full(cap.n_tokens, 7)
    lens = logit_lens(family_lm, cap, target_ids=targets)
    probs = torch.softmax(torch.from_numpy(np.asarray(cap.logits, dtype=np.float64)), dim=-1).numpy()  # (T, V)
    np.testing.assert_allclose(lens.target_probs[-1], probs[:, 7], rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(lens.top_ids[-1], np.asarray(cap.logits).argmax(-1))


def test_patchscope_of_its_own_stream_changes_nothing(family_lm, family_run):
    """Every family (sliding windows too, whose keys cannot be carried: whole rows then) reads the identity
    prompt's own streams back unchanged, and continues greedily."""
    identity = identity_prompt(family_lm, "the=the;on=on;?=")  # every id < VOCAB
    cells = [(layer, identity.slot) for layer in range(family_lm.summary.n_layers + 1)]
    vectors = read_cells(family_lm, identity.ids, cells)
    plain = family_lm.forward(list(identity.ids), last_only=True).logits  # (V,)
    np.testing.assert_allclose(patched_logits(family_lm, identity, vectors, [c[0] for c in cells]),
                               np.broadcast_to(plain, (len(cells), plain.size)), atol=1e-4)
    cap, _ = family_run
    reading = patchscope(family_lm, cap.residual[:, -1], [(r, cap.n_tokens - 1) for r in range(len(cells))], identity,
                         n_new=2)
    assert reading.top_ids.shape == (len(cells), 5) and len(reading.continuations) == len(cells)


def test_step_by_step_pattern_equals_capture(family_lm, family_run):
    cap, _ = family_run
    family = _family(family_lm)
    if family in NO_STEP_BY_STEP:
        with pytest.raises(UnsupportedModelError, match=NO_STEP_BY_STEP[family]) as refused:
            head_pipeline(family_lm, cap.token_ids, 1)
        assert family_lm.summary.architecture in str(refused.value) and f"({family})" in str(refused.value)
        return
    pipe = head_pipeline(family_lm, cap.token_ids, 1)
    np.testing.assert_allclose(pipe.weights, cap.attention[1], atol=1e-6)
    np.testing.assert_allclose(pipe.softmax(0), cap.attention[1, 0], atol=1e-5)


def test_patterns_on_demand_equal_transformers(family_lm, family_run):
    """Every head's pattern recomputed from the queries and keys a pass kept (model/core/patterns.py),
    under the fast kernel where the family has one, equals transformers' eager attentions, or the family
    is refused with the reason."""
    cap, ref = family_run
    family = _family(family_lm)
    if family in NO_ON_DEMAND:
        with pytest.raises(UnsupportedModelError, match=NO_ON_DEMAND[family]) as refused:
            family_lm.patterns(cap.token_ids.tolist())
        assert family_lm.summary.architecture in str(refused.value) and f"({family})" in str(refused.value)
        return
    patterns = family_lm.patterns(cap.token_ids.tolist())
    for layer, weights in enumerate(ref.attentions):
        for head in range(weights.shape[1]):
            np.testing.assert_allclose(patterns.head(layer, head), weights[0, head].numpy(), atol=1e-6,
                                       err_msg=f"layer {layer} head {head}")


def test_attribution_sums_to_the_logit(family_lm, family_run):
    cap, _ = family_run
    family, last = _family(family_lm), cap.n_tokens - 1
    if family in NO_ATTRIBUTION:
        with pytest.raises(UnsupportedModelError, match=NO_ATTRIBUTION[family]) as refused:
            direct_logit_attribution(family_lm, cap, last, 7)
        assert family_lm.summary.architecture in str(refused.value)
        return
    for token in (7, int(cap.logits[last].argmax())):
        a = direct_logit_attribution(family_lm, cap, last, token)
        size = max(1e-3, abs(a.logit))
        assert a.total == pytest.approx(a.logit, abs=1e-4 * size)
        assert abs(a.rest) < 1e-4 * size  # every part is accounted for by the embedding, attention and MLPs


def test_ablation_nothing_is_exact_and_one_head_matters(family_lm, family_run):
    cap, _ = family_run
    ids = [int(i) for i in cap.token_ids]
    np.testing.assert_allclose(ablated_logits(family_lm, ids, []).logits.rows, cap.logits, atol=1e-5)
    assert np.abs(ablated_logits(family_lm, ids, [(0, 1)]).logits.rows - cap.logits).max() > 1e-5


def test_head_scores_and_generation_run(family_lm, family_run):
    cap, _ = family_run
    L, H = family_lm.summary.n_layers, family_lm.summary.n_heads
    assert all(v.shape == (L, H) for v in head_stats(cap).values())
    assert all(v.shape == (L, H) for v in head_type_scores(cap.attention, cap.token_ids).values())
    assert induction_scores(family_lm, half=6, samples=1).shape == (L, H)
    steps = generate(family_lm, [int(i) for i in cap.token_ids], 2, Decoding(greedy=True))
    assert steps[0].token_id == int(cap.logits[-1].argmax())  # greedy: the capture's own top prediction
    if len(steps) == 2:  # the second step ran from the keys and values of the first: same as a full pass
        full = family_lm.forward(list(steps[1].context), last_only=True).logits
        np.testing.assert_allclose(steps[1].logits, full, atol=1e-4)


@pytest.mark.parametrize("family", ["gpt_neox", "opt"])
def test_saved_family_loads_from_a_folder(family, tokenizer, tmp_path):
    """Pythia (GPT-NeoX) and OPT load through load_model like a downloaded model would."""
    build(family).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lm = load_model(str(tmp_path), device="cpu")
    assert lm.layout.writes.exact and lm.layout.logit_map.problem is None
    assert lm.capture(PROMPT).attention.shape[:2] == (2, 4)


def test_a_norm_of_unknown_math_is_refused(tokenizer):
    """A final norm that is no RMSNorm or LayerNorm (here: divide by the largest entry) is refused."""

    class MaxNorm(torch.nn.Module):
        def __init__(self, size: int) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(size))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.weight * x / x.abs().amax(dim=-1, keepdim=True)

    model = build("llama")
    model.model.norm = MaxNorm(32)
    lm = LanguageModel(model, tokenizer, "tiny-maxnorm", "cpu", torch.float32)
    with pytest.raises(UnsupportedModelError, match="MaxNorm"):
        final_norm(lm)


@pytest.mark.parametrize("family", ["llama", "gemma", "cohere", "gpt2", "granite"])
def test_bfloat16_attribution_adds_up(family, tokenizer):
    """In bfloat16 the checks allow for its rounding: attribution is shown and adds up to ~1%."""
    lm = LanguageModel(build(family).to(torch.bfloat16), tokenizer, f"tiny-{family}-bf16", "cpu", torch.bfloat16)
    cap = lm.capture(PROMPT)
    a = direct_logit_attribution(lm, cap, cap.n_tokens - 1, int(cap.logits[-1].argmax()))
    assert lm.layout.writes.exact
    assert a.total == pytest.approx(a.logit, abs=0.02 * abs(a.logit) + 0.01)


def test_batched_rows_equal_single_captures(family_lm, family_run):
    """Captures asked for together (model/engine/batching.py) share one right-padded pass: each row equals
    its own capture, for every family (ALiBi, learned positions, mixtures of experts, OPT's fc2...)."""
    from model.engine.batching import Request

    cap, _ = family_run
    short = cap.token_ids[:-3].tolist()
    requests = [Request(cap.token_ids.tolist(), None), Request(short, None)]
    family_lm._capture_rows(requests)
    for request, want in zip(requests, (cap, family_lm.capture_ids(short))):
        got = request.answer()
        for name in ("attention", "residual", "attn_out", "mlp_out", "logits"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=1e-5, err_msg=name)


def test_mlp_neurons_and_heads_add_up_or_refuse(family_lm, family_run):
    """The MLP page and the per-head split on every family: the stages rebuild the captured MLP write,
    neurons and heads add up to their block's attribution bar, or the view refuses (never a wrong sum)."""
    from model.analyses.attribution import readout
    from model.analyses.head_attribution import head_attribution, head_outputs
    from model.analyses.mlp import block_neurons, mlp_steps, record_mlp
    from model.analyses.neurons import neuron_effects

    cap, _ = family_run
    pos, token = cap.n_tokens - 1, int(cap.logits[-1].argmax())
    try:
        attr = direct_logit_attribution(family_lm, cap, pos, token)
        read = readout(family_lm, cap, pos, token)
    except UnsupportedModelError:
        assert _family(family_lm) in NO_ATTRIBUTION
        return
    try:
        heads = head_attribution(family_lm, head_outputs(family_lm, cap, pos), pos, read)
        np.testing.assert_allclose(heads.layers, attr.attn, atol=1e-4)
    except UnsupportedModelError as exc:
        assert _family(family_lm) in POST_NORM and "per head" in str(exc)
    layers = range(cap.summary.n_layers)
    try:
        acts = record_mlp(family_lm, cap.token_ids.tolist(), layers)
        for layer in layers:
            step = mlp_steps(family_lm, cap, acts, layer, pos)
            eff = neuron_effects(family_lm, block_neurons(family_lm, acts, layer)[pos], layer, pos, read)
            np.testing.assert_allclose(step.out * family_lm.layout.writes.scale, cap.mlp_out[layer, pos], atol=1e-4)
            assert eff.total == pytest.approx(attr.mlp[layer], abs=1e-4)
    except UnsupportedModelError as exc:
        assert family_lm.summary.architecture in str(exc) or "MLP" in str(exc), str(exc)
        print(f"{_family(family_lm)}: MLP view refused: {exc}")


def test_mlp_inputs_kept_on_the_capture_pass_equal_a_pass_of_their_own(family_lm, family_run):
    """The MLP page keeps every block's MLP input during the capture's own pass (one pass per edit, not
    two): the same numbers as record_mlp's separate pass, the capture unchanged by the hooks, and the
    neurons replayed from them what each down projection read in the pass."""
    from model.analyses.mlp import MlpRecording, block_neurons, inputs_from_capture, record_mlp
    from model.engine.patch_sites import reader

    cap, _ = family_run
    ids, layers = cap.token_ids.tolist(), range(cap.summary.n_layers)
    try:
        recording = MlpRecording(family_lm, layers)
    except UnsupportedModelError:
        return  # the MLP view refuses this family (test_mlp_neurons_and_heads_add_up_or_refuse)
    ridden = family_lm.capture_ids(ids, cap.prompt, also=recording.hooks)
    kept, own = recording.result(len(ids)), record_mlp(family_lm, ids, layers)
    assert kept.layers == own.layers
    np.testing.assert_allclose(kept.inputs, own.inputs, atol=1e-5, rtol=1e-5)
    for name in ("attention", "residual", "attn_out", "mlp_out", "logits"):
        np.testing.assert_array_equal(getattr(ridden, name), getattr(cap, name), err_msg=name)
    read: dict[int, np.ndarray] = {}
    family_lm.forward(ids, sites={("mlp_hidden", layer): reader(lambda x, layer=layer: read.__setitem__(
        layer, x[0].detach().float().cpu().numpy().copy())) for layer in layers})
    for layer in layers:
        np.testing.assert_allclose(block_neurons(family_lm, kept, layer), read[layer], atol=1e-5, rtol=1e-5,
                                   err_msg=f"block {layer}")
    derived = inputs_from_capture(family_lm, cap, layers)  # None: the page records them instead
    if derived is not None:
        np.testing.assert_allclose(derived.inputs, own.inputs, atol=1e-5, rtol=1e-5)
    print(f"{_family(family_lm)}: MLP inputs from the capture: {derived is not None}")


def test_flow_graph_splits_every_state_exactly_or_refuses(family_lm, family_run):
    """The information-flow graph reads the values from the capture's key-value cache: on every family
    its checked split holds (shares into each node add up to 1) or the page refuses and says why."""
    from model.analyses.flow import flow_graph

    cap, _ = family_run
    try:
        graph = flow_graph(family_lm, cap)
    except UnsupportedModelError as exc:
        assert _family(family_lm) in NO_FLOW, str(exc)
        return
    assert _family(family_lm) not in NO_FLOW
    attention, residual = dense(graph)
    np.testing.assert_allclose(attention.sum((2, 3)) + residual, 1, atol=1e-5)
    np.testing.assert_allclose(graph.mlp + graph.mlp_residual, 1, atol=1e-5)


def test_head_outputs_read_from_the_capture_equal_a_recording_pass(family_lm, family_run):
    """Attribution by head reads each head's output from the capture's pattern and values (no second
    pass) where they rebuild the attention output; the numbers equal a pass that records them."""
    import dataclasses

    from model.analyses.head_attribution import head_outputs

    cap, _ = family_run
    pos = cap.n_tokens - 1
    passes: list[int] = []
    handle = family_lm.layout.blocks[0].register_forward_hook(lambda *_: passes.append(1))
    try:
        read = head_outputs(family_lm, cap, pos)
        recorded = head_outputs(family_lm, dataclasses.replace(cap, kv=None), pos)
    finally:
        handle.remove()
    np.testing.assert_allclose(read, recorded, atol=2e-5, rtol=1e-4)
    if _family(family_lm) not in NO_FLOW and cap.kv is not None:
        assert passes == [1]  # only the recording; the capture's own numbers sufficed


def test_long_captures_keep_queries_and_keys_or_whole_patterns(family_lm, family_run, monkeypatch):
    """A capture past the on-demand threshold (lowered here: tiny models stop at 256 positions) keeps
    queries and keys where the family's attention can be recomputed, and whole patterns where it cannot;
    either way every head equals transformers' eager attentions."""
    from model.engine import language_model

    cap, ref = family_run
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 4)
    ids = cap.token_ids.tolist()
    long = family_lm.capture_ids(ids)
    extended = family_lm.extend_capture(family_lm.capture_ids(ids[:-3]), ids)  # from the prefix's keys, where kept
    assert (long.attention.full is not None) == (_family(family_lm) in NO_ON_DEMAND)
    for layer, weights in enumerate(ref.attentions):
        for head in range(weights.shape[1]):
            want = weights[0, head].numpy()
            np.testing.assert_allclose(long.attention.head(layer, head), want, atol=1e-6, err_msg=f"L{layer}H{head}")
            np.testing.assert_allclose(extended.attention.head(layer, head), want, atol=1e-5, err_msg=f"L{layer}H{head}")
    np.testing.assert_allclose(long.logits, ref.logits[0].numpy(), atol=1e-5)


def test_long_captures_in_chunks_equal_one_pass(family_lm, family_run, monkeypatch):
    """A long capture's pass runs a few positions at a time through one cache (here 4 of the tiny
    prompt's, as CAPTURE_CHUNK of a 4,096-token one): every field equals the one-pass capture's, and
    every head transformers' eager attentions. Whole-pattern families and caches that cannot be handed
    on run whole."""
    from model.engine import language_model

    cap, ref = family_run
    ids = cap.token_ids.tolist()
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 4)
    monkeypatch.setattr(language_model, "KEPT_ROWS", 2)
    one = family_lm.capture_ids(ids)
    monkeypatch.setattr(language_model, "LARGE_STREAM_BYTES", 1)
    monkeypatch.setattr(language_model, "CAPTURE_CHUNK", 4)
    calls: list[int] = []
    handle = family_lm.layout.blocks[0].register_forward_pre_hook(lambda _, args: calls.append(1))
    try:
        chunked = family_lm.capture_ids(ids)
    finally:
        handle.remove()
    if _family(family_lm) not in NO_ON_DEMAND:
        assert len(calls) >= len(ids) // 4  # in chunks (a family whose chunks disagree runs once more, whole)
    for name in ("residual", "attn_out", "mlp_out"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(one, name), atol=1e-5, rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(chunked.logits.rows, one.logits.rows, atol=1e-5)
    assert (chunked.kv is None) == (one.kv is None)
    for (k, v), (k1, v1) in zip(chunked.kv or (), one.kv or ()):
        np.testing.assert_allclose(k, k1, atol=1e-5)
        np.testing.assert_allclose(v, v1, atol=1e-5)
    for layer, weights in enumerate(ref.attentions):
        np.testing.assert_allclose(chunked.attention.layer_rows(layer, 0, len(ids)), weights[0].numpy(), atol=1e-5,
                                   err_msg=f"layer {layer}")


def test_prompt_set_rows_equal_each_prompt_alone(family_lm, family_run):
    """A prompt set's padded passes on every family: each row's logit difference equals its prompt run
    alone, and the per-head shares add up to the Attribution page's attention bars or are refused."""
    from model.analyses.sets.batches import Part
    from model.analyses.sets.direct import direct_parts, refusal

    cap, _ = family_run
    full = cap.token_ids.tolist()
    rows = [_SetRow(tuple(full), 5, 9), _SetRow(tuple(full[:-3]), 7, 11), _SetRow(tuple(full[:4]), 5, 11)]
    why = refusal(family_lm)
    results: Part = {}
    for part in direct_parts(family_lm, rows, heads=why is None):
        results.update(part)
    for i, row in enumerate(rows):
        alone = family_lm.forward(list(row.ids), last_only=True).logits
        assert results[i]["diff"] == pytest.approx(alone[row.answer] - alone[row.contrast], abs=1e-4)
    if why is not None:
        assert family_lm.summary.architecture in why
        return
    pos = len(full) - 1
    attr = direct_logit_attribution(family_lm, cap, pos, 5, 9)
    from model.analyses.attribution import readout
    from model.analyses.head_attribution import head_attribution, head_outputs

    one = head_attribution(family_lm, head_outputs(family_lm, cap, pos), pos, readout(family_lm, cap, pos, 5, 9))
    np.testing.assert_allclose(results[0]["heads"], one.heads, atol=1e-4)
    np.testing.assert_allclose(results[0]["heads"].sum(axis=1) + one.bias, attr.attn, atol=1e-3)


class _SetRow:
    """A set row of ids, without its text (sets.batches.Row)."""

    def __init__(self, ids: tuple[int, ...], answer: int, contrast: int) -> None:
        self.ids, self.answer, self.contrast, self.corrupted_ids = ids, answer, contrast, None


def test_patterns_of_padded_rows_equal_each_row_alone(family_lm, family_run):
    """`patterns_rows` (a prompt set's head types) on every family: each row's patterns equal its own
    capture's, or the family is refused as `patterns` refuses it."""
    cap, _ = family_run
    rows = [cap.token_ids.tolist(), cap.token_ids[:5].tolist()]
    if _family(family_lm) in NO_ON_DEMAND:
        with pytest.raises(UnsupportedModelError, match=NO_ON_DEMAND[_family(family_lm)]):
            family_lm.patterns_rows(rows, eager=True)
        return
    for row, patterns in zip(rows, family_lm.patterns_rows(rows, eager=True)):
        np.testing.assert_allclose(np.asarray(patterns), np.asarray(family_lm.capture_ids(row).attention), atol=1e-5)
