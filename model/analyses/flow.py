"""The information-flow graph of Ferrando & Voita (2024, "Information flow routes"), computed the way
LLM Transparency Tool computes it. Nodes are residual states: the stream entering block l, the stream
after block l's attention ("mid"), the stream leaving block l. Each state is a sum of parts; an edge's
weight is the share of its part in that sum:

    share(part_k -> whole y) = max(eps, |y|_1 - |y - part_k|_1) / sum over k of the same

(|.|_1 the L1 norm, eps = 1e-5 as in LLM-TT). Parts of the mid state at position i: the stream entering
(the residual edge) and, for every earlier position j and head h, A[h,i,j] * v_j^h W_O^h (values
include their bias, which therefore travels with each source; the output projection's bias belongs
to no source and stays in y only, as in LLM-TT). Parts of the state leaving the block: the mid state
and the MLP's output. The shares into each node add up to 1.

An edge into the prediction's position can also be read through a metric (read_sources,
metric_direction): its pieces dotted with the direction of logit(A) − logit(B) there, as
model/analyses/attribution.py reads a block's output. The shares weigh how much a piece looks like the state it
joins; the reading, which head's piece writes the difference between A and B.

The pattern, the streams and the values (its key-value cache) all come from the Capture
(model/analyses/head_values.py); where it kept no usable values, they are recorded in one more pass, with
what the output projection read. The checks in _check_layer refuse a model where the split would
not be exact.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ..core.capture import Capture
from ..core.errors import UnsupportedModelError
from ..engine.attention import LISTEN, Call, listening
from ..engine.language_model import LanguageModel
from ..engine.layout import Layout
from ..engine.linear import weight_of
from ..engine.patch_sites import Edit, editing
from ..engine.threads import all_cores
from .attribution import readout
from .flow_graph import FlowGraph
from .head_values import capture_values, pattern_times_values

EPS = 1e-5  # LLM-TT's floor on a part's contribution (keeps every share positive, sums non-zero)


def _keep(found: dict, layer: int, tensor: torch.Tensor) -> None:
    """The first row of a pass's (1, ...) tensor as float32 on the CPU, under its layer."""
    found[layer] = tensor[0].detach().to(device="cpu", dtype=torch.float32)


@contextmanager
def _recording(layout: Layout, values: dict, mixed: dict) -> Iterator[None]:
    """For one pass: each layer's values (KV, T, hd), heard from the listening attention, and its
    output projection's input (T, H*hd), the heads' outputs side by side (the "heads" patch site)."""
    def hear(call: Call) -> None:
        _keep(values, call.layer, call.value)

    def read(layer: int) -> Edit:
        def edit(heads: torch.Tensor) -> torch.Tensor:
            _keep(mixed, layer, heads)
            return heads
        return edit

    with listening(layout, hear), editing(layout, {("heads", i): read(i) for i in range(len(layout.out_projs))}):
        yield


def record_values(lm: LanguageModel, ids: list[int]) -> tuple[dict, dict]:
    """One pass: {layer: (KV, T, hd) values}, {layer: (T, H*hd) output projection input}."""
    if not type(lm.model)._can_set_attn_implementation():
        raise UnsupportedModelError(
            f"{lm.summary.architecture} does not route attention through transformers' attention "
            "registry, so its values cannot be recorded for the information-flow graph.")
    values: dict[int, torch.Tensor] = {}
    mixed: dict[int, torch.Tensor] = {}
    lm.forward(ids, hooks=lambda layout: _recording(layout, values, mixed), attention=LISTEN, last_only=True)
    if len(values) != lm.summary.n_layers or len(mixed) != lm.summary.n_layers:
        raise UnsupportedModelError("Some layers' attention did not pass through the attention registry.")
    return values, mixed


def layer_values(lm: LanguageModel, cap: Capture) -> tuple[list[torch.Tensor] | dict, dict | None]:
    """Each layer's values (KV, T, hd) and, when recorded in a pass, the output projection's input.
    The capture's own key-value cache spares that pass (~0.75 of a capture) where the end-to-end check
    suffices (model/analyses/head_values.py); elsewhere the pass also records what the projection read, so
    the pattern times the values can be checked against it directly."""
    kept = capture_values(lm, cap)
    return (kept, None) if kept is not None else record_values(lm, cap.token_ids.tolist())


def out_projection(proj: nn.Module, n_heads: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(H, hd, D) the output projection split per head, and its bias (D,) or None.
    nn.Linear stores (out, in); GPT-2's Conv1D stores (in, out)."""
    weight = weight_of(proj).detach().to(device="cpu", dtype=torch.float32)
    if type(proj).__name__ == "Conv1D":
        per_input = weight  # (H*hd, D)
    elif isinstance(proj, nn.Linear):
        per_input = weight.T  # (H*hd, D)
    else:
        raise UnsupportedModelError(f"The attention output projection is a {type(proj).__name__}, "
                                    "not a linear map this graph can split per head.")
    bias = getattr(proj, "bias", None)
    bias = None if bias is None else bias.detach().to(device="cpu", dtype=torch.float32)
    return per_input.reshape(n_heads, -1, per_input.shape[-1]), bias


def source_vectors(values: torch.Tensor, w_o: torch.Tensor) -> torch.Tensor:
    """(T, H, D): each position's value through each head's slice of the output projection
    (grouped-query attention: query head h reads kv head h // group)."""
    group = w_o.shape[0] // values.shape[0]
    v = values.repeat_interleave(group, dim=0)  # (H, T, hd)
    return torch.einsum("htk,hkd->thd", v, w_o)


def read_sources(pattern: torch.Tensor, values: torch.Tensor, w_o: torch.Tensor, direction: np.ndarray) -> np.ndarray:
    """(T, H) each source's piece via each head into one mid state, A[h,i,j] v_j^h W_O^h, dotted with
    `direction` (D,), in float64. pattern: (H, T), the attention row of that state's position. Each
    head's slice of the output projection is read first, (H, hd), so no (T, H, D) piece is built."""
    through = torch.einsum("hkd,d->hk", w_o.double(), torch.from_numpy(np.asarray(direction, dtype=np.float64)))
    group = w_o.shape[0] // values.shape[0]
    v = values.double().repeat_interleave(group, dim=0)  # (H, T, hd)
    return (pattern.double() * torch.einsum("htk,hk->ht", v, through)).T.numpy()


def metric_direction(lm: LanguageModel, cap: Capture, position: int, a: int, b: int | None = None) -> np.ndarray:
    """(D,) the vector whose dot product with a piece written into the stream at `position` is that
    piece's direct share of logit(a) [− logit(b)]: model/attribution's readout (the final norm's divisor
    held fixed) as one vector, centred for a LayerNorm (which subtracts each piece's mean), so the edges
    read through it add up like the Attribution page's bars."""
    read = readout(lm, cap, position, a, b)
    direction = read.direction - read.direction.mean() if read.norm_kind == "layer" else read.direction
    return direction / read.scale


def shares(distance: torch.Tensor, whole_norm: torch.Tensor) -> torch.Tensor:
    """max(eps, |y|_1 - |y - part|_1), unnormalised; whole_norm broadcasts against distance."""
    return (whole_norm - distance).clamp_(min=EPS)


def _mid_rows(pattern: torch.Tensor, u: torch.Tensor, entering: torch.Tensor, mid: torch.Tensor,
              rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, T, H) head shares and (n,) residual share into the mid states at `rows`, normalised per
    node. pattern: (H, n, T), the attention rows of those positions. One query row at a time: its
    (i + 1, H, D) parts stay in cache (3x faster than 16-row chunks)."""
    H, _, T = pattern.shape
    norm = mid[rows].abs().sum(-1)  # (n,)
    heads = torch.zeros(len(rows), T, H)  # stays 0 for later positions: they are no part of the sum
    for k, i in enumerate(rows.tolist()):
        parts = pattern[:, k, : i + 1].T[..., None] * u[: i + 1]  # (i + 1, H, D)
        heads[k, : i + 1] = shares(parts.sub_(mid[i]).abs_().sum(-1), norm[k])
    residual = shares((mid[rows] - entering[rows]).abs().sum(-1), norm)  # (n,)
    total = heads.sum((1, 2)) + residual
    return (heads / total[:, None, None]).numpy(), (residual / total).numpy()


def _mlp_layer(mid: torch.Tensor, mlp_out: torch.Tensor, leaving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T,) MLP share and (T,) residual share into each state leaving the block."""
    norm = leaving.abs().sum(-1)
    mlp = shares((leaving - mlp_out).abs().sum(-1), norm)
    residual = shares((leaving - mid).abs().sum(-1), norm)
    total = mlp + residual
    return mlp / total, residual / total


def _close(a: torch.Tensor, b: torch.Tensor, what: str, layer: int, tolerance: float) -> None:
    """Refuse (never draw a wrong number) when two ways of getting one quantity disagree."""
    scale = max(1.0, float(b.abs().max()))
    if float((a - b).abs().max()) > tolerance * scale:
        raise UnsupportedModelError(
            f"Block {layer}: {what}, so this model's streams do not split into the parts the "
            "information-flow graph weighs.")


def flow_graph(lm: LanguageModel, cap: Capture, progress: Callable[[float], None] | None = None) -> FlowGraph:
    """The information-flow graph of the capture's tokens: the values (layer_values), the checks that
    the streams split exactly, the MLP edges; the attention edges are weighed as prunings ask for them
    and read through a metric as a page asks (FlowGraph, read_edges). `progress(fraction)` hears after each block is checked."""
    values, mixed = layer_values(lm, cap)
    H, L, T = cap.summary.n_heads, cap.summary.n_layers, cap.n_tokens
    tolerance = 2e-3 if cap.dtype == "float32" else 5e-2  # 16-bit passes round each sum to ~3 digits
    mlp, mlp_res = (np.zeros((L, T), dtype=np.float32) for _ in range(2))
    for layer in range(L):
        pattern = torch.from_numpy(cap.attention[layer].copy())  # (H, T, T)
        entering, leaving = (torch.from_numpy(cap.residual[i].copy()) for i in (layer, layer + 1))
        attn_out, mlp_out = torch.from_numpy(cap.attn_out[layer].copy()), torch.from_numpy(cap.mlp_out[layer].copy())
        _check_layer(lm.layout, layer, pattern, values[layer], None if mixed is None else mixed[layer], entering,
                     attn_out, mlp_out, leaving, tolerance)
        m, r = _mlp_layer(entering + attn_out, mlp_out, leaving)
        mlp[layer], mlp_res[layer] = m.numpy(), r.numpy()
        if progress is not None:
            progress((layer + 1) / L)

    def weigh(layer: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with all_cores():  # the person waits for these rows
            w_o, _ = out_projection(lm.layout.out_projs[layer], H)
            entering = torch.from_numpy(cap.residual[layer].copy())
            mid = entering + torch.from_numpy(cap.attn_out[layer].copy())
            pattern = torch.from_numpy(cap.attention[layer][:, rows])  # (H, n, T), a copy
            return _mid_rows(pattern, source_vectors(values[layer], w_o), entering, mid, rows)

    def read(layer: int, position: int, direction: np.ndarray) -> np.ndarray:
        w_o, _ = out_projection(lm.layout.out_projs[layer], H)
        return read_sources(torch.from_numpy(cap.attention.layer_rows(layer, position, position + 1)[:, 0]), values[layer], w_o,
                            direction)

    return FlowGraph(list(cap.tokens), mlp, mlp_res, H, weigh, read)


def _check_layer(layout: Layout, layer: int, pattern, values, mixed, entering, attn_out, mlp_out, leaving,
                 tolerance: float) -> None:
    """The pattern times the values is what the output projection read (where recorded), and through
    the projection (plus its bias) the attention's output; entering + attention + MLP is the stream
    leaving the block. Together: every head's piece the graph weighs adds up to what the model did."""
    H, T, _ = pattern.shape
    heads = pattern_times_values(pattern, values)  # (H, T, hd)
    if mixed is not None:
        _close(heads.transpose(0, 1).reshape(T, -1), mixed, "the attention pattern times the values is not what "
               "the output projection read (attention sinks, soft-capping or a different value path)", layer,
               tolerance)
    w_o, bias = out_projection(layout.out_projs[layer], H)
    rebuilt = torch.einsum("htk,hkd->td", heads, w_o) + (0 if bias is None else bias)
    _close(rebuilt, attn_out, "the attention pattern times the values, through the output projection, is not "
           "the attention's output (attention sinks, soft-capping, a norm after attention or a different value "
           "path)", layer, tolerance)
    _close(entering + attn_out + mlp_out, leaving, "the block is not entering stream + attention + MLP "
           "(parallel attention or norms after the sublayers)", layer, tolerance)
