"""Steering: add a direction to the residual stream at one block and see the text change.

Where a direction comes from: ActAdd (Turner et al. 2023, the stream's difference between two
prompts), contrastive activation addition (Rimsky et al. 2024, the mean difference over pairs of
prompts), the Meaning page's vector arithmetic, one MLP neuron's output column, or a token's
unembedding row. Both prompt-based sources read the stream at the LAST token of each prompt (where
the model has read the whole prompt), at the same site the direction is later added to.

Adding it is an edit of the patch site ("residual", block): the stream entering that block, at every
position from `start` on, gains coefficient x direction. Generation runs the default and the steered
continuation as two rows of one batch through the gateway, each row drawing its tokens with the
same seed, so at coefficient 0 both rows draw the same tokens. The pair's own steps score each text
under its own model, and one crossed pass of two rows under the other; `score()` reads both texts under
both models in one pass of four rows, where with frozen attention the steered rows use the attention
patterns of the unsteered rows, so only what the direction writes directly (and what the MLPs make of
it) counts.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..core.capture import KV, Capture
from ..core.errors import UnsupportedModelError
from ..engine.attention import LISTEN, Call, listening
from ..engine.language_model import Hooks, LanguageModel, fast_for, stacked_kv
from ..engine.linear import matrix, weight_of
from ..engine.patch_sites import Edit, Site, reader
from .embeddings import cosine_to_matrix, vector_arithmetic
from .generation import MAX_STEPS, Decoding, choose, continuation_text, generate, lent_by, stop_ids
from .mlp import mlp_parts
from .sampling import probabilities, top_tokens

MAX_COEFFICIENT = 1000.0  # larger pushes only overflow the stream; the page says so
MAX_PAIRS = 8  # prompt pairs of a contrastive direction (one short pass each)


@dataclass(frozen=True)
class Direction:
    """A direction in the stream (D,) float32 and what it was made from, in words."""

    vector: np.ndarray
    label: str


@dataclass(frozen=True)
class Steering:
    """What a steered pass adds: coefficient x vector to the stream entering block `layer`, at every
    position from `start` on (0: all)."""

    vector: np.ndarray  # (D,)
    layer: int
    coefficient: float
    start: int = 0

    @property
    def site(self) -> Site:
        return ("residual", self.layer)


def _text_ids(lm: LanguageModel, text: str, what: str) -> list[int]:
    """Token ids of a prompt a direction is made from; a ValueError names which one is empty."""
    if not text.strip():
        raise ValueError(f"{what} is empty: type a short prompt.")
    return lm.encode(text)


def check_layer(lm: LanguageModel, layer: int) -> int:
    """The block, or a ValueError saying which blocks this model has."""
    n = lm.summary.n_layers
    if not 0 <= int(layer) < n:
        raise ValueError(f"Block {layer} is out of range: this model has blocks 0 to {n - 1}.")
    return int(layer)


def stream_at(lm: LanguageModel, ids: list[int], layer: int) -> np.ndarray:
    """(T, D) float32 the stream entering block `layer` for these tokens (one pass, read at the site)."""
    kept: list[np.ndarray] = []
    keep = reader(lambda t: kept.append(t[0].detach().to(device="cpu", dtype=torch.float32).numpy()))
    lm.forward(ids, sites={("residual", check_layer(lm, layer)): keep}, last_only=True)
    return kept[0]


def _last(lm: LanguageModel, text: str, what: str, layer: int) -> np.ndarray:
    return stream_at(lm, _text_ids(lm, text, what), layer)[-1].astype(np.float64)


def actadd(lm: LanguageModel, positive: str, negative: str, layer: int) -> Direction:
    """ActAdd (Turner et al. 2023): the stream at the last token of `positive` minus that of `negative`."""
    vector = _last(lm, positive, "The first prompt", layer) - _last(lm, negative, "The second prompt", layer)
    return Direction(vector.astype(np.float32), f"'{positive}' − '{negative}' (last tokens, block {layer})")


def contrastive(lm: LanguageModel, positives: Sequence[str], negatives: Sequence[str], layer: int) -> Direction:
    """Contrastive activation addition (Rimsky et al. 2024): the mean over pairs of (positive − negative)
    streams at each prompt's last token. The lists pair up line by line, so they must be as long."""
    pos, neg = [p for p in positives if p.strip()], [n for n in negatives if n.strip()]
    if not pos or not neg:
        raise ValueError("Both lists need at least one prompt (one per line).")
    if len(pos) != len(neg):
        raise ValueError(f"The lists pair up line by line, but one has {len(pos)} prompts and the other "
                         f"{len(neg)}: give them as many lines.")
    if len(pos) > MAX_PAIRS:
        raise ValueError(f"At most {MAX_PAIRS} pairs, got {len(pos)}.")
    diffs = [_last(lm, p, f"Prompt {i + 1} of the first list", layer)
             - _last(lm, n, f"Prompt {i + 1} of the second list", layer) for i, (p, n) in enumerate(zip(pos, neg))]
    return Direction(np.mean(diffs, axis=0).astype(np.float32), f"mean of {len(pos)} pair(s) (block {layer})")


def arithmetic(lm: LanguageModel, expression: str) -> Direction:
    """The Meaning page's vector arithmetic on the input embeddings (e.g. king − man + woman)."""
    result = vector_arithmetic(lm.tokenizer, lm.embedding_matrix, expression).result
    return Direction(np.asarray(result, dtype=np.float32), f"{expression.strip()} (input embeddings)")


def neuron_column(lm: LanguageModel, layer: int, neuron: int) -> Direction:
    """What one MLP neuron writes per unit of activation: its column of the down projection W_out."""
    parts = mlp_parts(lm, check_layer(lm, layer))
    if not 0 <= neuron < parts.width:
        raise ValueError(f"Neuron {neuron} is out of range: block {layer}'s MLP has neurons 0 to {parts.width - 1}.")
    column = matrix(parts.down)[:, neuron]  # (D,)
    return Direction(column.astype(np.float32), f"neuron {neuron} of block {layer}'s MLP (its output column)")


def unembedding_row(lm: LanguageModel, token_id: int, token: str) -> Direction:
    """The unit vector of a token's unembedding row: the direction the last stream reads as that token."""
    weight = weight_of(lm.model.get_output_embeddings())
    if not 0 <= token_id < weight.shape[0]:
        raise ValueError(f"Token id {token_id} is outside the vocabulary (0 to {weight.shape[0] - 1}).")
    row = weight[token_id].detach().to(device="cpu", dtype=torch.float64).numpy()
    return Direction((row / np.linalg.norm(row)).astype(np.float32), f"unembedding of {token} (unit length)")


def unembedding_of(lm: LanguageModel, text: str) -> Direction:
    """The unembedding direction of a token typed as text (" wedding"): it must be exactly one token."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    if len(ids) != 1:
        raise ValueError(f"'{text}' is {len(ids)} tokens for this model; type one token (a common word, "
                         "usually with a space before it).")
    return unembedding_row(lm, int(ids[0]), text)


def typical_norm(stream: np.ndarray) -> float:
    """The median length of a stream's rows (T, D): robust to the first token's outsized stream."""
    return float(np.median(np.linalg.norm(np.asarray(stream, dtype=np.float64), axis=-1)))


def check(lm: LanguageModel, steering: Steering, n_prompt: int) -> None:
    """A ValueError that says what is wrong with a steering setup for a prompt of n_prompt tokens."""
    check_layer(lm, steering.layer)
    if steering.vector.shape != (lm.summary.d_model,):
        raise ValueError(f"The direction has shape {steering.vector.shape}; this model's stream has "
                         f"{lm.summary.d_model} numbers.")
    c = steering.coefficient
    if not np.isfinite(c) or abs(c) > MAX_COEFFICIENT:
        raise ValueError(f"The coefficient {c:g} is too large: keep it between −{MAX_COEFFICIENT:g} and "
                         f"{MAX_COEFFICIENT:g} (past that the stream is only the direction).")
    if not 0 <= steering.start < n_prompt:
        raise ValueError(f"Position {steering.start} is past the prompt, whose last token is at {n_prompt - 1}.")


def steering_edit(steering: Steering, rows: Sequence[int], offset: int = 0) -> Edit:
    """The edit that adds coefficient x vector to `rows` of the stream, at positions >= start; `offset`
    is the absolute position of the activation's first column (a cached step's is the context's length)."""
    delta = torch.tensor(steering.vector, dtype=torch.float32) * float(steering.coefficient)  # (D,)
    first = max(0, steering.start - offset)

    def edit(t: torch.Tensor) -> torch.Tensor:  # (B, T, D)
        out = t.clone()
        out[list(rows), first:] += delta.to(device=t.device, dtype=t.dtype)
        return out
    return edit


def steered_logits(lm: LanguageModel, ids: list[int], steering: Steering, last_only: bool = False) -> np.ndarray:
    """(T, V) logits of one steered pass, or (V,) its last row (the same path as an unsteered `lm.forward(ids)`)."""
    check(lm, steering, len(ids))
    return lm.forward(ids, sites={steering.site: steering_edit(steering, [0])}, last_only=last_only).logits


def next_token_moves(lm: LanguageModel, cap: Capture, steering: Steering) -> tuple[np.ndarray, np.ndarray]:
    """(V,) next-token probabilities after the captured prompt, unsteered and steered: the capture's own
    last row, and one steered pass's (none at coefficient 0, where steering adds nothing). At 2,000
    tokens score()'s two rows of the prompt took 12-14 s a coefficient; this is one row, or none."""
    before = probabilities(lm.logits_at(cap, -1))
    if steering.coefficient == 0:
        return before, before
    return before, probabilities(steered_logits(lm, cap.token_ids.tolist(), steering, last_only=True))


@dataclass(frozen=True)
class Continuations:
    """The default and the steered continuation of one prompt, drawn with the same decoding."""

    default_ids: tuple[int, ...]
    steered_ids: tuple[int, ...]
    default_text: str
    steered_text: str
    batched: bool  # True: one batch of two rows per step; False: one continuation after the other
    seconds: float
    scores: Scores | None = None  # both texts under both models (unfrozen), read while drawing them; None: not batched


@dataclass
class _Drawn:
    """What a batched pair's passes leave behind: each row's tokens, the log-probability its own model
    gave each, the first step's logits (the next token after the prompt) and the last step's keys and
    values, rows (unsteered, steered), whose first positions are the prompt's."""

    new: tuple[list[int], list[int]]
    own: tuple[list[float], list[float]]
    first: np.ndarray  # (2, V) logits after the prompt: unsteered, steered
    kv: KV  # arrays (2, kv heads, positions, head dim)


def _batched(lm: LanguageModel, ids: list[int], steering: Steering, n: int, decoding: Decoding,
             start: Capture | None = None) -> _Drawn | None:
    """Both continuations as two rows of each pass (row 1 steered), each row from its own keys and
    values; None when the model's cache cannot be carried from pass to pass (the caller runs them one by one).
    `start`, the prompt's capture, stands in for the unsteered row's pass over the prompt (`_first_step`)."""
    stop, contexts = stop_ids(lm), [list(ids), list(ids)]
    drawn: _Drawn | None = None
    done = [False, False]
    kv = None
    for i in range(n):
        first = _first_step(lm, ids, steering, start) if kv is None else None
        if first is None:
            offset = 0 if kv is None else len(contexts[0]) - 1
            rows = [c[offset:] for c in contexts]
            result = lm.forward(rows, sites={steering.site: steering_edit(steering, [1], offset)}, last_only=True,
                                past=kv, keep_kv=True)
            row_kv = [row for row in result.row_kv if row is not None]
            if len(row_kv) != 2:
                return None
            logits, kv = np.array(result.logits), stacked_kv(row_kv)
        else:
            logits, kv = first
        if drawn is None:
            drawn = _Drawn(([], []), ([], []), logits, kv)
        drawn.kv = kv
        for r in (0, 1):
            token = choose(logits[r], decoding, i)[0] if not done[r] else contexts[r][-1]
            if not done[r]:
                drawn.new[r].append(token)
                drawn.own[r].append(float(_log_probs(logits[r][None], [token], 0)[0]))
                done[r] = token in stop
            contexts[r].append(token)  # a finished row repeats its last token; its draws are not kept
        if all(done):
            break
    return drawn


def _first_step(lm: LanguageModel, ids: list[int], steering: Steering,
                start: Capture | None) -> tuple[np.ndarray, KV] | None:
    """The first step's (2, V) logits and both rows' keys and values, the unsteered row's from the
    prompt's capture and the steered row's from a pass of its own: one row over the prompt, not two (at
    3,500 tokens the pair's first pass was most of its wait). None where the capture cannot lend."""
    plain = lent_by(lm, start, ids)
    if plain is None:
        return None
    steered = lm.forward(ids, sites={steering.site: steering_edit(steering, [0], 0)}, last_only=True, keep_kv=True)
    if steered.kv is None:
        return None
    return np.stack([plain[0], steered.logits]), stacked_kv([plain[1], steered.kv])


def _crossed(lm: LanguageModel, n: int, steering: Steering, drawn: _Drawn) -> Scores:
    """Each text under the other model too, in one pass of two rows after the prompt: the default text
    steered from the steered prompt's keys and values, the steered text unsteered from the default's."""
    texts = drawn.new
    cross: list[np.ndarray] = [drawn.first[1][None], drawn.first[0][None]]  # each text's first token, other model
    if max(len(t) for t in texts) > 1:
        longest = max(len(t) for t in texts) - 1
        rows = [t[:-1] + [t[-1]] * (longest - len(t) + 1) for t in texts]  # right-padded; never seen before
        past = tuple((k[[1, 0], :, :n], v[[1, 0], :, :n]) for k, v in drawn.kv)  # each row, the other's prompt
        logits = lm.forward(rows, sites={steering.site: steering_edit(steering, [0], n)}, past=past).logits
        cross = [np.concatenate([cross[r], logits[r]]) for r in (0, 1)]
    default_by_steered = _log_probs(cross[0], texts[0], 0)
    steered_by_default = _log_probs(cross[1], texts[1], 0)
    return Scores(np.array(drawn.own[0]), default_by_steered, steered_by_default, np.array(drawn.own[1]),
                  probabilities(drawn.first[0]), probabilities(drawn.first[1]), frozen=False)


def generate_pair(lm: LanguageModel, ids: list[int], steering: Steering, n_steps: int, decoding: Decoding,
                  max_tokens: int | None = None, read: bool = True, start: Capture | None = None) -> Continuations:
    """Up to n_steps tokens after ids, default and steered, from the same seed: step i of each row
    draws with seed + i, as the Generate page does, so coefficient 0 gives two identical texts. With
    `read`, a batched pair also reads each text under the other model (`scores`), so the page needs no
    pass of its own (frozen attention does: it asks for none). `start`, the prompt's capture, answers
    the unsteered row's first step."""
    check(lm, steering, len(ids))
    n = max(0, min(int(n_steps), MAX_STEPS, (max_tokens - len(ids)) if max_tokens else MAX_STEPS))
    began = time.perf_counter()
    drawn = _batched(lm, ids, steering, n, decoding, start) if n else None
    if drawn is not None:
        pair, scores = drawn.new, (_crossed(lm, len(ids), steering, drawn) if read else None)
    else:
        plain = [s.token_id for s in generate(lm, ids, n, decoding)]
        steered = [s.token_id for s in generate(lm, ids, n, decoding, sites=lambda offset: {
            steering.site: steering_edit(steering, [0], offset)})]
        pair, scores = (plain, steered), None
    return Continuations(tuple(pair[0]), tuple(pair[1]), continuation_text(lm, ids, pair[0]),
                         continuation_text(lm, ids, pair[1]), drawn is not None, time.perf_counter() - began, scores)


def _frozen_listener(pairs: Sequence[tuple[int, int]], heard: list[int]) -> Callable[[Call], tuple]:
    """A listener that gives each (source, target) pair's target row the source row's attention
    weights, then mixes the target's own values with them exactly as eager attention does."""
    def listen(call: Call) -> tuple[torch.Tensor, torch.Tensor]:
        if call.weights is None:
            raise UnsupportedModelError("Frozen attention needs the attention weights, which this pass did not form.")
        weights = call.weights.clone()  # (B, H, T, T_all)
        for source, target in pairs:
            weights[target] = call.weights[source]
        groups = call.query.shape[1] // call.value.shape[1]
        values = torch.repeat_interleave(call.value, groups, dim=1)  # (B, H, T_all, hd) as repeat_kv
        heard.append(call.layer)
        return torch.matmul(weights, values).transpose(1, 2).contiguous(), weights
    return listen


@dataclass(frozen=True)
class Scores:
    """Each text's tokens read by both models, and the next token at the prompt's end under both."""

    default_by_default: np.ndarray  # (n_d,) log-probability of each default token, unsteered model
    default_by_steered: np.ndarray  # (n_d,) the same tokens, steered model
    steered_by_default: np.ndarray  # (n_s,)
    steered_by_steered: np.ndarray  # (n_s,)
    next_default: np.ndarray  # (V,) next-token probabilities after the prompt, unsteered
    next_steered: np.ndarray  # (V,) steered
    frozen: bool

    def moved(self, k: int = 10) -> np.ndarray:
        """(k,) ids whose next-token probability moved most (either way), largest move first."""
        return most_moved(self.next_default, self.next_steered, k)


def most_moved(before: np.ndarray, after: np.ndarray, k: int) -> np.ndarray:
    """(k,) ids whose probability moved most from `before` to `after` (either way), largest move first."""
    return top_tokens(np.abs(after - before), k)


def _log_probs(logits: np.ndarray, ids: Sequence[int], n_prompt: int) -> np.ndarray:
    """(n,) log-probability of each token after the prompt, from the logits from the prompt's last
    position on ((T - n_prompt + 1, V) or more rows: padding)."""
    x = np.asarray(logits[:len(ids) - n_prompt], dtype=np.float64)  # (n, V)
    top = x.max(axis=-1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(x - top).sum(axis=-1))
    return x[np.arange(len(x)), list(ids[n_prompt:])] - log_z


def _frozen_hooks(pairs: Sequence[tuple[int, int]], heard: list[int]) -> Hooks:
    """The hooks of a pass whose steered rows use their unsteered rows' attention weights."""
    listener = _frozen_listener(pairs, heard)
    return lambda layout: listening(layout, listener)


def _after_prompt(lm: LanguageModel, ids: list[int], texts: list[list[int]], steering: Steering, frozen: bool,
                  heard: list[int]) -> np.ndarray:
    """(4, T - n + 1, V) logits from the prompt's last position on, rows: each text unsteered then steered.
    The prompt before its last token runs once per model (two rows) and lends its keys and values, so no
    logits are made for it (four rows of a long prompt's logits would take gigabytes); a model whose cache
    cannot be lent runs the four whole rows."""
    n, attention = len(ids), LISTEN if frozen else fast_for(len(ids))  # the kernel the drawing's prompt pass ran
    rows = [texts[0], texts[0], texts[1], texts[1]]
    past = None
    if n > 1:
        head = lm.forward([ids[:-1], ids[:-1]], sites={steering.site: steering_edit(steering, [1])}, last_only=True,
                          keep_kv=True, hooks=_frozen_hooks([(0, 1)], heard) if frozen else None, attention=attention)
        if any(kv is None for kv in head.row_kv):
            hooks = _frozen_hooks([(0, 1), (2, 3)], heard) if frozen else None
            whole = lm.forward(rows, sites={steering.site: steering_edit(steering, [1, 3])}, hooks=hooks,
                               attention=attention)
            return whole.logits[:, n - 1:]
        default, steered = head.row_kv
        past = stacked_kv([kv for kv in (default, steered, default, steered) if kv is not None])
    tail = lm.forward([row[n - 1:] for row in rows], sites={steering.site: steering_edit(steering, [1, 3], n - 1)},
                      past=past, hooks=_frozen_hooks([(0, 1), (2, 3)], heard) if frozen else None, attention=attention)
    return tail.logits


def score(lm: LanguageModel, ids: list[int], pair: Continuations, steering: Steering, frozen: bool = False) -> Scores:
    """Both texts under both models, four rows at once (each text unsteered, then steered), right-padded
    (a causal model's real positions never see the padding after them). With `frozen`, each steered row
    uses its unsteered row's attention weights at every layer."""
    check(lm, steering, len(ids))
    texts = [list(ids) + list(pair.default_ids), list(ids) + list(pair.steered_ids)]
    longest = max(len(t) for t in texts)
    padded = [t + [t[-1]] * (longest - len(t)) for t in texts]
    heard: list[int] = []
    logits = _after_prompt(lm, ids, padded, steering, frozen, heard)  # (4, T - n + 1, V)
    if frozen and len(set(heard)) != lm.summary.n_layers:
        raise UnsupportedModelError(f"{lm.summary.architecture} computes attention inside its own modules, so "
                                    "its patterns cannot be frozen here.")
    n = len(ids)
    return Scores(_log_probs(logits[0], texts[0], n), _log_probs(logits[1], texts[0], n),
                  _log_probs(logits[2], texts[1], n), _log_probs(logits[3], texts[1], n),
                  probabilities(logits[0, 0]), probabilities(logits[1, 0]), frozen)


@dataclass(frozen=True)
class Reading:
    """What a direction says on its own: the tokens it pushes up and down through the final norm and
    the unembedding, and the input embeddings it points along (cosine)."""

    promoted: np.ndarray  # (k,) ids, strongest first
    promoted_by: np.ndarray  # (k,) logit change
    suppressed: np.ndarray
    suppressed_by: np.ndarray
    similar: np.ndarray  # (k,) ids of the embeddings most aligned with it
    similar_cos: np.ndarray


def read_direction(lm: LanguageModel, vector: np.ndarray, k: int = 10) -> Reading:
    """The logits of the direction alone through the model's final norm and unembedding, minus those of
    a zero stream (a LayerNorm's bias), and its cosine with every input embedding."""
    with lm.modules():
        rows = np.stack([vector, np.zeros_like(vector)]).astype(np.float32)  # (2, D)
        out = lm.unembedding(rows).to(device="cpu", dtype=torch.float64).numpy()  # (2, V)
    scores = out[0] - out[1]
    cos = cosine_to_matrix(np.asarray(vector, dtype=np.float64), lm.embedding_matrix)
    up, down = top_tokens(scores, k), top_tokens(-scores, k)
    near = top_tokens(cos, k)
    return Reading(up, scores[up], down, scores[down], near, cos[near])
