"""The information-flow graph on tiny models (GPT-2 with biases, Llama with grouped-query attention):
the per-head pieces rebuild the attention output the model computed, the shares follow the paper's
L1 definition (checked against a plain float64 reimplementation) and add up to 1 into every node,
pruning keeps exactly the routes down from the prediction, and a model that does not split refuses.
Read through logit(A) − logit(B), the edges into a position split exactly into their heads, and on
the real default model's IOI prompt they name the heads that attribution ranks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from flow_edges import dense

from model import UnsupportedModelError
from model.analyses.attribution import direct_logit_attribution, readout
from model.analyses.flow import EPS, flow_graph, metric_direction, out_projection, record_values, source_vectors
from model.analyses.flow_graph import DEFAULT_THRESHOLD, EdgeReading, flow_paths, read_edges
from model.analyses.head_attribution import head_attribution, head_outputs

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
    attention, attn_residual = dense(graph)
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
    for ours, theirs in zip(dense(graph), dense(recorded)):
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
    bent = dataclasses.replace(cap, kv=None, attention=np.asarray(cap.attention) * 0.5)
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


def _rival_tokens(cap, position: int) -> tuple[int, int]:
    """The top two tokens at a position: A and B."""
    a, b = np.argsort(-cap.logits[position])[:2]
    return int(a), int(b)


@pytest.mark.parametrize("where", ["last", "middle"])
def test_each_edges_heads_add_up_to_its_a_minus_b_value_read_independently(flow, where):
    """Each head's part of an edge (the reading) against the pieces built whole, (T, H, D), from a
    recorded pass and read by model/attribution's Readout; the edge's value (the pieces summed over
    heads, read) is the sum of its heads' parts; a block's edges plus its output bias are its
    attention bar on the Attribution page (from the captured attention output: no values involved)."""
    lm, cap, graph = flow
    i = cap.n_tokens - 1 if where == "last" else cap.n_tokens // 2
    a, b = _rival_tokens(cap, i)
    reading = read_edges(graph, i, metric_direction(lm, cap, i, a, b))
    read = readout(lm, cap, i, a, b)
    values, _ = record_values(lm, cap.token_ids.tolist())
    H, L = cap.summary.n_heads, cap.summary.n_layers
    assert reading.heads.shape == (L, cap.n_tokens, H)
    bar = direct_logit_attribution(lm, cap, i, a, b).attn  # (L,)
    for layer in range(L):
        w_o, bias = out_projection(lm.layout.out_projs[layer], H)
        u = source_vectors(values[layer].double(), w_o.double()).numpy()  # (T, H, D)
        pieces = cap.attention[layer, :, i, :].T[..., None].astype(np.float64) * u  # (T, H, D) into mid state i
        np.testing.assert_allclose(reading.heads[layer], read.share(pieces), rtol=1e-7, atol=1e-9)
        edge = read.share(pieces.sum(1))  # (T,) each edge whole, read
        np.testing.assert_allclose(reading.edges[layer], edge, rtol=1e-7, atol=1e-9)
        assert (reading.heads[layer, i + 1:] == 0).all()  # a later token is no source
        bias_share = 0.0 if bias is None else float(read.share(bias.double().numpy()))
        assert reading.edges[layer].sum() + bias_share == pytest.approx(bar[layer], rel=1e-5, abs=1e-6)


def test_edges_read_through_one_token_alone_are_that_tokens_logit_share(flow):
    lm, cap, graph = flow
    i = cap.n_tokens - 1
    a, b = _rival_tokens(cap, i)
    both = read_edges(graph, i, metric_direction(lm, cap, i, a, b)).heads
    one, two = (read_edges(graph, i, metric_direction(lm, cap, i, t)).heads for t in (a, b))
    np.testing.assert_allclose(both, one - two, atol=1e-9)


def test_the_head_named_on_an_edge_carries_the_most_in_the_edges_own_direction():
    heads = np.zeros((2, 3, 4))
    heads[0, 1] = [0.5, 2.0, -3.0, 1.0]  # raises the metric (+0.5): head 1, never the larger head 2 against it
    heads[1, 2] = [-1.0, 0.2, -0.5, 0.1]  # lowers it (-1.2): head 0
    reading = EdgeReading(2, heads)
    assert reading.carrier(0, 1) == 1 and reading.carrier(1, 2) == 0
    assert reading.strongest(2) == [(1, 2), (0, 1)]  # by the edge's value either way: 1.2, then 0.5


def test_a_graph_of_shares_only_cannot_read_its_edges(flow):
    _, cap, graph = flow
    with pytest.raises(ValueError, match="without its values"):
        read_edges(dataclasses.replace(graph, read=None), 0, np.zeros(cap.summary.d_model))
    with pytest.raises(ValueError, match="position"):
        read_edges(graph, cap.n_tokens, np.zeros(cap.summary.d_model))


IOI = "When Mary and John went to the store, John gave a drink to"


def test_ioi_edges_name_the_heads_attribution_ranks(default_lm):
    """IOI, logit(·Mary) − logit(·John) at the last token. The heaviest edge into it (by weight and by
    value) is block 23's from ·Mary, and head 0 carries most of it (+1.14 of +3.57; head 3: −0.17).
    L23H3, the head attribution, ablation and patching rank first, writes its +2.87 through the edge
    from the second ·John (it reads that token, 74%, and pushes ·John down): the second strongest edge
    (+2.24), whose weight, 0.034, is under the default threshold, so the graph prunes it. Summed over
    its edges, each head's part is its share on the Attribution page."""
    lm = default_lm
    cap = lm.capture(IOI)
    i = cap.n_tokens - 1
    mary, john = (lm.tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in (" Mary", " John"))
    graph = flow_graph(lm, cap)
    reading = read_edges(graph, i, metric_direction(lm, cap, i, mary, john))
    heads = head_attribution(lm, head_outputs(lm, cap, i), i, readout(lm, cap, i, mary, john))
    np.testing.assert_allclose(reading.heads.sum(1), heads.heads, atol=1e-5)
    assert heads.top(1)[0][:2] == (23, 3)

    paths = flow_paths(graph, i, DEFAULT_THRESHOLD)
    into = sorted((e for e in paths.edges if e.kind == "attention" and e.target[1] == i), key=lambda e: -e.weight)
    heaviest = into[0]
    assert (heaviest.block, heaviest.source[1], cap.tokens[1]) == (23, 1, "·Mary")
    assert reading.strongest(2) == [(23, 1), (23, 9)]
    assert reading.carrier(23, 1) == 0 and reading.heads[23, 1, 3] < 0
    assert reading.edges[23, 1] == pytest.approx(3.57, abs=0.01)
    assert reading.carrier(23, 9) == 3 and reading.heads[23, 9, 3] == pytest.approx(2.87, abs=0.01)
    assert cap.attention[23, 3, i, 9] > 0.7 and cap.tokens[9] == "·John"
    assert graph.weights_into(i)[23, 9] < DEFAULT_THRESHOLD
    assert all((e.block, e.source[1]) != (23, 9) for e in into)
