"""Input saliency: how much each input token, up to a position, made the model predict token A there
(or A rather than B). Four readings of the same question:

- gradient × input: one forward and backward pass; the first-order guess of each token's share;
- integrated gradients (Captum's): the gradient averaged along a straight path from a neutral prompt
  (every token after the first the neutral token) to the real one, so the shares add up to the change in the target;
  the steps of the path run as batched rows, not one pass each;
- occlusion: each token replaced by the neutral token, or removed, and the prompt run again (rows
  batched): how much the target falls without it.

A causal model's prediction at a position never reads later tokens, so only the prefix up to the
position is run. Gradients go through `LanguageModel.gradients`, occluded prompts through `forward`.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from model.core.errors import PromptError, UnsupportedModelError
from model.engine.gradients import Target
from model.engine.language_model import LanguageModel, fast_for

Method = Literal["gradient", "integrated", "replace", "remove"]
METHODS: tuple[Method, ...] = ("gradient", "integrated", "replace", "remove")
TOKENS_PER_PASS = 1024  # rows x tokens per batched pass (IG steps, occluded prompts): ~1.2 GB of backward state
MAX_TOKENS = 512  # integrated gradients and occlusion read at most this many tokens (their cost grows fast)
Progress = Callable[[int, int], None]  # (done, total) passes


@dataclass(frozen=True)
class Neutral:
    """The token that stands in for 'no information' on this model, and what it is, in words."""

    id: int
    what: str  # "a space", "the unknown-token marker"...


@dataclass(frozen=True)
class Saliency:
    """One method's share per input token of the target (logit of A, or A − B) at `position`."""

    method: Method
    position: int
    values: np.ndarray  # (position + 1,) float64: how much each token up to `position` raised the target
    target: float  # the target on the real prompt
    reference: float | None  # integrated gradients: the target on the neutral prompt (the path's start)
    delta: float | None  # integrated gradients: sum(values) − (target − reference), Captum's convergence delta
    steps: int  # integrated gradients' steps along the path (0 for the other methods)
    passes: int  # model passes it took
    seconds: float
    neutral: Neutral


def neutral_token(tokenizer) -> Neutral:
    """The neutral token of a model: a space when the tokenizer has it as one token (a trained vector
    that carries almost no meaning), else its unknown, padding or end-of-text marker."""
    space = tokenizer(" ", add_special_tokens=False)["input_ids"]
    if len(space) == 1:
        return Neutral(int(space[0]), "a space")
    for attribute, what in (("unk_token_id", "the unknown-token marker"), ("pad_token_id", "the padding token"),
                            ("eos_token_id", "the end-of-text marker")):
        token = getattr(tokenizer, attribute, None)
        if isinstance(token, int):
            return Neutral(token, what)
    raise UnsupportedModelError("This tokenizer has no single-token space and no unknown, padding or end-of-text "
                                "token to stand in for a removed word.")


def metric(a: int, b: int | None) -> Target:
    """logits (B, V) -> logit(A) − logit(B) per row (logit(A) without B)."""
    return (lambda logits: logits[:, a]) if b is None else (lambda logits: logits[:, a] - logits[:, b])


def work(method: Method, n_tokens: int, steps: int) -> int:
    """What a method costs, in token positions run forward (a backward pass counts as two forwards):
    for the page to say up front how long it will take."""
    if method == "gradient":
        return 3 * n_tokens
    if method == "integrated":
        return 3 * steps * n_tokens + 4 * n_tokens
    return n_tokens * n_tokens


def saliency(lm: LanguageModel, ids: Sequence[int], position: int, a: int, b: int | None, method: Method,
             steps: int = 32, progress: Progress | None = None) -> Saliency:
    """One method's reading at `position` of the token sequence `ids`."""
    prefix = [int(i) for i in ids[:position + 1]]
    if method == "gradient":
        return gradient_x_input(lm, prefix, a, b)
    if len(prefix) > MAX_TOKENS:
        raise PromptError(f"{'Integrated gradients' if method == 'integrated' else 'Occlusion'} reads at most "
                          f"{MAX_TOKENS} tokens here and position {position} has {len(prefix):,} up to it: pick an "
                          "earlier position, or use gradient × input (one pass at any length).")
    if method == "integrated":
        return integrated_gradients(lm, prefix, a, b, steps, progress=progress)
    return occlusion(lm, prefix, a, b, remove=method == "remove", progress=progress)


def gradient_x_input(lm: LanguageModel, ids: Sequence[int], a: int, b: int | None) -> Saliency:
    """Each token's input embedding dotted with the target's gradient there: one forward and backward."""
    began = time.perf_counter()
    with lm.gradients(ids, metric(a, b)) as fn:
        x = fn.embed(ids).requires_grad_()
        target = fn.target(x)
        (grad,) = torch.autograd.grad(target.sum(), x)
        values = (grad * x).detach().sum(-1)[0]
    return Saliency("gradient", len(ids) - 1, _numpy(values), float(target.detach()[0]), None, None, 0, 1,
                    time.perf_counter() - began, neutral_token(lm.tokenizer))


def integrated_gradients(lm: LanguageModel, ids: Sequence[int], a: int, b: int | None, steps: int = 32, *,
                         tokens_per_pass: int = TOKENS_PER_PASS, progress: Progress | None = None) -> Saliency:
    """Captum's integrated gradients from the neutral prompt to the real one, `steps` points along the
    path run as rows of batched passes. The neutral prompt keeps the first token: the model parks most
    of its attention there (a sink), and sliding that vector too makes the path so abrupt that 32
    steps miss most of it (convergence deltas as large as the change itself on the default model)."""
    from captum.attr import IntegratedGradients

    began, neutral = time.perf_counter(), neutral_token(lm.tokenizer)
    rows = max(1, min(steps, tokens_per_pass // len(ids)))
    total = math.ceil(steps / rows)
    with lm.gradients(ids, metric(a, b)) as fn:
        x, base = fn.embed(ids), fn.embed([ids[0]] + [neutral.id] * (len(ids) - 1))

        def counted(embeds: torch.Tensor) -> torch.Tensor:
            out = fn.target(embeds)
            if progress is not None and torch.is_grad_enabled():
                progress(min(fn.passes[0], total), total)
            return out

        attributions, delta = IntegratedGradients(counted).attribute(
            x, baselines=base, n_steps=steps, internal_batch_size=rows, return_convergence_delta=True)
        with torch.no_grad():
            ends = fn.target(torch.cat([x, base]))
        passes = fn.passes[0]
    values = _numpy(attributions.detach().sum(-1)[0])
    target, reference = (float(v) for v in ends.detach().to(device="cpu", dtype=torch.float64))
    return Saliency("integrated", len(ids) - 1, values, target, reference, float(delta.detach()[0]), steps, passes,
                    time.perf_counter() - began, neutral)


def occluded_rows(ids: Sequence[int], neutral: int, remove: bool) -> list[list[int]]:
    """One prompt per token: that token replaced by the neutral token, or removed."""
    ids = list(ids)
    return [ids[:i] + ([] if remove else [neutral]) + ids[i + 1:] for i in range(len(ids))]


def occlusion(lm: LanguageModel, ids: Sequence[int], a: int, b: int | None, *, remove: bool,
              tokens_per_pass: int = TOKENS_PER_PASS, progress: Progress | None = None) -> Saliency:
    """target(prompt) − target(prompt without token i) for every i: replaced by the neutral token or
    removed. The occluded prompts have one length, so they run as rows of batched passes."""
    if remove and len(ids) < 2:
        raise PromptError("Removing the only token leaves no prompt: pick a later position, or replace it instead.")
    began, neutral = time.perf_counter(), neutral_token(lm.tokenizer)
    score, kernel = metric(a, b), fast_for(len(ids))  # occluded rows run the prompt's own kernel
    target = _read(score, lm.forward(list(ids), last_only=True, attention=kernel).logits)[0]
    rows = occluded_rows(ids, neutral.id, remove)
    per_pass = max(1, tokens_per_pass // len(rows[0]))
    chunks = [rows[i:i + per_pass] for i in range(0, len(rows), per_pass)]
    occluded: list[np.ndarray] = []
    for done, chunk in enumerate(chunks, start=1):
        occluded.append(_read(score, lm.forward(chunk, last_only=True, attention=kernel).logits))
        if progress is not None:
            progress(done, len(chunks))
    values = target - np.concatenate(occluded)
    return Saliency("remove" if remove else "replace", len(ids) - 1, values, float(target), None, None, 0,
                    1 + len(chunks), time.perf_counter() - began, neutral)


def _read(score: Target, logits: np.ndarray) -> np.ndarray:
    """The target per row of last-position logits ((V,) for one row, else (B, V)), in float64."""
    rows = torch.from_numpy(np.atleast_2d(logits).astype(np.float64))
    return score(rows).numpy()


def _numpy(values: torch.Tensor) -> np.ndarray:
    return values.to(device="cpu", dtype=torch.float64).numpy()
