"""Step-by-step continuation that keeps every step: the token chosen, how likely it was, what else
the model considered, and the logits it chose from, so a view can walk back through the steps.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..core.keys import cache_key
from ..core.tokens import readable_tokens
from .sampling import probabilities, sample_token, top_tokens

if TYPE_CHECKING:  # the types only: language_model does not import this module, and views import it without torch
    from ..core.capture import KV, Capture
    from ..engine.language_model import LanguageModel
    from ..engine.patch_sites import Edit, Site

MAX_STEPS = 64  # a page may ask for at most this many steps at once


@dataclass(frozen=True)
class Decoding:
    """How each next token is chosen."""

    greedy: bool = True  # True: always the most likely token; False: a seeded draw
    temperature: float = 1.0
    top_k: int | None = None  # None or 0 = off
    top_p: float | None = None  # None or 1 = off
    seed: int = 0  # step i draws with seed + i, so a run repeats exactly


@dataclass(frozen=True, eq=False)
class Step:
    """One generated token and the distribution it came from."""

    index: int  # 0 = the first token after the prompt
    context: tuple[int, ...]  # the ids the model saw (prompt + earlier choices)
    token_id: int
    token: str  # visible text of the chosen token
    probability: float  # its probability under the distribution it was chosen from
    alternatives: tuple[tuple[int, str, float], ...]  # (id, visible text, probability), most likely first
    logits: np.ndarray  # (V,) float32 next-token logits at the last context position


def choice_distribution(logits_row: np.ndarray, decoding: Decoding) -> np.ndarray:
    """(V,) the distribution a step reports: T = 1 for greedy, else the sampling choices."""
    if decoding.greedy:
        return probabilities(logits_row, 1.0)
    return probabilities(logits_row, decoding.temperature, decoding.top_k, decoding.top_p)


def choose(logits_row: np.ndarray, decoding: Decoding, step: int) -> tuple[int, np.ndarray]:
    """The chosen id and the distribution (V,) it is reported under."""
    p = choice_distribution(logits_row, decoding)
    if decoding.greedy:
        return int(np.argmax(logits_row)), p
    return sample_token(p, decoding.seed + step), p


def last_logits(lm: LanguageModel, ids: list[int]) -> np.ndarray:
    """(V,) float32 logits after the last id: one plain forward pass, the same call a capture makes."""
    return lm.forward(ids, last_only=True).logits


def stop_ids(lm: LanguageModel) -> set[int]:
    """The ids that end a continuation (the tokenizer's end-of-text ids)."""
    eos = getattr(lm.tokenizer, "eos_token_id", None)
    return {int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None}


def generate(
    lm: LanguageModel,
    ids: list[int],
    n_steps: int,
    decoding: Decoding,
    n_alternatives: int = 5,
    max_tokens: int | None = None,
    on_step: Callable[[int, int], None] | None = None,
    sites: Callable[[int], dict[Site, Edit]] | None = None,
    start: Capture | None = None,
) -> list[Step]:
    """Up to n_steps tokens after ids; stops early at end-of-text or at max_tokens in all. Each step
    runs only the newest token, from the keys and values of the context before it. `sites(offset)`
    gives the edits of a step whose first position is `offset` (steering edits every pass). `start`, a
    capture of ids, answers the first step with its last logits and its keys and values instead of a
    pass over the whole context (at 3,500 tokens that pass took 10 s)."""
    if not ids:
        raise ValueError("generation needs at least one token of context")
    n_steps = max(0, min(int(n_steps), MAX_STEPS))
    stop, context, steps = stop_ids(lm), list(ids), []
    seeded = _seeded(lm, ids, start, sites)
    kv = None  # keys and values of the context so far (None: the model's cache cannot be extended)
    for i in range(n_steps):
        if max_tokens is not None and len(context) >= max_tokens:
            break
        if i == 0 and seeded is not None:
            row, kv = seeded
        else:
            new = context[len(context) - 1:] if kv is not None else context
            edits = sites(len(context) - len(new)) if sites is not None else None
            result = lm.forward(new, sites=edits, last_only=True, past=kv, keep_kv=True)
            row, kv = result.logits, result.kv
        chosen, p = choose(row, decoding, i)
        alt_ids = top_tokens(p, n_alternatives)
        alt_text = readable_tokens(lm.tokenizer, alt_ids)
        steps.append(Step(
            index=i, context=tuple(context), token_id=chosen,
            token=readable_tokens(lm.tokenizer, [chosen])[0], probability=float(p[chosen]),
            alternatives=tuple((int(t), s, float(p[t])) for t, s in zip(alt_ids, alt_text)),
            logits=row,
        ))
        context.append(chosen)
        if on_step is not None:
            on_step(i + 1, n_steps)
        if chosen in stop:
            break
    return steps


def step_attention(lm: LanguageModel, start: Capture, context: list[int] | tuple[int, ...]) -> np.ndarray:
    """(L, H, T) what a step's last token read: every head's weights over the T tokens of its context,
    the prompt's queries and keys lent by `start` (the prompt's capture), the generated tokens' from a
    pass over them alone. For long prompts, whose captures keep their patterns on demand."""
    ids = list(context)
    patterns = lm.patterns(ids, start=start)
    last = len(ids) - 1
    return np.stack([patterns.layer_rows(layer, last, last + 1)[:, 0] for layer in range(patterns.n_layers)])


def _seeded(lm: LanguageModel, ids: list[int], start: Capture | None,
            sites: object) -> tuple[np.ndarray, KV] | None:
    """The first step's logits and keys and values from `start` (`lent_by`); an edited run cannot use them."""
    if start is not None and sites is not None:
        raise ValueError("a capture holds the plain pass: an edited generation cannot start from it")
    return lent_by(lm, start, ids)


def lent_by(lm: LanguageModel, start: Capture | None, ids: list[int]) -> tuple[np.ndarray, KV] | None:
    """The next-token logits after ids and every position's keys and values, from `start`: what a plain
    pass over ids would give. None when it cannot lend them: no start, another prompt's or model's, or a
    family whose cache cannot be handed on (sliding windows, recurrent state: no keys and values kept)."""
    if start is None or start.n_tokens != len(ids) or lm.shared_prefix(start, ids) != len(ids):
        return None
    assert start.kv is not None  # shared_prefix lends no position without them
    return lm.logits_at(start, len(ids) - 1), start.kv


def continuation_text(lm: LanguageModel, ids: list[int], new_ids: list[int]) -> str:
    """The text new_ids add after ids (decoded together, so merged characters come out right)."""
    before = lm.tokenizer.decode(list(ids), clean_up_tokenization_spaces=False)
    after = lm.tokenizer.decode(list(ids) + list(new_ids), clean_up_tokenization_spaces=False)
    if after.startswith(before):
        return after[len(before):]
    return lm.tokenizer.decode(list(new_ids), clean_up_tokenization_spaces=False)


def ids_key(model: str, ids: list[int] | tuple[int, ...]) -> str:
    """A plain-string capture-cache key for a token sequence (distinct from prompt keys); `model` names
    the model as core.keys.model_key does."""
    return cache_key(model, "ids", ",".join(str(int(t)) for t in ids))
