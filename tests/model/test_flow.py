"""The information-flow graph on tiny models (GPT-2 with biases, Llama with grouped-query attention):
the per-head pieces rebuild the attention output the model computed, the shares follow the paper's
L1 definition (checked against a plain float64 reimplementation) and add up to 1 into every node,
pruning keeps exactly the routes down from the prediction, and a model that does not split refuses."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model import UnsupportedModelError
from model.flow import EPS, flow_graph, out_projection, record_values, source_vectors
from model.flow_graph import flow_paths

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def flow(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    return tiny_lm, cap, flow_graph(tiny_lm, cap)


def test_head_pieces_plus_bias_rebuild_the_captured_attention_output(flow):
    lm, cap, _ = flow
    values, _ = record_values(lm, cap.token_ids.tolist())  # a pass of its own: independent of the capture's cache
    H = cap.summary.n_heads
    assert values[0].shape[0] == cap.summary.n_kv_heads  # grouped-query: fewer value heads than heads (llama)
    for layer in range(cap.summary.n_layers):
        w_o, bias = out_projection(lm.layout.out_projs[layer], H)
        u = source_vectors(values[layer], w_o).double()  # (T, H, D)
        pattern = torch.from_numpy(cap.attention[layer].copy()).double()  # (H, T, T)
        pieces = pattern.permute(1, 2, 0)[..., None] * u[None]  # (T query, T source, H, D)
        rebuilt = pieces.sum((1, 2)) + (0 if bias is None else bias.double())
        assert np.allclose(rebuilt.numpy(), cap.attn_out[layer], atol=1e-5)


def _reference_shares(parts: list[np.ndarray], whole: np.ndarray) -> np.ndarray:
    """The paper's proportion, literally: max(eps, |y|_1 - |y - z_k|_1) over the sum of the same."""
    raw = np.array([max(EPS, np.abs(whole).sum() - np.abs(whole - z).sum()) for z in parts])
    return raw / raw.sum()


def test_shares_follow_the_l1_definition(flow):
    lm, cap, graph = flow
    values, _ = record_values(lm, cap.token_ids.tolist())  # a pass of its own: independent of the capture's cache
    H, i = cap.summary.n_heads, cap.n_tokens - 1
    for layer in range(cap.summary.n_layers):
        w_o, _ = out_projection(lm.layout.out_projs[layer], H)
        u = source_vectors(values[layer], w_o).double().numpy()  # (T, H, D)
        entering = cap.residual[layer].astype(np.float64)
        mid = entering + cap.attn_out[layer]
        parts = [cap.attention[layer, h, i, j] * u[j, h] for j in range(i + 1) for h in range(H)] + [entering[i]]
        expected = _reference_shares(parts, mid[i])
        heads, residual = graph.into_mid(layer, [i])
        ours = np.append(heads[0, : i + 1].reshape(-1), residual[0])
        assert np.allclose(ours, expected, atol=1e-5)
        mlp = _reference_shares([cap.mlp_out[layer, i], mid[i]], cap.residual[layer + 1, i])
        assert np.allclose([graph.mlp[layer, i], graph.mlp_residual[layer, i]], mlp, atol=1e-5)


def test_shares_into_every_node_add_up_to_one(flow):
    _, cap, graph = flow
    attention, attn_residual = graph.dense()
    into_mid = attention.sum((2, 3)) + attn_residual  # (L, T)
    assert np.allclose(into_mid, 1, atol=1e-5)
    assert np.allclose(graph.mlp + graph.mlp_residual, 1, atol=1e-5)
    later = np.triu(np.ones((cap.n_tokens, cap.n_tokens), dtype=bool), k=1)
    assert (attention[:, later] == 0).all()  # no edge from a later position
    assert (attention[:, ~later] > 0).all()  # every earlier position's share keeps its eps floor


def test_zero_threshold_keeps_every_route_into_the_last_position(flow):
    _, cap, graph = flow
    T, L = cap.n_tokens, cap.summary.n_layers
    paths = flow_paths(graph, T - 1, threshold=0.0)
    top = 2 + 1 + T  # MLP + residual into the output, residual + every source into its mid state
    below = (L - 1) * (2 * T + T + T * (T + 1) // 2)  # below the top block every position is alive
    assert len(paths.edges) == top + below
    assert {n[1] for n in paths.nodes} == set(range(T))


def test_pruning_keeps_heavy_edges_on_routes_to_the_prediction(flow):
    _, cap, graph = flow
    position = cap.n_tokens - 2
    paths = flow_paths(graph, position, threshold=0.04)
    assert paths.edges and all(e.weight > 0.04 for e in paths.edges)
    sources = {e.source for e in paths.edges}
    output = (2 * cap.summary.n_layers, position)
    for e in paths.edges:  # every edge feeds the output or another kept edge
        assert e.target == output or e.target in sources
        assert e.target[1] <= position
    for e in paths.edges:
        if e.kind == "attention":
            assert len(e.heads) == cap.summary.n_heads
            assert sum(e.heads) == pytest.approx(e.weight, rel=1e-5)


def test_the_graph_reads_the_captures_values_with_no_second_pass_and_records_them_without_a_cache(flow):
    """The values come from the capture's key-value cache (one pass per prompt, not two); a capture
    without one (a sliding-window model) records them in a pass of its own: the same graph."""
    lm, cap, graph = flow
    passes: list[int] = []
    handle = lm.layout.blocks[0].register_forward_hook(lambda *_: passes.append(1))
    try:
        flow_graph(lm, cap)
        assert passes == []
        recorded = flow_graph(lm, dataclasses.replace(cap, kv=None))
        assert passes == [1]
    finally:
        handle.remove()
    for ours, theirs in zip(graph.dense(), recorded.dense()):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(graph.mlp, recorded.mlp, atol=1e-6)


def test_attention_that_is_not_pattern_times_values_is_refused(flow):
    lm, cap, _ = flow
    bent = dataclasses.replace(cap, kv=tuple((k, v * 1.5) for k, v in cap.kv))  # as if a norm scaled the values
    with pytest.raises(UnsupportedModelError, match="pattern times the values"):
        flow_graph(lm, bent)


def test_a_recording_pass_also_checks_what_the_output_projection_read(flow):
    """Where the values are recorded (no usable cache), the pass keeps the projection's input too, and
    the pattern times the values must equal it: a wrong pattern is named at that first step."""
    lm, cap, _ = flow
    bent = dataclasses.replace(cap, kv=None, attention=cap.attention * 0.5)
    with pytest.raises(UnsupportedModelError, match="is not what the output projection read"):
        flow_graph(lm, bent)


def test_a_block_that_is_not_a_plain_sum_is_refused(flow):
    lm, cap, _ = flow
    bent = dataclasses.replace(cap, mlp_out=cap.mlp_out * 2)  # as if the MLP's output were rescaled after the hook
    with pytest.raises(UnsupportedModelError, match="not entering stream"):
        flow_graph(lm, bent)


def test_progress_is_heard_once_per_block(flow):
    lm, cap, _ = flow
    heard: list[float] = []
    graph = flow_graph(lm, cap, heard.append)
    assert heard == pytest.approx([(b + 1) / cap.summary.n_layers for b in range(cap.summary.n_layers)])
    heard.clear()
    flow_paths(graph, cap.n_tokens - 1, progress=heard.append)
    assert heard == pytest.approx([(b + 1) / cap.summary.n_layers for b in range(cap.summary.n_layers)])


def test_a_pruning_weighs_only_the_states_on_its_routes_and_each_once(flow):
    lm, cap, _ = flow
    asked: list[tuple[int, list[int]]] = []
    plain = flow_graph(lm, cap)
    graph = dataclasses.replace(plain, weigh=lambda layer, rows: asked.append((layer, rows.tolist()))
                                or plain.weigh(layer, rows))
    paths = flow_paths(graph, 2, threshold=0.04)
    assert asked and all(max(rows) <= 2 for _, rows in asked)  # nothing after the prediction is weighed
    targets = {(e.block, e.target[1]) for e in paths.edges if e.target[0] % 2 == 1}
    assert targets <= {(layer, i) for layer, rows in asked for i in rows}
    asked.clear()
    again = flow_paths(graph, 2, threshold=0.04)
    assert asked == [] and again.edges == paths.edges  # kept: a second pruning weighs nothing new
