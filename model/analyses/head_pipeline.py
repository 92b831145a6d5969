"""One layer's attention, step by step, from the queries, keys and values the model really used
(after rotary embeddings): raw scores, the causal mask, the softmax pattern, the value norms.

Learned attention sinks (gpt-oss): each head has one extra logit that joins the softmax as a column no
key owns and writes nothing, so a row's weights over the keys add up to less than 1. Our softmax
includes it, and `sink_weight` says how much of each row it took. Every recording is checked against
the family's own eager attention rerun in float32: where our steps do not rebuild its weights, or its
output is not those weights times the values, step by step refuses and says which.

How it records: one pass under the engine's listening attention (model/engine/attention.py), which
runs the model family's own eager attention (on a long prompt the fast kernel, whose call
carries the same queries, keys and values); the asked-for layer's call is kept and the pass stops
there. `LanguageModel.forward` swaps the implementation in and restores the previous one. A short
prompt keeps the family's own weights for every head and is checked on every row; a long one keeps
only what is O(T x head_dim) (and the (T, T) mask), computes any rows a view asks for, and is checked
on its first and last PROBE_ROWS rows: at 3,500 tokens one block's whole scores and weights took 0.9 GB,
more than the cache of derived results holds, so every widget change recorded the block again.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.errors import CaptureError, UnsupportedModelError
from ..engine import language_model
from ..engine.attention import LISTEN, Call, family_eager, listening, listening_kernel
from ..engine.language_model import LanguageModel

PATTERN_TOLERANCE = 1e-4  # our float64 softmax against the family's float32 one: rounding is ~1e-7
PROBE_ROWS = 8  # query rows at each end on which a long prompt's steps are checked against the family's
ROW_CHUNK = 256  # query rows computed at once: a (256, T) block of scores


class _Recorded(Exception):
    """Raised once the target layer is recorded: the layers after it need not run."""

    def __init__(self, tensors: dict) -> None:
        super().__init__("recorded")
        self.tensors = tensors


@dataclass(frozen=True)
class HeadPipeline:
    """Every query head of one layer, at each step of the score pipeline. float32, read-only."""

    layer: int
    query: np.ndarray  # (H, T, hd) queries as used (after rotary)
    key: np.ndarray  # (KV, T, hd) keys as used (after rotary)
    value: np.ndarray  # (KV, T, hd)
    masked: np.ndarray  # (T, T) bool: True where the mask hides key (column) from query (row)
    scaling: float  # the factor on q.k (1/sqrt(head_dim) for most models)
    group_size: int  # query heads per key/value head
    softcap: float | None = None  # scores pass through tanh(s / softcap) * softcap (Gemma 2)
    weights: np.ndarray | None = None  # (H, T, T) the weights the model itself computed: short prompts only
    sinks: np.ndarray | None = None  # (H,) learned sink logit per head (gpt-oss); None: the model has none
    sink_weight: np.ndarray | None = None  # (H, T) share of each query row the sink took: 1 - the row's sum

    def __post_init__(self) -> None:
        for name in ("query", "key", "value", "masked", "weights", "sinks", "sink_weight"):
            if getattr(self, name) is not None:
                getattr(self, name).setflags(write=False)

    @property
    def n_tokens(self) -> int:
        return int(self.query.shape[1])

    @property
    def n_heads(self) -> int:
        return int(self.query.shape[0])

    def kv_head(self, head: int) -> int:
        """The key/value head a query head reads under grouped-query attention."""
        return head // self.group_size

    def heads_sharing(self, head: int) -> list[int]:
        """All query heads that read the same key/value head as `head`."""
        kv = self.kv_head(head)
        return [h for h in range(self.n_heads) if self.kv_head(h) == kv]

    def score_rows(self, head: int, start: int, stop: int) -> np.ndarray:
        """(R, T) q.k * scaling (through the softcap) of query rows [start, stop), before the mask."""
        s = (self.query[head, start:stop] @ self.key[self.kv_head(head)].T) * np.float32(self.scaling)  # (R, T)
        if self.softcap:
            s = np.tanh(s / np.float32(self.softcap)) * np.float32(self.softcap)
        return s

    def masked_score_rows(self, head: int, start: int, stop: int) -> np.ndarray:
        """(R, T) raw scores with -inf where the mask hides a key."""
        return np.where(self.masked[start:stop], -np.inf, self.score_rows(head, start, stop)).astype(np.float32)

    def softmax_rows(self, head: int, start: int, stop: int) -> np.ndarray:
        """(R, T) our own softmax of the masked scores, the sink's column included and then dropped
        (equals the model's weights up to rounding: checked when recorded, on every row of a short
        prompt and the first and last PROBE_ROWS of a long one)."""
        sink = None if self.sinks is None else float(self.sinks[head])
        return _softmax(self.masked_score_rows(head, start, stop), sink)[:, :-1].astype(np.float32)

    def pattern_rows(self, head: int, start: int, stop: int) -> np.ndarray:
        """(R, T) the attention weights: the model's own where held (short prompts), else our softmax."""
        if self.weights is not None:
            return self.weights[head, start:stop]
        return self.softmax_rows(head, start, stop)

    def value_weighted_rows(self, head: int, start: int, stop: int) -> np.ndarray:
        """(R, T) weight x |value|: how much each key really moves the head's output."""
        return self.pattern_rows(head, start, stop) * self.value_norms(head)[None, :]

    def masked_scores(self, head: int) -> np.ndarray:
        """(T, T) every row of `masked_score_rows`."""
        return self.masked_score_rows(head, 0, self.n_tokens)

    def softmax(self, head: int) -> np.ndarray:
        """(T, T) every row of `softmax_rows`."""
        return self.softmax_rows(head, 0, self.n_tokens)

    def value_weighted(self, head: int) -> np.ndarray:
        """(T, T) every row of `value_weighted_rows`."""
        return self.value_weighted_rows(head, 0, self.n_tokens)

    @property
    def has_sinks(self) -> bool:
        return self.sinks is not None

    def value_norms(self, head: int) -> np.ndarray:
        """(T,) length of each key position's value vector for this head's kv head."""
        return np.linalg.norm(self.value[self.kv_head(head)], axis=-1)


def _softmax(masked: np.ndarray, sink: float | None) -> np.ndarray:
    """(T, T + 1) float64 softmax of masked scores (T, T) with the sink logit as a last column (weight 0
    when there is no sink): the column is what the rows lose."""
    column = np.full((masked.shape[0], 1), -np.inf if sink is None else sink)  # (T, 1)
    s = np.concatenate([masked.astype(np.float64), column], axis=-1)  # (T, T + 1)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sink_weights(pipe: HeadPipeline) -> np.ndarray | None:
    """(H, T) the weight each head's sink takes from each query row; None without sinks."""
    if pipe.sinks is None:
        return None
    T = pipe.n_tokens
    rows = [np.concatenate([_softmax(pipe.masked_score_rows(h, start, min(T, start + ROW_CHUNK)), float(sink))[:, -1]
                            for start in range(0, T, ROW_CHUNK)]) for h, sink in enumerate(pipe.sinks)]
    return np.stack(rows).astype(np.float32)  # (H, T)


def _sink_logits(module: nn.Module, kwargs: dict) -> torch.Tensor | None:
    """(H,) the learned sinks the family passes along (`s_aux`) or keeps on the module; None without."""
    sinks = kwargs.get("s_aux")
    if sinks is None:
        sinks = getattr(module, "sinks", None)
    return sinks if isinstance(sinks, torch.Tensor) else None


def _float32(tensor):
    """A float tensor in float32 (masks of bools and absent masks as they are)."""
    return tensor.float() if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() else tensor


def _reference(call: Call) -> tuple[torch.Tensor, torch.Tensor]:
    """The family's eager attention in float32 on the call's inputs: (1, T, H, hd) output, (1, H, T, T)
    weights. A float32 model's own call already is; a 16-bit one is run again (while its weights are
    in place: offloaded blocks only have them during their forward)."""
    if call.query.dtype == torch.float32 and call.weights is not None:
        return call.output, call.weights
    inputs = map(_float32, (call.query, call.key, call.value, call.mask))
    return family_eager(call.module)(call.module, *inputs, scaling=call.scaling, dropout=0.0, **call.kwargs)


def _reference_rows(call: Call, hidden: np.ndarray, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The family's eager attention in float32 on query rows [start, stop) over every key: (1, R, H, hd)
    output, (1, H, R, T) weights. The mask as eager adds it: the call's own where additive, else -max
    where `hidden` says (a boolean mask, or none under the fast kernel's causal flag)."""
    if call.mask is not None and call.mask.dtype != torch.bool:
        mask = call.mask[:, :, start:stop].float()
    else:
        low = torch.finfo(torch.float32).min
        mask = torch.where(torch.from_numpy(hidden[start:stop]), low, 0.0)[None, None].to(call.query.device)
    query = call.query[:, :, start:stop].float()
    key, value = call.key.float(), call.value.float()
    return family_eager(call.module)(call.module, query, key, value, mask, scaling=call.scaling, dropout=0.0,
                                     **call.kwargs)


def _record(call: Call, long: bool) -> None:
    """The target layer's listener: keep what step by step needs and the family's own attention to check
    it against (every row, or a long prompt's first and last PROBE_ROWS), then stop the pass."""
    sinks = _sink_logits(call.module, call.kwargs)
    T = call.query.shape[-2]
    hidden = _hidden(call.mask, T)
    if long:
        spans = sorted({(0, min(T, PROBE_ROWS)), (max(0, T - PROBE_ROWS), T)})
        references = [(start, stop, *_reference_rows(call, hidden, start, stop)) for start, stop in spans]
    else:
        references = [(0, T, *_reference(call))]
    used = call.scaling if call.scaling is not None else call.query.shape[-1] ** -0.5
    raise _Recorded({"query": call.query, "key": call.key, "value": call.value, "masked": hidden,
                     "weights": None if long else call.weights, "scaling": float(used),
                     "softcap": call.kwargs.get("softcap"), "sinks": None if sinks is None else _to_numpy(sinks),
                     "references": references})


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy()


def _hidden(mask: torch.Tensor | None, n: int) -> np.ndarray:
    """(T, T) bool of masked cells from an additive or boolean mask; causal when there is none."""
    if mask is None:
        return np.triu(np.ones((n, n), dtype=bool), k=1)
    m = mask[0, 0, :n, -n:]  # (T, T) this prompt's own keys
    if m.dtype == torch.bool:
        return ~m.cpu().numpy()
    return (m <= torch.finfo(m.dtype).min / 2).cpu().numpy() | torch.isinf(m).cpu().numpy()


def _uses_alibi(config) -> bool:
    """ALiBi (a per-head linear bias on the scores by distance): BLOOM always, Falcon and MPT by config."""
    attn_config = getattr(config, "attn_config", None)
    return (config.model_type == "bloom" or bool(getattr(config, "alibi", False))
            or bool(getattr(attn_config, "alibi", False) if attn_config is not None else False))


def _check_supported(lm: LanguageModel) -> None:
    if not type(lm.model)._can_set_attn_implementation():
        config = lm.model.config
        alibi = (" Its scores also carry an ALiBi position bias added inside that module."
                 if _uses_alibi(config) else "")
        raise UnsupportedModelError(
            f"Attention step by step is not available for {lm.summary.architecture} ({config.model_type}): this "
            "family computes attention inside its own module instead of through transformers' attention "
            f"interface, so the queries and keys it used cannot be recorded.{alibi} The captured patterns on "
            "the other pages are the model's own."
        )


OWN_PATTERNS = " The captured patterns on the other pages are the model's own."


def _refuse(lm: LanguageModel, why: str, tail: str = OWN_PATTERNS) -> UnsupportedModelError:
    """The refusal, naming the architecture, its model type and the reason."""
    config = lm.model.config
    return UnsupportedModelError(f"Attention step by step is not available for {lm.summary.architecture} "
                                 f"({config.model_type}): {why}{tail}")


def _check_exact(lm: LanguageModel, pipe: HeadPipeline, rec: dict) -> None:
    """Our softmax (sinks included) must rebuild the family's float32 weights, and those weights times
    the values must be its output: otherwise a step would show a number the model never used."""
    weights_off, output_off = _differences(pipe, rec["references"])
    if weights_off > PATTERN_TOLERANCE and pipe.has_sinks:
        plain = dataclasses.replace(pipe, sinks=None, sink_weight=None)
        if _differences(plain, rec["references"])[0] <= PATTERN_TOLERANCE:
            raise _refuse(lm, "its learned attention sinks do not join the softmax but scale each head's output "
                          "after it, so the pattern it reports (rows adding up to 1) is not the weights that "
                          "moved the output, and the value step would misstate what each key moves.", tail="")
    if weights_off > PATTERN_TOLERANCE:
        raise _refuse(lm, f"its attention weights are not the softmax of the scores shown here (they differ by "
                      f"up to {weights_off:.3g}): the family computes them in a way these steps do not follow.")
    if output_off > PATTERN_TOLERANCE:
        raise _refuse(lm, f"its attention output is not the pattern times the values (off by up to "
                      f"{output_off:.3g}): the family changes it after the softmax (an attention sink applied as "
                      "a scale on the output, for one), so the value step would misstate what each key moves.")


def _differences(pipe: HeadPipeline, references: list) -> tuple[float, float]:
    """Largest gap of our softmax from the family's weights on the reference rows (start, stop, output
    (1, R, H, hd), weights (1, H, R, T)), and of those weights times the values from its output, relative
    to the output's size. One head at a time: no (H, T, T) copies."""
    weights_off = output_off = 0.0
    for start, stop, output, weights in references:
        output, weights = output[0], weights[0]
        if output.shape[:2] != (stop - start, pipe.n_heads):  # (R, H) expected
            return 0.0, float("inf")
        scale = max(1.0, float(output.abs().max()))
        for h in range(pipe.n_heads):
            theirs = _to_numpy(weights[h])  # (R, T)
            weights_off = max(weights_off, float(np.abs(pipe.softmax_rows(h, start, stop) - theirs).max()))
            rebuilt = theirs @ pipe.value[pipe.kv_head(h)]  # (R, hd)
            output_off = max(output_off, float(np.abs(rebuilt - _to_numpy(output[:, h])).max()) / scale)
    return weights_off, output_off


def _run_recording(lm: LanguageModel, layer: int, ids: list[int], long: bool) -> dict:
    """Run the prompt with the listening attention until `layer` is recorded (the gateway restores it):
    the family's eager, or on a long prompt the fast kernel where the family has one."""
    listener = functools.partial(_record, long=long)
    try:
        lm.forward(ids, hooks=lambda layout: listening(layout, listener, [layer]),
                   attention=listening_kernel if long else LISTEN)
    except _Recorded as recorded:
        return recorded.tensors
    raise CaptureError(f"Layer {layer}'s attention was never called through the attention registry.")


def head_pipeline(lm: LanguageModel, token_ids: np.ndarray | list[int], layer: int) -> HeadPipeline:
    """Queries, keys, values, mask and weights of every head in `layer` for these tokens (any rows of
    scores and softmax computed from them)."""
    if not 0 <= layer < lm.summary.n_layers:
        raise ValueError(f"layer must be in 0..{lm.summary.n_layers - 1}, got {layer}")
    _check_supported(lm)
    ids = [int(i) for i in token_ids]
    long = len(ids) >= language_model.PATTERNS_ON_DEMAND_TOKENS
    rec = _run_recording(lm, layer, ids, long)
    query, key = rec["query"], rec["key"]  # (1, H, T, hd), (1, KV, T, hd)
    pipe = HeadPipeline(
        layer=layer,
        query=_to_numpy(query[0]),
        key=_to_numpy(key[0]),
        value=_to_numpy(rec["value"][0]),
        masked=rec["masked"],
        scaling=rec["scaling"],
        group_size=max(1, query.shape[1] // key.shape[1]),
        softcap=None if rec["softcap"] is None else float(rec["softcap"]),
        weights=None if rec["weights"] is None else _to_numpy(rec["weights"][0]),
        sinks=rec["sinks"],
    )
    pipe = dataclasses.replace(pipe, sink_weight=_sink_weights(pipe))
    _check_exact(lm, pipe, rec)
    return pipe
